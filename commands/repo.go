package commands

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/eventstore"
)

const (
	// conflictRetriesMax bounds how often a command reloads and decides
	// again after losing an optimistic-concurrency race.
	conflictRetriesMax = 50
	// cachedAggregatesMax bounds the aggregates each repository keeps warm.
	cachedAggregatesMax = 100_000
	// loadPageEvents is how many events one stream read returns while loading.
	loadPageEvents = 1000
)

// aggregate is what the domain's Account, Job and Node have in common.
type aggregate interface {
	Apply(domain.Event)
	Version() uint64
}

// repo loads aggregates of one kind and appends what they decide. It keeps a
// snapshot of every aggregate it has loaded, so a load reads only the events
// appended since — however long the stream has grown.
type repo[A aggregate] struct {
	store    eventstore.Store
	newAgg   func(id string) A
	snapshot func(A) A

	mu    sync.Mutex
	cache map[string]A // by stream; the values are never mutated
	// lanes holds, for each stream with a batch running, the commands
	// queued behind it.
	lanes map[string][]*command[A]
}

// newRepo returns a repo of the aggregates newAgg makes.
func newRepo[A aggregate](store eventstore.Store, newAgg func(string) A, snapshot func(A) A) *repo[A] {
	return &repo[A]{store: store, newAgg: newAgg, snapshot: snapshot, cache: map[string]A{}, lanes: map[string][]*command[A]{}}
}

// load returns the aggregate of stream as of the log's latest event: a
// private copy the caller may change.
func (r *repo[A]) load(ctx context.Context, stream, id string) (A, error) {
	r.mu.Lock()
	cached, ok := r.cache[stream]
	r.mu.Unlock()
	a := r.newAgg(id)
	if ok {
		a = r.snapshot(cached)
	}
	for {
		recs, err := r.store.ReadStream(ctx, stream, a.Version()+1, loadPageEvents)
		if err != nil {
			return a, fmt.Errorf("load %s: %w", stream, err)
		}
		for _, rec := range recs {
			e, err := domain.DecodeEvent(rec.Type, rec.Data)
			if err != nil {
				return a, fmt.Errorf("load %s at version %d: %w", stream, rec.Version, err)
			}
			a.Apply(e)
		}
		if len(recs) < loadPageEvents {
			break
		}
	}
	r.remember(stream, a)
	return a, nil
}

// remember caches a snapshot of a, unless a newer one is cached already.
func (r *repo[A]) remember(stream string, a A) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if cur, ok := r.cache[stream]; ok && cur.Version() >= a.Version() {
		return
	}
	if len(r.cache) >= cachedAggregatesMax {
		for k := range r.cache { // evict an arbitrary entry: cheap, and good enough
			delete(r.cache, k)
			break
		}
	}
	r.cache[stream] = r.snapshot(a)
}

// decision is one command's decision on an aggregate.
type decision[A aggregate] func(A) ([]domain.Event, error)

// update runs one command on a stream: it loads the aggregate, asks decide,
// and appends the events it returns with the aggregate's version as the
// expected version. Event ids derive from the cause's key when it is set (a
// retried command then re-appends the same ids, a no-op), and are fresh
// UUIDv7s otherwise. It returns the append's result (zero when decide
// returned no events) and decide's or the store's error; domain.ErrBusy when
// other processes kept the stream contended past the retry budget.
//
// Commands on one stream take turns in this process: one decides and
// appends at a time, and the commands that queued meanwhile are decided
// one after the other on the same aggregate and appended together. A hot
// stream (a render farm submitting frames to one account) then costs one
// append per batch instead of a storm of optimistic retries. The turns also
// keep a stream's appends in order for the dispatcher, which watches the
// store (dispatch.Dispatcher.Watch) and must see each batch before the next.
func (r *repo[A]) update(ctx context.Context, stream, id string, c cause, decide decision[A]) (eventstore.AppendResult, error) {
	return r.enqueue(ctx, stream, id, &command[A]{cause: c, decide: decide, wake: make(chan struct{})})
}

// enqueue runs q in its stream's lane: it waits for its turn, or leads.
func (r *repo[A]) enqueue(ctx context.Context, stream, id string, q *command[A]) (eventstore.AppendResult, error) {
	if r.join(stream, q) {
		select {
		case <-q.wake:
		case <-ctx.Done():
			if q.state.CompareAndSwap(commandQueued, commandAbandoned) {
				return eventstore.AppendResult{}, ctx.Err()
			}
			<-q.wake // already taken into a batch: its outcome is moments away
		}
		if q.batch == nil {
			return q.res, q.err
		}
	} else {
		q.batch = []*command[A]{q}
	}
	r.lead(ctx, stream, id, q.batch)
	return q.res, q.err
}

const (
	// batchCommandsMax bounds the commands decided and appended together.
	batchCommandsMax = 256
	// conflictBackoffMax bounds the pause before deciding again after losing
	// a race to another process.
	conflictBackoffMax = 50 * time.Millisecond
)

// A command's states while it waits in its stream's lane.
const (
	commandQueued int32 = iota
	commandTaken
	commandAbandoned
)

// command is one update waiting for, or part of, a batch.
type command[A aggregate] struct {
	cause  cause
	decide decision[A]
	// joint, when not nil, decides the command's part on another stream,
	// appended atomically with the batch (see updateJoint).
	joint jointDecision
	state atomic.Int32
	// wake is closed when the outcome is set, or when the command is handed
	// the lead of batch.
	wake  chan struct{}
	batch []*command[A]
	res   eventstore.AppendResult
	err   error
}

// join queues q behind the stream's running batch and reports true, or
// reports false when no batch runs: the caller then leads.
func (r *repo[A]) join(stream string, q *command[A]) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if pending, busy := r.lanes[stream]; busy {
		r.lanes[stream] = append(pending, q)
		return true
	}
	r.lanes[stream] = nil
	q.state.Store(commandTaken)
	return false
}

// lead runs batch, answers its other commands, and hands the lead to the
// next batch of the stream's lane (or closes the lane).
func (r *repo[A]) lead(ctx context.Context, stream, id string, batch []*command[A]) {
	r.run(ctx, stream, id, batch)
	for _, q := range batch[1:] {
		close(q.wake)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	pending := r.lanes[stream]
	var next []*command[A]
	taken := 0
	for _, q := range pending {
		if len(next) == batchCommandsMax {
			break
		}
		taken++
		if q.state.CompareAndSwap(commandQueued, commandTaken) {
			next = append(next, q)
		}
	}
	if len(next) == 0 {
		delete(r.lanes, stream)
		return
	}
	r.lanes[stream] = pending[taken:]
	next[0].batch = next
	close(next[0].wake)
}

// run decides batch's commands in order on one aggregate and appends all
// their events at once, deciding again from the stream as it is now after
// losing a race to another process.
func (r *repo[A]) run(ctx context.Context, stream, id string, batch []*command[A]) {
	// The batch's events are appended for every command in it: one caller's
	// cancellation must not undo the others'.
	ctx = context.WithoutCancel(ctx)
	for attempt := range conflictRetriesMax {
		a, err := r.load(ctx, stream, id)
		if err != nil {
			answer(batch, eventstore.AppendResult{}, err)
			return
		}
		version := a.Version()
		data, parts, joints := r.decideAll(ctx, stream, a, batch)
		if len(data) == 0 && len(joints) == 0 {
			return
		}
		var res eventstore.AppendResult
		if len(joints) > 0 {
			res, err = r.appendJoint(ctx, r.multiAppender(), stream, version, data, joints)
		} else {
			res, err = r.store.Append(ctx, stream, eventstore.Exact(version), data...)
		}
		if errors.Is(err, eventstore.ErrConflict) || errors.Is(err, eventstore.ErrDuplicateEventID) {
			// Another process wrote first (to this stream or a joint one);
			// with derived ids, a duplicate means a concurrent run of the
			// same command did. Decide again on the streams as they are now.
			pause(attempt)
			continue
		}
		if err != nil {
			for _, p := range parts {
				p.cmd.res, p.cmd.err = eventstore.AppendResult{}, fmt.Errorf("append to %s: %w", stream, err)
			}
			return
		}
		r.record(version, res, parts)
		r.remember(stream, a)
		return
	}
	answer(batch, eventstore.AppendResult{}, fmt.Errorf("%w: %s still conflicting after %d attempts: %w", domain.ErrBusy, stream, conflictRetriesMax, eventstore.ErrConflict))
}

// part is one command's share of a batch's append.
type part[A aggregate] struct {
	cmd    *command[A]
	offset int // of its first event in the append
	events []domain.Event
}

// decideAll asks each command of batch in turn, applying each one's events
// to a before the next decides, and returns the events to append and the
// commands' joint parts on other streams. A command whose decision fails
// or decides nothing is answered at once.
func (r *repo[A]) decideAll(ctx context.Context, stream string, a A, batch []*command[A]) ([]eventstore.EventData, []part[A], []*joint) {
	var data []eventstore.EventData
	var parts []part[A]
	var joints []*joint
	jointStreams := map[string]bool{}
	total := 0 // events in data and joints
	for _, q := range batch {
		q.res, q.err = eventstore.AppendResult{}, nil
		events, err := q.decide(a)
		var j *joint
		if err == nil && q.joint != nil {
			j, err = q.joint(ctx)
		}
		if err == nil && j != nil && jointStreams[j.part.Stream] {
			err = errJointRepeated
		}
		n := len(events)
		if j != nil {
			n += len(j.part.Events)
		}
		if err == nil && n > 0 && total+n > eventstore.AppendEventsMax {
			err = fmt.Errorf("%w: %s: a batch would exceed %d events", domain.ErrBusy, stream, eventstore.AppendEventsMax)
		}
		if err != nil || n == 0 {
			q.err = err
			continue
		}
		encoded, err := q.cause.encode(stream, events)
		if err != nil {
			q.err = err
			continue
		}
		for _, e := range events {
			a.Apply(e)
		}
		// A command with only a joint part has a part without events: it
		// shares the append's outcome, and its result stays zero.
		parts = append(parts, part[A]{cmd: q, offset: len(data), events: events})
		if j != nil {
			jointStreams[j.part.Stream] = true
			joints = append(joints, j)
		}
		data = append(data, encoded...)
		total += n
	}
	return data, parts, joints
}

// record answers each part with its share of the append.
func (r *repo[A]) record(version uint64, res eventstore.AppendResult, parts []part[A]) {
	for _, p := range parts {
		if len(p.events) == 0 {
			continue
		}
		first := res.FirstPosition + uint64(p.offset)
		p.cmd.res = eventstore.AppendResult{
			FirstPosition: first,
			LastPosition:  first + uint64(len(p.events)) - 1,
			NextVersion:   version + uint64(p.offset+len(p.events)),
			Duplicate:     res.Duplicate,
		}
	}
}

// answer gives every command of batch the same outcome.
func answer[A aggregate](batch []*command[A], res eventstore.AppendResult, err error) {
	for _, q := range batch {
		q.res, q.err = res, err
	}
}

// pause waits before the next attempt after a lost race: exponential with
// full jitter, so racing processes spread out instead of colliding again.
func pause(attempt int) {
	limit := min(conflictBackoffMax, time.Millisecond<<min(attempt, 16))
	time.Sleep(rand.N(limit) + 1)
}

// cause says who caused events and how their ids are made.
type cause struct {
	actor       string
	correlation string
	causation   string
	idemKey     string
	// key, when set, makes event ids deterministic: the i-th event a
	// decision appends to stream gets DeriveEventID(stream, key, i), so a
	// repeated command re-appends the same ids. Keys name the effect, e.g.
	// "deduct/{job}", never something that differs between retries.
	key string
}

func (c cause) encode(stream string, events []domain.Event) ([]eventstore.EventData, error) {
	out := make([]eventstore.EventData, len(events))
	for i, e := range events {
		data, err := domain.EncodeEvent(e)
		if err != nil {
			return nil, err
		}
		id := eventstore.NewEventID()
		if c.key != "" {
			id = eventstore.DeriveEventID(stream, c.key, fmt.Sprint(i))
		}
		out[i] = eventstore.EventData{
			ID: id, Type: e.EventType(), SchemaVersion: domain.SchemaVersion, Data: data,
			Metadata: eventstore.Metadata{Actor: c.actor, CorrelationID: c.correlation, CausationID: c.causation, IdempotencyKey: c.idemKey},
		}
	}
	return out, nil
}
