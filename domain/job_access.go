package domain

import "time"

// ID returns the job's id.
func (j *Job) ID() JobID { return j.id }

// Version returns the number of events applied (0 for a new stream), which is
// the stream's version: append what the job decides next with
// expected version Exact(Version()).
func (j *Job) Version() uint64 { return j.version }

// Exists reports whether the job was submitted.
func (j *Job) Exists() bool { return j.version > 0 }

// Owner returns the user who submitted the job.
func (j *Job) Owner() UserID { return j.owner }

// Type returns the job type.
func (j *Job) Type() JobType { return j.jobType }

// Priority returns the job's dispatch priority.
func (j *Job) Priority() Priority { return j.priority }

// GPU reports whether the job needs a GPU node.
func (j *Job) GPU() bool { return j.gpu }

// Payload returns the job's input.
func (j *Job) Payload() Payload { return j.payload }

// Cost returns the credits held for the job, charged if it completes.
func (j *Job) Cost() Credits { return j.cost }

// Status returns the job's status; "" before it is submitted.
func (j *Job) Status() Status { return j.status }

// Node returns the node of the current or last attempt; "" while QUEUED.
func (j *Job) Node() NodeID { return j.node }

// Attempts returns how many times the job was dispatched (0..AttemptsMax).
func (j *Job) Attempts() int { return j.attempts }

// ResultSHA256 returns the result's SHA-256 in lower-case hex once COMPLETED.
func (j *Job) ResultSHA256() string { return j.resultSHA256 }

// ResultBytes returns the result's size in bytes once COMPLETED.
func (j *Job) ResultBytes() int64 { return j.resultBytes }

// LastError returns the error of the last failed or timed-out attempt.
func (j *Job) LastError() string { return j.lastError }

// CancelReason returns why the job was cancelled, once CANCELLED.
func (j *Job) CancelReason() string { return j.cancelReason }

// Cancellable reports whether Cancel would succeed: QUEUED or DISPATCHED.
func (j *Job) Cancellable() bool {
	return j.status == StatusQueued || j.status == StatusDispatched
}

// SubmittedAt returns when the job was submitted.
func (j *Job) SubmittedAt() time.Time { return j.submittedAt }

// DispatchedAt returns when the job was last dispatched; zero if never.
func (j *Job) DispatchedAt() time.Time { return j.dispatchedAt }

// StartedAt returns when the job last started running; zero if never.
func (j *Job) StartedAt() time.Time { return j.startedAt }

// FinishedAt returns when the job reached a terminal status; zero before.
func (j *Job) FinishedAt() time.Time { return j.finishedAt }

// UpdatedAt returns the time of the job's last event.
func (j *Job) UpdatedAt() time.Time { return j.updatedAt }

// TimesOutAt returns when TimeOut becomes allowed: DispatchedAt plus
// DispatchTimeout while DISPATCHED, and the zero time otherwise.
func (j *Job) TimesOutAt() time.Time {
	if j.status != StatusDispatched {
		return time.Time{}
	}
	return j.dispatchedAt.Add(DispatchTimeout)
}
