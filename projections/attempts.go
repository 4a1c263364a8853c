package projections

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/internal/sqldb"
)

// jobAttemptsProjection is the "job_attempts" read model: one row per
// dispatch of a job — its node, times, how it ended and why (table
// rm_job_attempts), so a creator sees each failed attempt, not only the
// last error.
type jobAttemptsProjection struct{}

var _ Projection = jobAttemptsProjection{}

// attemptsView is the view queries read.
const attemptsView = "rm_job_attempts"

// The outcomes of an attempt.
const (
	AttemptDispatched = "dispatched" // assigned, not started yet
	AttemptRunning    = "running"
	AttemptCompleted  = "completed"
	AttemptFailed     = "failed"
	AttemptTimedOut   = "timed_out"
	AttemptCancelled  = "cancelled"
)

// attemptColumns are rm_job_attempts' columns, in attemptRow.values order.
var attemptColumns = []string{
	"job_id", "attempt", "node_id", "outcome", "error", "will_retry", "input_sha256",
	"dispatched_at", "started_at", "ended_at", "position",
}

// Name returns "job_attempts".
func (jobAttemptsProjection) Name() string { return "job_attempts" }

// Tables returns rm_job_attempts, keyed by job and attempt.
func (jobAttemptsProjection) Tables() []Table {
	return []Table{{
		Name: attemptsView,
		Columns: []string{
			"job_id TEXT NOT NULL", "attempt BIGINT NOT NULL", "node_id TEXT NOT NULL", "outcome TEXT NOT NULL",
			"error TEXT NOT NULL", "will_retry BOOLEAN NOT NULL", "input_sha256 TEXT NOT NULL",
			"dispatched_at BIGINT NOT NULL", "started_at BIGINT NOT NULL", "ended_at BIGINT NOT NULL", "position BIGINT NOT NULL",
		},
		PrimaryKey: []string{"job_id", "attempt"},
	}}
}

// attemptRow is one row of rm_job_attempts. Times are Unix microseconds,
// 0 when unset.
type attemptRow struct {
	JobID                            string
	Attempt                          int64
	NodeID, Outcome, Error           string
	WillRetry                        bool
	InputSHA256                      string
	DispatchedAt, StartedAt, EndedAt int64
	Position                         int64
	dirty                            bool
}

func (r *attemptRow) values(args []any) []any {
	return append(args, r.JobID, r.Attempt, r.NodeID, r.Outcome, r.Error, r.WillRetry, r.InputSHA256,
		r.DispatchedAt, r.StartedAt, r.EndedAt, r.Position)
}

func (r *attemptRow) scan(rows interface{ Scan(...any) error }) error {
	return rows.Scan(&r.JobID, &r.Attempt, &r.NodeID, &r.Outcome, &r.Error, &r.WillRetry, &r.InputSHA256,
		&r.DispatchedAt, &r.StartedAt, &r.EndedAt, &r.Position)
}

// attemptJobOf returns the job whose attempts e changes: every job event
// but the submission, which has no attempt yet.
func attemptJobOf(e domain.Event) (domain.JobID, bool) {
	if _, ok := e.(domain.JobSubmitted); ok {
		return "", false
	}
	return domain.JobIDOf(e)
}

// Apply folds job events into rm_job_attempts: it reads the latest
// attempt of each job the batch touches without dispatching it first,
// folds the events in memory and writes each changed row once.
func (jobAttemptsProjection) Apply(ctx context.Context, tx *sqldb.Tx, t Tables, events []Event) error {
	table := t.Name(attemptsView)
	latest := map[domain.JobID]*attemptRow{}
	seen := map[domain.JobID]bool{}
	var missing []string
	for _, e := range events {
		id, ok := attemptJobOf(e.Decoded)
		if !ok || seen[id] {
			continue
		}
		seen[id] = true
		if _, first := e.Decoded.(domain.JobDispatched); !first {
			missing = append(missing, string(id))
		}
	}
	err := lookup(ctx, tx, table, attemptColumns, "job_id", missing, func(rows *sql.Rows) error {
		var r attemptRow
		if err := r.scan(rows); err != nil {
			return err
		}
		if cur := latest[domain.JobID(r.JobID)]; cur == nil || r.Attempt > cur.Attempt {
			latest[domain.JobID(r.JobID)] = &r
		}
		return nil
	})
	if err != nil {
		return err
	}
	var changed []*attemptRow
	for _, e := range events {
		id, ok := attemptJobOf(e.Decoded)
		if !ok {
			continue
		}
		row := foldAttempt(latest[id], e)
		if row == nil {
			continue
		}
		latest[id] = row
		if !row.dirty {
			row.dirty = true
			changed = append(changed, row)
		}
	}
	w := rowWriter{table: table, columns: attemptColumns, conflict: []string{"job_id", "attempt"}}
	return w.write(ctx, tx, len(changed), func(i int, args []any) []any { return changed[i].values(args) })
}

// foldAttempt applies e to the job's latest attempt row (nil: none yet)
// and returns the row e changed, or nil when e changes none (a cancel
// while QUEUED).
func foldAttempt(cur *attemptRow, e Event) *attemptRow {
	at := micros(domain.OccurredAt(e.Decoded))
	if d, ok := e.Decoded.(domain.JobDispatched); ok {
		return &attemptRow{JobID: string(d.JobID), Attempt: int64(d.Attempt), NodeID: string(d.NodeID),
			Outcome: AttemptDispatched, DispatchedAt: at, Position: int64(e.Position)}
	}
	if cur == nil || cur.EndedAt != 0 {
		return nil
	}
	switch d := e.Decoded.(type) {
	case domain.JobStarted:
		cur.Outcome, cur.StartedAt = AttemptRunning, at
	case domain.JobCompleted:
		cur.Outcome, cur.EndedAt, cur.InputSHA256 = AttemptCompleted, at, d.InputSHA256
	case domain.JobFailed:
		cur.Outcome, cur.EndedAt, cur.Error, cur.WillRetry = AttemptFailed, at, d.Error, d.WillRetry
	case domain.JobTimedOut:
		cur.Outcome, cur.EndedAt, cur.WillRetry = AttemptTimedOut, at, d.WillRetry
		cur.Error = "dispatch timed out on node " + string(d.NodeID)
	case domain.JobCancelled:
		cur.Outcome, cur.EndedAt = AttemptCancelled, at
	}
	cur.Position = int64(e.Position)
	return cur
}

// Attempt is one dispatch of a job as the API shows it.
type Attempt struct {
	Attempt int    `json:"attempt"` // 1 for the first dispatch
	NodeID  string `json:"node_id"`
	// Outcome is dispatched, running, completed, failed, timed_out or
	// cancelled.
	Outcome   string `json:"outcome"`
	Error     string `json:"error,omitempty"`
	WillRetry bool   `json:"will_retry"` // a failed attempt the job was queued again after
	// InputSHA256 is the SHA-256 of the input the node fetched, recorded
	// with the completion.
	InputSHA256  string     `json:"input_sha256,omitempty"`
	DispatchedAt time.Time  `json:"dispatched_at"`
	StartedAt    *time.Time `json:"started_at,omitempty"`
	EndedAt      *time.Time `json:"ended_at,omitempty"`
}

func (r *attemptRow) attempt() Attempt {
	return Attempt{Attempt: int(r.Attempt), NodeID: r.NodeID, Outcome: r.Outcome, Error: r.Error, WillRetry: r.WillRetry,
		InputSHA256: r.InputSHA256, DispatchedAt: timeOf(r.DispatchedAt), StartedAt: optionalTime(r.StartedAt), EndedAt: optionalTime(r.EndedAt)}
}

// attempts returns a job's attempts, first first.
func (r *Reader) attempts(ctx context.Context, id domain.JobID) ([]Attempt, error) {
	rows, err := r.db.Query(ctx, "SELECT "+strings.Join(attemptColumns, ", ")+" FROM "+attemptsView+" WHERE job_id = ? ORDER BY attempt", string(id))
	if err != nil {
		return nil, fmt.Errorf("read attempts of %s: %w", id, err)
	}
	defer rows.Close()
	out := []Attempt{}
	for rows.Next() {
		var a attemptRow
		if err := a.scan(rows); err != nil {
			return nil, fmt.Errorf("read attempts of %s: %w", id, err)
		}
		out = append(out, a.attempt())
	}
	return out, rows.Err()
}
