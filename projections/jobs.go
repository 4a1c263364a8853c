package projections

import (
	"context"
	"database/sql"

	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/internal/sqldb"
)

// jobsProjection is the "jobs" read model: one row per job, with its
// lifecycle, result and charge (table rm_jobs).
type jobsProjection struct{}

var _ Projection = jobsProjection{}

// jobsView is the view queries read.
const jobsView = "rm_jobs"

// jobColumns are rm_jobs' columns, in the order jobRow.values gives them.
var jobColumns = []string{
	"job_id", "owner", "job_type", "status", "priority", "gpu", "node_id", "attempts",
	"last_error", "cancel_reason", "payload_ref", "cost", "charged", "refunded",
	"result_sha256", "result_bytes", "submitted_at", "dispatched_at", "started_at",
	"completed_at", "failed_at", "cancelled_at", "updated_at", "position",
}

// Name returns "jobs".
func (jobsProjection) Name() string { return "jobs" }

// Tables returns rm_jobs, keyed by job id, indexed for each owner's list
// (all jobs, and by status) newest first.
func (jobsProjection) Tables() []Table {
	return []Table{{
		Name: jobsView,
		Columns: []string{
			"job_id TEXT NOT NULL", "owner TEXT NOT NULL", "job_type TEXT NOT NULL", "status TEXT NOT NULL",
			"priority TEXT NOT NULL", "gpu BOOLEAN NOT NULL", "node_id TEXT NOT NULL", "attempts BIGINT NOT NULL",
			"last_error TEXT NOT NULL", "cancel_reason TEXT NOT NULL", "payload_ref TEXT NOT NULL",
			"cost BIGINT NOT NULL", "charged BIGINT NOT NULL", "refunded BIGINT NOT NULL",
			"result_sha256 TEXT NOT NULL", "result_bytes BIGINT NOT NULL",
			"submitted_at BIGINT NOT NULL", "dispatched_at BIGINT NOT NULL", "started_at BIGINT NOT NULL",
			"completed_at BIGINT NOT NULL", "failed_at BIGINT NOT NULL", "cancelled_at BIGINT NOT NULL",
			"updated_at BIGINT NOT NULL", "position BIGINT NOT NULL",
		},
		PrimaryKey: []string{"job_id"},
		Indexes: [][]string{
			{"owner", "submitted_at DESC", "job_id DESC"},
			{"owner", "status", "submitted_at DESC", "job_id DESC"},
		},
	}}
}

// jobRow is one row of rm_jobs. Times are Unix microseconds, 0 when unset.
type jobRow struct {
	JobID, Owner, Type, Status, Priority string
	GPU                                  bool
	NodeID                               string
	Attempts                             int64
	LastError, CancelReason, PayloadRef  string
	Cost, Deducted, Refunded             int64
	ResultSHA256                         string
	ResultBytes                          int64
	SubmittedAt, DispatchedAt, StartedAt int64
	CompletedAt, FailedAt, CancelledAt   int64
	UpdatedAt, Position                  int64

	dirty bool // changed by the batch being applied
}

func (j *jobRow) values(args []any) []any {
	return append(args, j.JobID, j.Owner, j.Type, j.Status, j.Priority, j.GPU, j.NodeID, j.Attempts,
		j.LastError, j.CancelReason, j.PayloadRef, j.Cost, j.Deducted, j.Refunded,
		j.ResultSHA256, j.ResultBytes, j.SubmittedAt, j.DispatchedAt, j.StartedAt,
		j.CompletedAt, j.FailedAt, j.CancelledAt, j.UpdatedAt, j.Position)
}

func (j *jobRow) scan(rows interface{ Scan(...any) error }) error {
	return rows.Scan(&j.JobID, &j.Owner, &j.Type, &j.Status, &j.Priority, &j.GPU, &j.NodeID, &j.Attempts,
		&j.LastError, &j.CancelReason, &j.PayloadRef, &j.Cost, &j.Deducted, &j.Refunded,
		&j.ResultSHA256, &j.ResultBytes, &j.SubmittedAt, &j.DispatchedAt, &j.StartedAt,
		&j.CompletedAt, &j.FailedAt, &j.CancelledAt, &j.UpdatedAt, &j.Position)
}

// Apply folds job events, and the deductions and refunds of jobs, into
// rm_jobs: it reads the rows the batch touches that it did not create, folds
// the events in memory and writes each changed row once.
func (jobsProjection) Apply(ctx context.Context, tx *sqldb.Tx, t Tables, events []Event) error {
	table := t.Name(jobsView)
	jobs := map[domain.JobID]*jobRow{}
	var missing []string
	for _, e := range events {
		id, ok := jobOf(e.Decoded)
		if !ok || jobs[id] != nil {
			continue
		}
		if s, ok := e.Decoded.(domain.JobSubmitted); ok {
			jobs[id] = &jobRow{JobID: string(s.JobID)}
			continue
		}
		jobs[id] = &jobRow{} // placeholder until read: JobID "" means absent
		missing = append(missing, string(id))
	}
	err := lookup(ctx, tx, table, jobColumns, "job_id", missing, func(rows *sql.Rows) error {
		var r jobRow
		if err := r.scan(rows); err != nil {
			return err
		}
		jobs[domain.JobID(r.JobID)] = &r
		return nil
	})
	if err != nil {
		return err
	}
	var changed []*jobRow
	for _, e := range events {
		id, ok := jobOf(e.Decoded)
		if !ok {
			continue
		}
		row := jobs[id]
		if row.JobID == "" { // an account event of a job never submitted (an orphaned hold)
			continue
		}
		if !row.dirty {
			row.dirty = true
			changed = append(changed, row)
		}
		foldJob(row, e)
	}
	w := rowWriter{table: table, columns: jobColumns, conflict: []string{"job_id"}}
	return w.write(ctx, tx, len(changed), func(i int, args []any) []any { return changed[i].values(args) })
}

// jobOf returns the job an event changes in rm_jobs: its job events, and
// the deductions and refunds of its credits.
func jobOf(e domain.Event) (domain.JobID, bool) {
	switch e := e.(type) {
	case domain.CreditsDeducted:
		return e.JobID, true
	case domain.CreditsRefunded:
		return e.JobID, true
	}
	return domain.JobIDOf(e)
}

// foldJob applies one event to its job's row.
func foldJob(j *jobRow, e Event) {
	at := micros(domain.OccurredAt(e.Decoded))
	switch d := e.Decoded.(type) {
	case domain.JobSubmitted:
		j.Owner, j.Type, j.Priority, j.GPU = string(d.Owner), string(d.Type), string(d.Priority), d.GPU
		j.Status, j.PayloadRef, j.Cost, j.SubmittedAt = string(domain.StatusQueued), d.Payload.URI, int64(d.Cost), at
	case domain.JobDispatched:
		j.Status, j.NodeID, j.Attempts, j.DispatchedAt = string(domain.StatusDispatched), string(d.NodeID), int64(d.Attempt), at
	case domain.JobStarted:
		j.Status, j.StartedAt = string(domain.StatusRunning), at
	case domain.JobCompleted:
		j.Status, j.CompletedAt = string(domain.StatusCompleted), at
		j.ResultSHA256, j.ResultBytes = d.ResultSHA256, d.ResultBytes
	case domain.JobFailed:
		endAttempt(j, d.Error, d.WillRetry, at)
	case domain.JobTimedOut:
		// The same words the domain's Job keeps as its last error.
		endAttempt(j, "dispatch timed out on node "+string(d.NodeID), d.WillRetry, at)
	case domain.JobCancelled:
		j.Status, j.CancelReason, j.CancelledAt = string(domain.StatusCancelled), d.Reason, at
	case domain.CreditsDeducted:
		j.Deducted += int64(d.Amount)
	case domain.CreditsRefunded:
		j.Refunded += int64(d.Amount)
	}
	j.UpdatedAt, j.Position = at, int64(e.Position)
}

// endAttempt records a failed attempt: back to QUEUED when it is retried,
// else FAILED.
func endAttempt(j *jobRow, msg string, retry bool, at int64) {
	j.LastError = msg
	if retry {
		j.Status, j.NodeID = string(domain.StatusQueued), ""
		return
	}
	j.Status, j.FailedAt = string(domain.StatusFailed), at
}
