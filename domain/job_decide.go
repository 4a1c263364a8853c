package domain

import (
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// Submit accepts the job and returns one JobSubmitted; the job becomes QUEUED.
// The owner's credits must already be held for s.Cost. It returns ErrJobExists
// if the job was already submitted, ErrInvalidID for a bad job id, and the
// errors of Submission.Validate.
func (j *Job) Submit(s Submission, now time.Time) ([]Event, error) {
	if j.Exists() {
		return nil, fmt.Errorf("%w: %s", ErrJobExists, j.id)
	}
	if err := checkID("job id", string(j.id)); err != nil {
		return nil, err
	}
	s, err := s.normalize()
	if err != nil {
		return nil, err
	}
	return []Event{JobSubmitted{
		JobID:    j.id,
		Owner:    s.Owner,
		Type:     s.Type,
		Priority: s.Priority,
		GPU:      s.GPU,
		Payload:  s.Payload,
		Cost:     s.Cost,
		At:       stamp(now),
	}}, nil
}

// Dispatch assigns a QUEUED job to node and returns one JobDispatched; the
// job becomes DISPATCHED. The caller checks the node serves the job
// (Node.CanRun). It returns ErrJobNotFound, ErrInvalidID for a bad node id,
// and *InvalidTransitionError unless the job is QUEUED.
func (j *Job) Dispatch(node NodeID, now time.Time) ([]Event, error) {
	if err := j.expect(StatusDispatched, StatusQueued); err != nil {
		return nil, err
	}
	if err := checkID("node id", string(node)); err != nil {
		return nil, err
	}
	return []Event{JobDispatched{JobID: j.id, NodeID: node, Attempt: j.attempts + 1, At: stamp(now)}}, nil
}

// Start records that node began executing the job and returns one
// JobStarted; the job becomes RUNNING. It returns ErrJobNotFound,
// *InvalidTransitionError unless the job is DISPATCHED, and ErrWrongNode if
// the job was dispatched to another node.
func (j *Job) Start(node NodeID, now time.Time) ([]Event, error) {
	if err := j.expectNode(node, StatusRunning, StatusDispatched); err != nil {
		return nil, err
	}
	return []Event{JobStarted{JobID: j.id, NodeID: node, At: stamp(now)}}, nil
}

// Complete records the job's result and returns one JobCompleted; the job
// becomes COMPLETED. sha256Hex is the result's SHA-256 in hex (stored lower
// case) and size its length in bytes. It returns ErrJobNotFound,
// *InvalidTransitionError unless the job is RUNNING, ErrWrongNode, and
// ErrInvalidResult for a malformed hash or a size outside 0..1 TiB.
func (j *Job) Complete(node NodeID, sha256Hex string, size int64, now time.Time) ([]Event, error) {
	return j.CompleteWithInput(node, sha256Hex, size, "", now)
}

// CompleteWithInput is Complete that also records the SHA-256 (hex) of
// the input the node fetched and ran the job on, so the anchored history
// shows what was rendered; "" records none. It returns Complete's errors,
// and ErrInvalidResult for an input hash that is not 64 hex digits.
func (j *Job) CompleteWithInput(node NodeID, sha256Hex string, size int64, inputSHA256 string, now time.Time) ([]Event, error) {
	if err := j.expectNode(node, StatusCompleted, StatusRunning); err != nil {
		return nil, err
	}
	sum := strings.ToLower(sha256Hex)
	if b, err := hex.DecodeString(sum); err != nil || len(b) != 32 {
		return nil, fmt.Errorf("%w: sha256 %q is not 64 hex digits", ErrInvalidResult, truncate(sha256Hex, 80))
	}
	if size < 0 || size > resultBytesMax {
		return nil, fmt.Errorf("%w: size %d", ErrInvalidResult, size)
	}
	input := strings.ToLower(inputSHA256)
	if b, err := hex.DecodeString(input); input != "" && (err != nil || len(b) != 32) {
		return nil, fmt.Errorf("%w: input sha256 %q is not 64 hex digits", ErrInvalidResult, truncate(inputSHA256, 80))
	}
	return []Event{JobCompleted{
		JobID: j.id, Owner: j.owner, NodeID: node,
		ResultSHA256: sum, ResultBytes: size, InputSHA256: input, At: stamp(now),
	}}, nil
}

// Fail records a failure reported by node and returns one JobFailed. With
// attempts left the job goes back to QUEUED (WillRetry), else it becomes
// FAILED. The message is cleaned and cut to 2 KiB; it may be empty. It
// returns ErrJobNotFound, *InvalidTransitionError unless the job is
// DISPATCHED or RUNNING, and ErrWrongNode.
func (j *Job) Fail(node NodeID, message string, now time.Time) ([]Event, error) {
	retry := j.attempts < AttemptsMax
	if err := j.expectNode(node, retryStatus(retry), StatusDispatched, StatusRunning); err != nil {
		return nil, err
	}
	return []Event{JobFailed{
		JobID: j.id, Owner: j.owner, NodeID: node,
		Error: cleanText(message, errorBytesMax), Attempt: j.attempts, WillRetry: retry,
		At: stamp(now),
	}}, nil
}

// TimeOut ends an attempt that stayed DISPATCHED for DispatchTimeout and
// returns one JobTimedOut; like a failure, the job goes back to QUEUED with
// attempts left, else becomes FAILED. It returns ErrJobNotFound,
// *InvalidTransitionError unless the job is DISPATCHED, and ErrNotTimedOut if
// now is before TimesOutAt.
func (j *Job) TimeOut(now time.Time) ([]Event, error) {
	retry := j.attempts < AttemptsMax
	if err := j.expect(retryStatus(retry), StatusDispatched); err != nil {
		return nil, err
	}
	if now.Before(j.TimesOutAt()) {
		return nil, fmt.Errorf("%w: job %s times out at %s", ErrNotTimedOut, j.id,
			j.TimesOutAt().Format(time.RFC3339))
	}
	return []Event{JobTimedOut{
		JobID: j.id, Owner: j.owner, NodeID: j.node,
		Attempt: j.attempts, WillRetry: retry, At: stamp(now),
	}}, nil
}

// Cancel cancels a QUEUED or DISPATCHED job and returns one JobCancelled; the
// job becomes CANCELLED. The caller checks the requester owns the job. It
// returns ErrJobNotFound, ErrInvalidReason for an empty reason, and an
// *InvalidTransitionError matching ErrNotCancellable in any other status.
func (j *Job) Cancel(reason string, now time.Time) ([]Event, error) {
	if err := j.expect(StatusCancelled, StatusQueued, StatusDispatched); err != nil {
		return nil, err
	}
	clean, err := requireReason(reason)
	if err != nil {
		return nil, err
	}
	return []Event{JobCancelled{JobID: j.id, Owner: j.owner, Reason: clean, At: stamp(now)}}, nil
}

// retryStatus returns the status a failed attempt leads to.
func retryStatus(retry bool) Status {
	if retry {
		return StatusQueued
	}
	return StatusFailed
}

// expect returns ErrJobNotFound if the job was never submitted and an
// *InvalidTransitionError to status to unless the job is in one of from.
func (j *Job) expect(to Status, from ...Status) error {
	if !j.Exists() {
		return fmt.Errorf("%w: %s", ErrJobNotFound, truncate(string(j.id), 40))
	}
	for _, s := range from {
		if j.status == s {
			return nil
		}
	}
	return &InvalidTransitionError{From: j.status, To: to}
}

// expectNode is expect, then ErrWrongNode unless the job is on node.
func (j *Job) expectNode(node NodeID, to Status, from ...Status) error {
	if err := j.expect(to, from...); err != nil {
		return err
	}
	if node != j.node {
		return fmt.Errorf("%w: job %s is on another node", ErrWrongNode, j.id)
	}
	return nil
}
