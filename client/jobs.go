package client

import (
	"cmp"
	"context"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Limits on listing jobs.
const (
	// PageLimitMax is the largest page the API serves.
	PageLimitMax = 200
	// ListJobsMax bounds the jobs ListJobs collects; iterate with AllJobs
	// past it.
	ListJobsMax = 10_000
)

// JobType is the kind of work a job asks for.
type JobType string

// The job types. The API takes them in any case and answers these
// lower-case names; what each costs comes from JobTypes, never from here.
const (
	JobRender       JobType = "render"
	JobInference    JobType = "inference"
	JobGeneric      JobType = "generic"
	JobCPUBenchmark JobType = "cpu_benchmark"
	JobEcho         JobType = "echo"
)

// JobTypeInfo is one job type as the server offers it.
type JobTypeInfo struct {
	JobType     JobType `json:"job_type"`
	DisplayName string  `json:"display_name"` // as the guide's cost table names it: "AI Inference"
	Cost        int64   `json:"cost"`         // credits one job costs
}

// JobTypes returns every job type with its display name and its price in
// credits, as the server is configured (GET /api/v1/jobs/types). It needs
// no login.
func (c *Client) JobTypes(ctx context.Context) ([]JobTypeInfo, error) {
	var resp struct {
		JobTypes []JobTypeInfo `json:"job_types"`
	}
	err := c.do(ctx, request{method: http.MethodGet, path: "/api/v1/jobs/types"}, &resp)
	return resp.JobTypes, err
}

// Priority orders waiting jobs.
type Priority string

// The priorities; "" means normal.
const (
	PriorityLow    Priority = "low"
	PriorityNormal Priority = "normal"
	PriorityHigh   Priority = "high"
)

// Status is where a job is in its lifecycle: QUEUED → DISPATCHED → RUNNING
// → COMPLETED | FAILED, or CANCELLED.
type Status string

// The statuses.
const (
	StatusQueued     Status = "QUEUED"
	StatusDispatched Status = "DISPATCHED"
	StatusRunning    Status = "RUNNING"
	StatusCompleted  Status = "COMPLETED"
	StatusFailed     Status = "FAILED"
	StatusCancelled  Status = "CANCELLED"
)

// Ended reports whether the status is final: COMPLETED, FAILED or CANCELLED.
func (s Status) Ended() bool {
	return s == StatusCompleted || s == StatusFailed || s == StatusCancelled
}

// SubmitRequest asks to run a job. Give the payload as PayloadRef (an
// s3://, ipfs:// or https:// URI, as the guide's curl does) or as Payload:
// any value encoding/json marshals — {"ref": "s3://…"} as the guide's
// Python SDK sends, or inline JSON (use json.RawMessage for JSON text).
type SubmitRequest struct {
	JobType     JobType  `json:"job_type"`
	PayloadRef  string   `json:"payload_ref,omitempty"`
	Payload     any      `json:"payload,omitempty"`
	Priority    Priority `json:"priority,omitempty"`
	GPURequired bool     `json:"gpu_required"`
	// IdempotencyKey makes a retried submission return the first one's
	// answer instead of submitting twice; "" sends none.
	IdempotencyKey string `json:"-"`
}

// Submitted is the answer to a submission.
type Submitted struct {
	JobID  string `json:"job_id"`
	NodeID string `json:"node_id"` // "" while the job waits for a free slot
	Status Status `json:"status"`
	Cost   int64  `json:"cost"` // credits held now, charged only if the job completes
}

// SubmitJob submits a job; its cost is held on the account and charged
// only when it completes. It returns an *APIError: ErrInsufficientCredits,
// ErrNoHealthyNodes (nothing is held), ErrInvalid for a bad type, payload or
// priority.
func (c *Client) SubmitJob(ctx context.Context, r SubmitRequest) (Submitted, error) {
	var s Submitted
	err := c.do(ctx, request{method: http.MethodPost, path: "/api/v1/jobs/dispatch", body: r, auth: true, idempotencyKey: r.IdempotencyKey}, &s)
	return s, err
}

// Job is a job as its owner sees it.
type Job struct {
	ID           string     `json:"id"`
	JobType      JobType    `json:"job_type"`
	Status       Status     `json:"status"`
	Priority     Priority   `json:"priority"`
	GPURequired  bool       `json:"gpu_required"`
	NodeID       string     `json:"node_id,omitempty"`
	Attempts     int        `json:"attempts"` // dispatches so far
	LastError    string     `json:"last_error,omitempty"`
	CancelReason string     `json:"cancel_reason,omitempty"`
	PayloadRef   string     `json:"payload_ref,omitempty"` // "" for inline JSON
	Cost         int64      `json:"cost"`                  // credits held at submission
	Charged      int64      `json:"charged"`               // credits deducted at completion
	Refunded     int64      `json:"refunded"`
	ResultSHA256 string     `json:"result_sha256,omitempty"`
	ResultBytes  int64      `json:"result_bytes,omitempty"`
	Cancellable  bool       `json:"cancellable"`
	SubmittedAt  time.Time  `json:"submitted_at"`
	DispatchedAt *time.Time `json:"dispatched_at,omitempty"`
	StartedAt    *time.Time `json:"started_at,omitempty"`
	CompletedAt  *time.Time `json:"completed_at,omitempty"`
	FailedAt     *time.Time `json:"failed_at,omitempty"`
	CancelledAt  *time.Time `json:"cancelled_at,omitempty"`
	UpdatedAt    time.Time  `json:"updated_at"`
}

// GetJob returns one of the caller's jobs. It returns an *APIError matching
// ErrNotFound for a job that does not exist or is another user's.
func (c *Client) GetJob(ctx context.Context, id string) (Job, error) {
	p, err := pathID("job", id)
	if err != nil {
		return Job{}, err
	}
	var j Job
	err = c.do(ctx, request{method: http.MethodGet, path: "/api/v1/jobs/" + p, auth: true}, &j)
	return j, err
}

// CancelJob cancels a QUEUED or DISPATCHED job; its hold is released. It
// returns an *APIError: ErrNotFound, or ErrConflict when the job is in
// another status.
func (c *Client) CancelJob(ctx context.Context, id string) error {
	p, err := pathID("job", id)
	if err != nil {
		return err
	}
	return c.do(ctx, request{method: http.MethodPost, path: "/api/v1/jobs/" + p + "/cancel", auth: true}, nil)
}

// JobQuery selects a page of jobs.
type JobQuery struct {
	Status Status // "" for every status
	Limit  int    // 1..PageLimitMax; 0 for the server's default (50)
	Cursor string // a previous page's NextCursor; "" for the newest jobs
}

// JobPage is one page of jobs, newest first.
type JobPage struct {
	Jobs       []Job  `json:"jobs"`
	NextCursor string `json:"next_cursor,omitempty"` // "" on the last page
}

// JobsPage returns one page of the caller's jobs. It returns an *APIError
// matching ErrInvalid for a bad status, limit or cursor.
func (c *Client) JobsPage(ctx context.Context, q JobQuery) (JobPage, error) {
	v := url.Values{}
	if q.Status != "" {
		v.Set("status", string(q.Status))
	}
	if q.Limit != 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Cursor != "" {
		v.Set("cursor", q.Cursor)
	}
	var p JobPage
	err := c.do(ctx, request{method: http.MethodGet, path: "/api/v1/jobs", query: v, auth: true}, &p)
	return p, err
}

// AllJobs iterates over the caller's jobs in status ("" for all), newest
// first, fetching pages as it goes. Iteration stops after yielding an
// error (the error of the page that failed).
func (c *Client) AllJobs(ctx context.Context, status Status) iter.Seq2[Job, error] {
	return func(yield func(Job, error) bool) {
		q := JobQuery{Status: status, Limit: PageLimitMax}
		for {
			p, err := c.JobsPage(ctx, q)
			if err != nil {
				yield(Job{}, err)
				return
			}
			for _, j := range p.Jobs {
				if !yield(j, nil) {
					return
				}
			}
			if p.NextCursor == "" || len(p.Jobs) == 0 {
				return
			}
			q.Cursor = p.NextCursor
		}
	}
}

// ListJobs returns the caller's jobs in any of statuses (all jobs when none
// is given), newest first, like the guide's list_jobs(status="RUNNING").
// It returns an error wrapping ErrTooManyJobs rather than more than
// ListJobsMax jobs, and the *APIError of a page that failed.
func (c *Client) ListJobs(ctx context.Context, statuses ...Status) ([]Job, error) {
	if len(statuses) == 0 {
		statuses = []Status{""}
	}
	var out []Job
	seen := map[string]bool{} // a job may change status between two statuses' queries
	for _, st := range slices.Compact(slices.Sorted(slices.Values(statuses))) {
		for j, err := range c.AllJobs(ctx, st) {
			if err != nil {
				return nil, err
			}
			if seen[j.ID] {
				continue
			}
			seen[j.ID] = true
			if len(out) == ListJobsMax {
				return nil, fmt.Errorf("%w: more than %d; iterate with AllJobs", ErrTooManyJobs, ListJobsMax)
			}
			out = append(out, j)
		}
	}
	slices.SortStableFunc(out, func(a, b Job) int {
		if c := b.SubmittedAt.Compare(a.SubmittedAt); c != 0 {
			return c
		}
		return cmp.Compare(b.ID, a.ID)
	})
	return out, nil
}

// ParseStatus returns s (any case) as a Status, or an error naming the
// valid ones.
func ParseStatus(s string) (Status, error) {
	st := Status(strings.ToUpper(strings.TrimSpace(s)))
	switch st {
	case StatusQueued, StatusDispatched, StatusRunning, StatusCompleted, StatusFailed, StatusCancelled:
		return st, nil
	}
	return "", fmt.Errorf("status %q: want QUEUED, DISPATCHED, RUNNING, COMPLETED, FAILED or CANCELLED", s)
}
