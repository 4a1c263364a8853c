package domain

// Apply folds one event into the job and increments its version. It is pure
// and never fails: the deciding methods validated the event before it was
// recorded. It panics on an event that is not a job event.
func (j *Job) Apply(e Event) {
	switch e := e.(type) {
	case JobSubmitted:
		j.id, j.owner, j.jobType, j.priority = e.JobID, e.Owner, e.Type, e.Priority
		j.gpu, j.payload, j.cost = e.GPU, e.Payload, e.Cost
		j.status, j.submittedAt = StatusQueued, e.At
	case JobDispatched:
		j.status, j.node, j.attempts, j.dispatchedAt = StatusDispatched, e.NodeID, e.Attempt, e.At
	case JobStarted:
		j.status, j.startedAt = StatusRunning, e.At
	case JobCompleted:
		j.status, j.finishedAt = StatusCompleted, e.At
		j.resultSHA256, j.resultBytes = e.ResultSHA256, e.ResultBytes
	case JobFailed:
		j.endAttempt(e.Error, e.WillRetry, e)
	case JobTimedOut:
		j.endAttempt("dispatch timed out on node "+string(e.NodeID), e.WillRetry, e)
	case JobCancelled:
		j.status, j.cancelReason, j.finishedAt = StatusCancelled, e.Reason, e.At
	default:
		unknownEvent("job", e)
	}
	j.updatedAt = OccurredAt(e)
	j.version++
}

// endAttempt folds a failed attempt: back to QUEUED with no node, or FAILED
// (keeping the node of the last attempt) when no retry is left.
func (j *Job) endAttempt(msg string, retry bool, e Event) {
	j.lastError = msg
	if retry {
		j.status, j.node = StatusQueued, ""
		return
	}
	j.status, j.finishedAt = StatusFailed, OccurredAt(e)
}
