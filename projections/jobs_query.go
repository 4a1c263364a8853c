package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/rendertrust/rendertrust/domain"
)

// Job is a job as the API shows it to its owner.
type Job struct {
	ID           string        `json:"id"`
	Type         string        `json:"job_type"`
	Status       domain.Status `json:"status"`
	Priority     string        `json:"priority"`
	GPURequired  bool          `json:"gpu_required"`
	NodeID       string        `json:"node_id,omitempty"` // "" while QUEUED
	Attempts     int           `json:"attempts"`          // dispatches so far
	LastError    string        `json:"last_error,omitempty"`
	CancelReason string        `json:"cancel_reason,omitempty"`
	PayloadRef   string        `json:"payload_ref,omitempty"` // the payload's URI; "" for inline JSON
	Cost         int64         `json:"cost"`                  // credits held at submission
	Deducted     int64         `json:"charged"`               // credits deducted (at completion)
	Refunded     int64         `json:"refunded"`              // credits refunded after the charge
	ResultSHA256 string        `json:"result_sha256,omitempty"`
	ResultBytes  int64         `json:"result_bytes,omitempty"`
	Cancellable  bool          `json:"cancellable"`
	// Retrying says an earlier attempt failed and the job was queued
	// again: the guide's "FAILED — may auto-retry", while it retries.
	Retrying bool `json:"retrying"`
	// AttemptHistory lists every dispatch, first first, with its node,
	// outcome, error and times; only the job detail carries it.
	AttemptHistory []Attempt  `json:"attempt_history,omitempty"`
	SubmittedAt    time.Time  `json:"submitted_at"`
	DispatchedAt   *time.Time `json:"dispatched_at,omitempty"`
	StartedAt      *time.Time `json:"started_at,omitempty"`
	CompletedAt    *time.Time `json:"completed_at,omitempty"`
	FailedAt       *time.Time `json:"failed_at,omitempty"`
	CancelledAt    *time.Time `json:"cancelled_at,omitempty"`
	UpdatedAt      time.Time  `json:"updated_at"`
	// Position is the log position of the last event that changed the job.
	Position uint64 `json:"-"`
}

func (j *jobRow) job() Job {
	st := domain.Status(j.Status)
	return Job{
		ID: j.JobID, Type: j.Type, Status: st, Priority: j.Priority, GPURequired: j.GPU,
		NodeID: j.NodeID, Attempts: int(j.Attempts), LastError: j.LastError, CancelReason: j.CancelReason,
		PayloadRef: j.PayloadRef, Cost: j.Cost, Deducted: j.Deducted, Refunded: j.Refunded,
		ResultSHA256: j.ResultSHA256, ResultBytes: j.ResultBytes,
		Cancellable: st == domain.StatusQueued || st == domain.StatusDispatched,
		Retrying:    j.LastError != "" && (st == domain.StatusQueued || st == domain.StatusDispatched || st == domain.StatusRunning),
		SubmittedAt: timeOf(j.SubmittedAt), DispatchedAt: optionalTime(j.DispatchedAt),
		StartedAt: optionalTime(j.StartedAt), CompletedAt: optionalTime(j.CompletedAt),
		FailedAt: optionalTime(j.FailedAt), CancelledAt: optionalTime(j.CancelledAt),
		UpdatedAt: timeOf(j.UpdatedAt), Position: uint64(j.Position),
	}
}

// JobQuery selects a page of an owner's jobs.
type JobQuery struct {
	// Status keeps only jobs in that status; "" keeps all.
	Status domain.Status
	// Cursor continues after a previous page (its NextCursor); "" starts
	// with the newest job.
	Cursor string
	// Limit is the page size, 1..PageLimitMax; 0 means PageLimitDefault.
	Limit int
}

// JobPage is one page of jobs, newest first.
type JobPage struct {
	Jobs []Job `json:"jobs"`
	// NextCursor fetches the next page; "" on the last page.
	NextCursor string `json:"next_cursor,omitempty"`
}

const jobCursorKind = "jobs"

// Jobs returns a page of owner's jobs, newest submission first (ties by
// job id). Following NextCursor never repeats or skips a job that existed
// when the first page was read, however many jobs are submitted meanwhile.
// It fails with ErrInvalidQuery for a bad status or limit, ErrInvalidCursor
// for a bad cursor, or a database error.
func (r *Reader) Jobs(ctx context.Context, owner domain.UserID, q JobQuery) (JobPage, error) {
	limit, err := pageLimit(q.Limit)
	if err != nil {
		return JobPage{}, err
	}
	where, args := []string{"owner = ?"}, []any{string(owner)}
	if q.Status != "" {
		st, err := domain.ParseStatus(string(q.Status))
		if err != nil {
			return JobPage{}, fmt.Errorf("%w: %w", ErrInvalidQuery, err)
		}
		where, args = append(where, "status = ?"), append(args, string(st))
	}
	if q.Cursor != "" {
		parts, err := decodeCursor(q.Cursor, jobCursorKind, 2)
		if err != nil {
			return JobPage{}, err
		}
		at, err := strconv.ParseInt(parts[0], 10, 64)
		if err != nil {
			return JobPage{}, fmt.Errorf("%w: bad time", ErrInvalidCursor)
		}
		// Written so both databases scan the index from the cursor on.
		where = append(where, "submitted_at <= ?", "(submitted_at < ? OR job_id < ?)")
		args = append(args, at, at, parts[1])
	}
	query := "SELECT " + strings.Join(jobColumns, ", ") + " FROM " + jobsView + " WHERE " + strings.Join(where, " AND ") +
		" ORDER BY submitted_at DESC, job_id DESC LIMIT ?"
	rows, err := r.db.Query(ctx, query, append(args, limit+1)...)
	if err != nil {
		return JobPage{}, fmt.Errorf("list jobs: %w", err)
	}
	defer rows.Close()
	page := JobPage{Jobs: make([]Job, 0, limit)}
	var last jobRow
	for rows.Next() {
		if len(page.Jobs) == limit {
			page.NextCursor = encodeCursor(jobCursorKind, strconv.FormatInt(last.SubmittedAt, 10), last.JobID)
			break
		}
		if err := last.scan(rows); err != nil {
			return JobPage{}, fmt.Errorf("list jobs: %w", err)
		}
		page.Jobs = append(page.Jobs, last.job())
	}
	if err := rows.Err(); err != nil {
		return JobPage{}, fmt.Errorf("list jobs: %w", err)
	}
	return page, nil
}

// Job returns owner's job id. It fails with an error wrapping
// domain.ErrJobNotFound when there is no such job or it belongs to another
// user (the two are indistinguishable, so no job's existence leaks), or a
// database error.
func (r *Reader) Job(ctx context.Context, owner domain.UserID, id domain.JobID) (Job, error) {
	var row jobRow
	err := row.scan(r.db.QueryRow(ctx, "SELECT "+strings.Join(jobColumns, ", ")+" FROM "+jobsView+
		" WHERE job_id = ? AND owner = ?", string(id), string(owner)))
	if errors.Is(err, sql.ErrNoRows) {
		return Job{}, fmt.Errorf("%w: %s", domain.ErrJobNotFound, id)
	}
	if err != nil {
		return Job{}, fmt.Errorf("read job %s: %w", id, err)
	}
	j := row.job()
	if j.AttemptHistory, err = r.attempts(ctx, id); err != nil {
		return Job{}, err
	}
	return j, nil
}
