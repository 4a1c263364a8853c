package commands

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/eventstore"
)

// SubmitJob asks to run a job for Owner.
type SubmitJob struct {
	JobID    domain.JobID // empty: derived from the actor's idempotency key, or fresh without one
	Owner    domain.UserID
	Type     domain.JobType
	Priority domain.Priority
	GPU      bool
	Payload  domain.Payload
}

// Submitted is what a submission did.
type Submitted struct {
	JobID    domain.JobID
	NodeID   domain.NodeID // empty while the job waits for a free slot
	Status   domain.Status
	Cost     domain.Credits
	Position uint64 // the log position the command reached
}

// SubmitJob holds the job's cost on the owner's account, creates the job and
// dispatches it when a node has a free slot (it stays QUEUED otherwise).
// When the store offers eventstore.MultiAppender the hold and the job are
// one atomic append; otherwise the two streams are written in that fixed
// order and the orphan-hold reactor releases a hold whose job never
// appeared. It returns the domain's validation errors,
// domain.ErrInsufficientCredits, and (only when the credits suffice)
// domain.ErrNoHealthyNodes when no healthy node runs the job's type;
// neither refusal writes anything.
func (s *Service) SubmitJob(ctx context.Context, a Actor, cmd SubmitJob) (Submitted, error) {
	now := s.now()
	if cmd.JobID == "" { // a retried request creates the same job, never a second one
		cmd.JobID = domain.JobID(a.newID("job", string(cmd.Owner)))
	}
	cost, err := s.prices.Cost(cmd.Type)
	if err != nil {
		return Submitted{}, err
	}
	sub := domain.Submission{Owner: cmd.Owner, Type: cmd.Type, Priority: cmd.Priority, GPU: cmd.GPU, Payload: cmd.Payload, Cost: cost}
	if err := sub.Validate(); err != nil {
		return Submitted{}, err
	}
	if !domain.ValidID(string(cmd.JobID)) {
		return Submitted{}, fmt.Errorf("%w: job id", domain.ErrInvalidID)
	}
	hold := s.holdDecision(cmd.JobID, sub, now)
	var res eventstore.AppendResult
	var dispatched bool
	if s.accounts.multiAppender() != nil {
		res, dispatched, err = s.submitAtomically(ctx, a, cmd.JobID, sub, hold, now)
	} else {
		res, dispatched, err = s.submitPerStream(ctx, a, cmd.JobID, sub, hold, now)
	}
	if err != nil {
		return Submitted{}, err
	}
	pos := res.LastPosition
	if !dispatched {
		if p, err := s.DispatchWaiting(ctx); err != nil {
			s.log.Warn("dispatch after submit", "job", cmd.JobID, "err", err)
		} else {
			pos = max(pos, p)
		}
	}
	st, node := domain.StatusQueued, s.registry.JobNode(cmd.JobID)
	if node != "" {
		st = domain.StatusDispatched
	}
	return Submitted{JobID: cmd.JobID, NodeID: node, Status: st, Cost: cost, Position: pos}, nil
}

// holdDecision holds the submission's cost on the owner's account. A hold
// already written for this job id (by a submission that crashed before its
// job, or a retry of the same idempotency key, which derives the same id) is
// left as it is. The money is decided before the nodes are asked about, so a
// creator short of credits is told so (402) whatever the nodes; either
// refusal writes nothing.
func (s *Service) holdDecision(id domain.JobID, sub domain.Submission, now time.Time) decision[*domain.Account] {
	noNodes := func() error {
		if s.registry.HealthyFor(sub.Type, sub.GPU, now) {
			return nil
		}
		return fmt.Errorf("%w for %s jobs", domain.ErrNoHealthyNodes, sub.Type)
	}
	return func(acc *domain.Account) ([]domain.Event, error) {
		if h, ok := acc.JobHold(id); ok && h.Amount == sub.Cost {
			return nil, noNodes()
		}
		evs, err := acc.Hold(id, sub.Cost, now)
		if err != nil {
			return nil, err
		}
		return evs, noNodes()
	}
}

// submitPerStream appends the hold, then the job: two commits. A crash
// between them leaves a hold without its job, which the orphan-hold reactor
// releases; a retry of the same submission resumes it.
func (s *Service) submitPerStream(ctx context.Context, a Actor, id domain.JobID, sub domain.Submission, hold decision[*domain.Account], now time.Time) (eventstore.AppendResult, bool, error) {
	if _, err := s.accounts.update(ctx, domain.AccountStream(sub.Owner), string(sub.Owner), a.cause("hold/"+string(id)), hold); err != nil {
		return eventstore.AppendResult{}, false, err
	}
	return s.submitAndDispatch(ctx, a, id, sub, now)
}

// submitAtomically appends the hold and the job (dispatched, when a node
// has a free slot) in one atomic append, in the account's lane: one commit
// per submission. A command whose job another command of its batch also
// submits (the same idempotency key twice at once) runs again after it.
func (s *Service) submitAtomically(ctx context.Context, a Actor, id domain.JobID, sub domain.Submission, hold decision[*domain.Account], now time.Time) (eventstore.AppendResult, bool, error) {
	for attempt := 0; ; attempt++ {
		node, reserved := s.dispatcher.ReserveNew(id, sub, now)
		var res eventstore.AppendResult
		dispatched := false
		_, err := s.accounts.updateJoint(ctx, domain.AccountStream(sub.Owner), string(sub.Owner), a.cause("hold/"+string(id)), hold,
			func(ctx context.Context) (*joint, error) {
				dispatched = false
				j, err := s.jobs.jointPart(ctx, domain.JobStream(id), string(id), a.cause("submit"), s.submitDecision(sub, node, reserved, now, &dispatched))
				if j != nil {
					done := j.done
					j.done = func(r eventstore.AppendResult) { res = r; done(r) }
				}
				return j, err
			})
		if reserved && (err != nil || !dispatched) {
			s.registry.DropReservation(id, node)
		}
		if errors.Is(err, errJointRepeated) && attempt < conflictRetriesMax {
			continue
		}
		return res, dispatched && err == nil, err
	}
}

// submitAndDispatch creates the job and, when a node has a free slot and no
// job waits ahead of it, dispatches it in the same append: one commit
// instead of two on the submission's path. It reports whether it did.
func (s *Service) submitAndDispatch(ctx context.Context, a Actor, id domain.JobID, sub domain.Submission, now time.Time) (eventstore.AppendResult, bool, error) {
	node, reserved := s.dispatcher.ReserveNew(id, sub, now)
	dispatched := false
	res, err := s.jobs.update(ctx, domain.JobStream(id), string(id), a.cause("submit"), s.submitDecision(sub, node, reserved, now, &dispatched))
	if reserved && (err != nil || !dispatched) {
		s.registry.DropReservation(id, node)
	}
	return res, dispatched, err
}

// submitDecision creates the job and, when reserved, dispatches it to node
// in the same events, setting *dispatched. A job the same owner already
// created (an earlier attempt of this submission) is left as it is.
func (s *Service) submitDecision(sub domain.Submission, node domain.NodeID, reserved bool, now time.Time, dispatched *bool) decision[*domain.Job] {
	return func(j *domain.Job) ([]domain.Event, error) {
		*dispatched = false
		if j.Exists() && j.Owner() == sub.Owner {
			return nil, nil // resumed: the job was created by an earlier attempt
		}
		evs, err := j.Submit(sub, now)
		if err != nil || !reserved {
			return evs, err
		}
		next := j.Snapshot()
		for _, e := range evs {
			next.Apply(e)
		}
		more, err := next.Dispatch(node, now)
		if err != nil {
			return evs, nil // dispatched by the next pass instead
		}
		*dispatched = true
		return append(evs, more...), nil
	}
}

// DispatchWaiting runs a dispatch pass: waiting jobs go to nodes with free
// slots, highest priority first (see dispatch.Dispatcher.DispatchWaiting).
// It returns the last log position written (0 if none).
func (s *Service) DispatchWaiting(ctx context.Context) (uint64, error) {
	return s.dispatcher.DispatchWaiting(ctx, s)
}

// Dispatch assigns a waiting job to node; the dispatcher calls it for the
// slots it reserved. It returns domain.ErrJobNotFound and
// *domain.InvalidTransitionError.
func (s *Service) Dispatch(ctx context.Context, id domain.JobID, node domain.NodeID) (uint64, error) {
	now := s.now()
	res, err := s.jobs.update(ctx, domain.JobStream(id), string(id), Actor{ID: "system:dispatcher"}.cause(""),
		func(j *domain.Job) ([]domain.Event, error) { return j.Dispatch(node, now) })
	return res.LastPosition, err
}

// FailLostJob fails the attempt of a job whose node was lost or retired, so
// it is retried elsewhere. Errors as FailJob.
func (s *Service) FailLostJob(ctx context.Context, node domain.NodeID, id domain.JobID, message string) (uint64, error) {
	return s.FailJob(ctx, Actor{ID: "system:lost-nodes"}, node, id, message)
}

// StartJob records that node began running the job. It returns
// domain.ErrJobNotFound, domain.ErrWrongNode and *domain.InvalidTransitionError.
func (s *Service) StartJob(ctx context.Context, a Actor, node domain.NodeID, id domain.JobID) (uint64, error) {
	now := s.now()
	return s.jobCommand(ctx, a, id, func(j *domain.Job) ([]domain.Event, error) { return j.Start(node, now) })
}

// CompleteJob records the job's result (its SHA-256 in hex and its size);
// the settlement reactor then deducts the hold. Errors as StartJob, plus
// domain.ErrInvalidResult.
func (s *Service) CompleteJob(ctx context.Context, a Actor, node domain.NodeID, id domain.JobID, sha256Hex string, size int64) (uint64, error) {
	return s.CompleteJobInput(ctx, a, node, id, sha256Hex, size, "")
}

// CompleteJobInput is CompleteJob that also records the SHA-256 of the
// input the node fetched ("" for none). Errors as CompleteJob.
func (s *Service) CompleteJobInput(ctx context.Context, a Actor, node domain.NodeID, id domain.JobID, sha256Hex string, size int64, inputSHA256 string) (uint64, error) {
	now := s.now()
	return s.jobCommand(ctx, a, id, func(j *domain.Job) ([]domain.Event, error) {
		return j.CompleteWithInput(node, sha256Hex, size, inputSHA256, now)
	})
}

// FailJob records a failure reported by node; the job is queued again while
// it has retries left. Errors as StartJob.
func (s *Service) FailJob(ctx context.Context, a Actor, node domain.NodeID, id domain.JobID, message string) (uint64, error) {
	now := s.now()
	return s.jobCommand(ctx, a, id, func(j *domain.Job) ([]domain.Event, error) { return j.Fail(node, message, now) })
}

// CancelJob cancels a QUEUED or DISPATCHED job of owner. Another user's job
// is domain.ErrJobNotFound (no existence leak); a job in another status is
// domain.ErrNotCancellable.
func (s *Service) CancelJob(ctx context.Context, a Actor, owner domain.UserID, id domain.JobID) (uint64, error) {
	now := s.now()
	return s.jobCommand(ctx, a, id, func(j *domain.Job) ([]domain.Event, error) {
		if j.Exists() && owner != "" && j.Owner() != owner {
			return nil, fmt.Errorf("%w: %s", domain.ErrJobNotFound, id)
		}
		return j.Cancel("cancelled by owner", now)
	})
}

// TimeOutJob ends an attempt left DISPATCHED for domain.DispatchTimeout.
// It returns domain.ErrNotTimedOut before then.
func (s *Service) TimeOutJob(ctx context.Context, id domain.JobID) (uint64, error) {
	now := s.now()
	return s.jobCommand(ctx, Actor{ID: "system:timeouts"}, id, func(j *domain.Job) ([]domain.Event, error) { return j.TimeOut(now) })
}

// jobCommand runs one decision on a job, feeds its events to the registry
// and, when a slot may have freed, dispatches waiting jobs.
func (s *Service) jobCommand(ctx context.Context, a Actor, id domain.JobID, decide decision[*domain.Job]) (uint64, error) {
	if !domain.ValidID(string(id)) {
		return 0, fmt.Errorf("%w: job id", domain.ErrInvalidID)
	}
	res, err := s.jobs.update(ctx, domain.JobStream(id), string(id), a.cause(""), decide)
	if err != nil {
		return 0, err
	}
	if s.registry.WaitingCount() == 0 {
		return res.LastPosition, nil // no job waits for the slot this may have freed
	}
	if p, err := s.DispatchWaiting(ctx); err == nil {
		return max(res.LastPosition, p), nil
	}
	return res.LastPosition, nil
}

// isDecisionError reports whether err is the domain refusing a command (or a
// lost race), as opposed to the store failing.
func isDecisionError(err error) bool {
	var de *domain.Error
	return errors.As(err, &de) || errors.Is(err, eventstore.ErrConflict)
}
