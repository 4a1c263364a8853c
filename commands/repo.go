package commands

import (
	"context"
	"errors"
	"fmt"
	"sync"

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

	// appended, when set, is told of every event this repo appended: the
	// event, its stream version and its log position.
	appended func(e domain.Event, version, position uint64)

	mu    sync.Mutex
	cache map[string]A // by stream; the values are never mutated
}

func newRepo[A aggregate](store eventstore.Store, newAgg func(string) A, snapshot func(A) A) *repo[A] {
	return &repo[A]{store: store, newAgg: newAgg, snapshot: snapshot, cache: map[string]A{}}
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

// update loads the aggregate, asks decide, and appends the events it returns
// with the aggregate's version as the expected version, deciding again on a
// conflict. Event ids derive from key when it is set (a retried command then
// re-appends the same ids, a no-op), and are fresh UUIDv7s otherwise. It
// returns the aggregate after the events, the append's result (zero when
// decide returned no events), and decide's or the store's error.
func (r *repo[A]) update(ctx context.Context, stream, id string, c cause, decide decision[A]) (A, eventstore.AppendResult, error) {
	for range conflictRetriesMax {
		a, err := r.load(ctx, stream, id)
		if err != nil {
			return a, eventstore.AppendResult{}, err
		}
		version := a.Version()
		events, err := decide(a)
		if err != nil || len(events) == 0 {
			return a, eventstore.AppendResult{}, err
		}
		data, err := c.encode(stream, version, events)
		if err != nil {
			return a, eventstore.AppendResult{}, err
		}
		res, err := r.store.Append(ctx, stream, eventstore.Exact(version), data...)
		if errors.Is(err, eventstore.ErrConflict) || errors.Is(err, eventstore.ErrDuplicateEventID) {
			// Lost a race; with derived ids, a duplicate means a concurrent
			// run of the same command got there first. Decide again on
			// the stream as it is now.
			continue
		}
		if err != nil {
			return a, res, fmt.Errorf("append to %s: %w", stream, err)
		}
		for i, e := range events {
			a.Apply(e)
			if r.appended != nil && !res.Duplicate {
				r.appended(e, version+uint64(i)+1, res.FirstPosition+uint64(i))
			}
		}
		r.remember(stream, a)
		return a, res, nil
	}
	var zero A
	return zero, eventstore.AppendResult{}, fmt.Errorf("%s: still conflicting after %d attempts: %w", stream, conflictRetriesMax, eventstore.ErrConflict)
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

func (c cause) encode(stream string, version uint64, events []domain.Event) ([]eventstore.EventData, error) {
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
