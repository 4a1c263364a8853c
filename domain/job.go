package domain

import (
	"fmt"
	"strings"
	"time"
)

// Status is where a job stands in its lifecycle.
type Status string

// The job statuses, exactly as the API and the creator app show them.
const (
	StatusQueued     Status = "QUEUED"
	StatusDispatched Status = "DISPATCHED"
	StatusRunning    Status = "RUNNING"
	StatusCompleted  Status = "COMPLETED"
	StatusFailed     Status = "FAILED"
	StatusCancelled  Status = "CANCELLED"
)

// Limits on a job's lifecycle and result.
const (
	// RetriesMax is how many times a failed or timed-out job is dispatched
	// again.
	RetriesMax = 3
	// AttemptsMax is how many dispatches a job gets in all: the first and
	// RetriesMax retries.
	AttemptsMax = 1 + RetriesMax
	// DispatchTimeout is how long a job may stay DISPATCHED before TimeOut
	// may end the attempt.
	DispatchTimeout = 5 * time.Minute
	// resultBytesMax bounds a result's reported size (1 TiB).
	resultBytesMax = 1 << 40
)

// ParseStatus returns s as a Status, ignoring case (for a ?status=
// filter), or an error with CodeInvalid if it names no status.
func ParseStatus(s string) (Status, error) {
	st := Status(strings.ToUpper(s))
	switch st {
	case StatusQueued, StatusDispatched, StatusRunning, StatusCompleted, StatusFailed, StatusCancelled:
		return st, nil
	}
	return "", Errorf(CodeInvalid, "unknown job status %q", truncate(s, 40))
}

// Terminal reports whether no command can change a job in status s:
// COMPLETED, FAILED or CANCELLED.
func (s Status) Terminal() bool {
	return s == StatusCompleted || s == StatusFailed || s == StatusCancelled
}

// Submission is what a creator asks for when submitting a job. Build Type
// with ParseJobType, Priority with ParsePriority and Payload with PayloadURI
// or PayloadInline. Cost comes from PriceTable.Cost and is what the owner's
// account holds for the job.
type Submission struct {
	Owner    UserID
	Type     JobType
	Priority Priority // "" means PriorityDefault
	GPU      bool
	Payload  Payload
	Cost     Credits
}

// Validate returns nil if s can be submitted, so a handler can check it
// before holding credits. It returns ErrInvalidID for a bad owner,
// ErrUnknownJobType, ErrInvalidPriority, ErrInvalidPayload,
// ErrPayloadTooLarge, or ErrInvalidAmount for a cost outside 0..creditsMax.
func (s Submission) Validate() error {
	_, err := s.normalize()
	return err
}

// normalize validates s and returns it with defaults filled in.
func (s Submission) normalize() (Submission, error) {
	if err := checkID("owner", string(s.Owner)); err != nil {
		return s, err
	}
	if !s.Type.Valid() {
		return s, fmt.Errorf("%w: %q", ErrUnknownJobType, truncate(string(s.Type), 40))
	}
	if s.Priority == "" {
		s.Priority = PriorityDefault
	}
	if !s.Priority.Valid() {
		return s, fmt.Errorf("%w: %q", ErrInvalidPriority, truncate(string(s.Priority), 40))
	}
	if s.Cost < 0 || s.Cost > creditsMax {
		return s, fmt.Errorf("%w: cost %d", ErrInvalidAmount, s.Cost)
	}
	p, err := s.Payload.normalize()
	s.Payload = p
	return s, err
}

// Job is the aggregate of one job's lifecycle, folded from the job-{id}
// stream:
//
//	QUEUED → DISPATCHED → RUNNING → COMPLETED
//	QUEUED | DISPATCHED → CANCELLED
//	DISPATCHED | RUNNING → (failure or dispatch timeout) → QUEUED, or FAILED
//
// A failure or timeout with attempts left puts the job straight back in
// QUEUED (recorded as JobFailed/JobTimedOut with WillRetry), so FAILED means
// the retries are exhausted and is final. Every command the status does not
// allow returns an *InvalidTransitionError; repeating a command is not a
// no-op but such an error.
type Job struct {
	id       JobID
	version  uint64
	owner    UserID
	jobType  JobType
	priority Priority
	gpu      bool
	payload  Payload
	cost     Credits

	status       Status
	node         NodeID
	attempts     int
	resultSHA256 string
	resultBytes  int64
	lastError    string
	cancelReason string

	submittedAt, dispatchedAt, startedAt, finishedAt, updatedAt time.Time
}

// NewJob returns the not-yet-submitted job id, at version 0.
func NewJob(id JobID) *Job { return &Job{id: id} }

// Snapshot returns a copy of j that shares nothing with it, for caching.
func (j *Job) Snapshot() *Job {
	c := *j
	return &c
}
