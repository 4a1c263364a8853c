package domain

import "time"

// JobSubmitted records an accepted job; it is the first event of its stream
// and leaves the job QUEUED. Cost is what the owner's account held for it.
type JobSubmitted struct {
	JobID    JobID     `json:"job_id"`
	Owner    UserID    `json:"owner"`
	Type     JobType   `json:"type"`
	Priority Priority  `json:"priority"`
	GPU      bool      `json:"gpu"`
	Payload  Payload   `json:"payload"`
	Cost     Credits   `json:"cost"`
	At       time.Time `json:"at"`
}

// JobDispatched records that a QUEUED job was assigned to a node; Attempt
// counts dispatches from 1 to AttemptsMax. It leaves the job DISPATCHED.
type JobDispatched struct {
	JobID   JobID     `json:"job_id"`
	NodeID  NodeID    `json:"node_id"`
	Attempt int       `json:"attempt"`
	At      time.Time `json:"at"`
}

// JobStarted records that the node began executing; the job is RUNNING.
type JobStarted struct {
	JobID  JobID     `json:"job_id"`
	NodeID NodeID    `json:"node_id"`
	At     time.Time `json:"at"`
}

// JobCompleted records the result's SHA-256 (lower-case hex) and size in
// bytes, so the anchored log covers the result. The job is COMPLETED and its
// owner's hold is to be deducted.
type JobCompleted struct {
	JobID        JobID  `json:"job_id"`
	Owner        UserID `json:"owner"`
	NodeID       NodeID `json:"node_id"`
	ResultSHA256 string `json:"result_sha256"`
	ResultBytes  int64  `json:"result_bytes"`
	// InputSHA256 is the SHA-256 of the input the node fetched (a payload
	// URI's content), "" when it fetched none. Added after the first
	// release: omitted when empty, so every event written before it
	// encodes to the same bytes, and older readers ignore the field (no
	// new schema version is needed: see SchemaVersion).
	InputSHA256 string    `json:"input_sha256,omitempty"`
	At          time.Time `json:"at"`
}

// JobFailed records a failure reported by the node. With WillRetry the job
// goes back to QUEUED; without, it is FAILED and the owner's hold is to be
// released.
type JobFailed struct {
	JobID     JobID     `json:"job_id"`
	Owner     UserID    `json:"owner"`
	NodeID    NodeID    `json:"node_id"`
	Error     string    `json:"error"`
	Attempt   int       `json:"attempt"`
	WillRetry bool      `json:"will_retry"`
	At        time.Time `json:"at"`
}

// JobTimedOut records that a job stayed DISPATCHED for DispatchTimeout. It
// counts as a failed attempt: with WillRetry the job goes back to QUEUED,
// without it is FAILED and the owner's hold is to be released.
type JobTimedOut struct {
	JobID     JobID     `json:"job_id"`
	Owner     UserID    `json:"owner"`
	NodeID    NodeID    `json:"node_id"`
	Attempt   int       `json:"attempt"`
	WillRetry bool      `json:"will_retry"`
	At        time.Time `json:"at"`
}

// JobCancelled records the cancel of a QUEUED or DISPATCHED job. The job is
// CANCELLED and the owner's hold is to be released.
type JobCancelled struct {
	JobID  JobID     `json:"job_id"`
	Owner  UserID    `json:"owner"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

// EventType returns EventJobSubmitted.
func (JobSubmitted) EventType() string { return EventJobSubmitted }

// EventType returns EventJobDispatched.
func (JobDispatched) EventType() string { return EventJobDispatched }

// EventType returns EventJobStarted.
func (JobStarted) EventType() string { return EventJobStarted }

// EventType returns EventJobCompleted.
func (JobCompleted) EventType() string { return EventJobCompleted }

// EventType returns EventJobFailed.
func (JobFailed) EventType() string { return EventJobFailed }

// EventType returns EventJobTimedOut.
func (JobTimedOut) EventType() string { return EventJobTimedOut }

// EventType returns EventJobCancelled.
func (JobCancelled) EventType() string { return EventJobCancelled }

// SettleAction is what a job event asks of the owner's hold.
type SettleAction string

// The settle actions.
const (
	SettleDeduct  SettleAction = "deduct"  // the job completed: charge it
	SettleRelease SettleAction = "release" // the job ended uncharged
)

// Settlement tells the reactor that follows the log which account command a
// job event calls for: Account.Deduct(Job) or Account.Release(Job, Reason)
// on the account of Owner.
type Settlement struct {
	Owner  UserID
	Job    JobID
	Action SettleAction
	Reason string // for SettleRelease: "cancelled", "failed" or "timed_out"
}

// SettlementOf returns the settlement e calls for, and false if e ends no
// job: only JobCompleted, JobCancelled, and JobFailed or JobTimedOut without
// a retry settle a hold.
func SettlementOf(e Event) (Settlement, bool) {
	switch e := e.(type) {
	case JobCompleted:
		return Settlement{Owner: e.Owner, Job: e.JobID, Action: SettleDeduct}, true
	case JobCancelled:
		return Settlement{e.Owner, e.JobID, SettleRelease, "cancelled"}, true
	case JobFailed:
		if !e.WillRetry {
			return Settlement{e.Owner, e.JobID, SettleRelease, "failed"}, true
		}
	case JobTimedOut:
		if !e.WillRetry {
			return Settlement{e.Owner, e.JobID, SettleRelease, "timed_out"}, true
		}
	}
	return Settlement{}, false
}
