package replay

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/eventstore"
)

// Job is a job as of a moment: its lifecycle from its own stream and its
// money from its owner's account stream.
type Job struct {
	ID     domain.JobID `json:"id"`
	Moment Moment       `json:"moment"`

	Owner        domain.UserID   `json:"owner"`
	Type         domain.JobType  `json:"job_type"`
	Priority     domain.Priority `json:"priority"`
	GPU          bool            `json:"gpu_required"`
	PayloadRef   string          `json:"payload_ref,omitempty"`
	Status       domain.Status   `json:"status"`
	Node         domain.NodeID   `json:"node_id,omitempty"`
	Attempts     int             `json:"attempts"`
	LastError    string          `json:"last_error,omitempty"`
	CancelReason string          `json:"cancel_reason,omitempty"`
	ResultSHA256 string          `json:"result_sha256,omitempty"`
	ResultBytes  int64           `json:"result_bytes,omitempty"`

	SubmittedAt  time.Time `json:"submitted_at"`
	DispatchedAt time.Time `json:"dispatched_at,omitzero"` // the latest dispatch
	StartedAt    time.Time `json:"started_at,omitzero"`
	FinishedAt   time.Time `json:"finished_at,omitzero"` // completed, finally failed or cancelled

	Cost     domain.Credits `json:"cost"`     // what the submission held
	Hold     *Hold          `json:"hold"`     // the owner's money record; nil before the hold
	Deducted domain.Credits `json:"charged"`  // deducted at completion
	Refunded domain.Credits `json:"refunded"` // given back after the charge

	// History is every event of the job and of its money, by position.
	History        []Entry `json:"history"`
	HistoryOmitted int     `json:"history_omitted,omitempty"`
}

// JobAt rebuilds job id as of m from its stream and the money events
// about it in its owner's account stream. It returns an error wrapping
// domain.ErrJobNotFound when the job has no event up to m, and otherwise
// the errors of AccountAt.
func JobAt(ctx context.Context, store Store, id domain.JobID, m Moment) (*Job, error) {
	agg := domain.NewJob(id)
	var lifecycle []Entry
	err := readStream(ctx, store, domain.JobStream(id), m.Position, func(rec eventstore.RecordedEvent, e domain.Event) {
		agg.Apply(e)
		lifecycle = append(lifecycle, newEntry(rec, e))
	})
	if err != nil {
		return nil, err
	}
	if !agg.Exists() {
		return nil, fmt.Errorf("%w: job %s has no event up to position %d", domain.ErrJobNotFound, id, m.Position)
	}
	out := newJob(agg, m)
	money, hold, err := jobMoney(ctx, store, agg.Owner(), id, m)
	if err != nil {
		return nil, err
	}
	if hold != nil {
		out.Hold, out.Deducted, out.Refunded = hold, hold.Deducted, hold.Refunded
	}
	all := append(lifecycle, money...)
	slices.SortFunc(all, func(a, b Entry) int { return cmp.Compare(a.Position, b.Position) })
	for _, e := range all {
		out.History, out.HistoryOmitted = appendBounded(out.History, e, out.HistoryOmitted)
	}
	return out, nil
}

func newJob(j *domain.Job, m Moment) *Job {
	return &Job{
		ID: j.ID(), Moment: m, Owner: j.Owner(), Type: j.Type(), Priority: j.Priority(), GPU: j.GPU(),
		PayloadRef: j.Payload().URI, Status: j.Status(), Node: j.Node(), Attempts: j.Attempts(),
		LastError: j.LastError(), CancelReason: j.CancelReason(), ResultSHA256: j.ResultSHA256(), ResultBytes: j.ResultBytes(),
		SubmittedAt: j.SubmittedAt(), DispatchedAt: j.DispatchedAt(), StartedAt: j.StartedAt(), FinishedAt: j.FinishedAt(),
		Cost: j.Cost(), History: []Entry{},
	}
}

// jobMoney returns the money events about job in owner's account up to m,
// and the job's hold as of m (nil if there was none).
func jobMoney(ctx context.Context, store Store, owner domain.UserID, job domain.JobID, m Moment) ([]Entry, *Hold, error) {
	agg := domain.NewAccount(owner)
	var entries []Entry
	var hold *Hold
	err := readStream(ctx, store, domain.AccountStream(owner), m.Position, func(rec eventstore.RecordedEvent, e domain.Event) {
		agg.Apply(e)
		if j, ok := jobOfMoney(e); !ok || j != job {
			return
		}
		entries = append(entries, newEntry(rec, e))
		if h, ok := e.(domain.CreditsHeld); ok {
			hold = &Hold{Job: job, HeldAt: h.At, Position: rec.Position}
		}
	})
	if err != nil || hold == nil {
		return entries, nil, err
	}
	h, _ := agg.JobHold(job)
	hold.Amount, hold.State, hold.Deducted, hold.Refunded = h.Amount, h.State, h.Deducted(), h.Refunded
	return entries, hold, nil
}
