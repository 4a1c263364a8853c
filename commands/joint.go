package commands

import (
	"context"
	"fmt"

	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/eventstore"
)

// A joint command writes its own stream and one other stream in a single
// atomic append, when the store offers eventstore.MultiAppender: a
// submission's hold and its job land in one commit instead of two. The
// command still takes its turn in its own stream's lane (a hot account
// batches its submissions), and the other stream's part is decided, on
// that stream's aggregate, only once the command's own decision succeeded.
// On a store without MultiAppender the callers use two updates instead,
// and the reactor repairs what a crash between them leaves.

// joint is a command's part on another stream, decided for one attempt.
type joint struct {
	part eventstore.StreamAppend
	// done is told the part's result once the append committed.
	done func(eventstore.AppendResult)
}

// jointDecision decides a command's part on another stream, after the
// command's own decision succeeded; it runs again on every attempt. A nil
// joint with a nil error means the other stream needs nothing.
type jointDecision func(ctx context.Context) (*joint, error)

// errJointRepeated answers a command whose joint part names a stream that
// an earlier command of the same batch writes (two submissions of one job
// at once): the caller runs it again once that batch is done.
var errJointRepeated = fmt.Errorf("%w: another command of the batch writes the same stream", domain.ErrBusy)

// multiAppender returns the store's atomic multi-stream append, or nil.
func (r *repo[A]) multiAppender() eventstore.MultiAppender {
	m, _ := r.store.(eventstore.MultiAppender)
	return m
}

// updateJoint is update for a command that also writes another stream, in
// the same append, as decideJoint decides. The store must offer
// eventstore.MultiAppender.
func (r *repo[A]) updateJoint(ctx context.Context, stream, id string, c cause, decide decision[A], decideJoint jointDecision) (eventstore.AppendResult, error) {
	return r.enqueue(ctx, stream, id, &command[A]{cause: c, decide: decide, joint: decideJoint, wake: make(chan struct{})})
}

// jointPart loads the aggregate of stream, asks decide, and returns the
// events as a joint part with the aggregate's version as its expected
// version (nil when decide decides nothing). Once committed, the part's
// aggregate is cached as update's appends are (the dispatcher observes the
// part through the store it watches, as it does every append).
func (r *repo[A]) jointPart(ctx context.Context, stream, id string, c cause, decide decision[A]) (*joint, error) {
	a, err := r.load(ctx, stream, id)
	if err != nil {
		return nil, err
	}
	version := a.Version()
	events, err := decide(a)
	if err != nil || len(events) == 0 {
		return nil, err
	}
	data, err := c.encode(stream, events)
	if err != nil {
		return nil, err
	}
	return &joint{
		part: eventstore.StreamAppend{Stream: stream, Expected: eventstore.Exact(version), Events: data},
		done: func(res eventstore.AppendResult) {
			if res.Duplicate {
				return // a concurrent run of the same command wrote it
			}
			for _, e := range events {
				a.Apply(e)
			}
			r.remember(stream, a)
		},
	}, nil
}

// appendJoint appends the batch's own events (data, at version) and the
// joint parts of its commands in one atomic write, and tells each joint
// its result. It returns the own part's result (zero without own events).
func (r *repo[A]) appendJoint(ctx context.Context, m eventstore.MultiAppender, stream string, version uint64, data []eventstore.EventData, joints []*joint) (eventstore.AppendResult, error) {
	var parts []eventstore.StreamAppend
	if len(data) > 0 {
		parts = append(parts, eventstore.StreamAppend{Stream: stream, Expected: eventstore.Exact(version), Events: data})
	}
	for _, j := range joints {
		parts = append(parts, j.part)
	}
	results, err := m.AppendMulti(ctx, parts...)
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	var own eventstore.AppendResult
	if len(data) > 0 {
		own, results = results[0], results[1:]
	}
	for i, j := range joints {
		j.done(results[i])
	}
	return own, nil
}
