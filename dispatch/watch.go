package dispatch

import (
	"context"
	"strings"

	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/eventstore"
)

// Watch returns store with the dispatcher watching its appends: the job and
// node events appended through it are observed (Observe) before Append
// returns. The wiring gives this store to the write side, whose appends to
// one stream take turns (one batch decided and appended at a time), so the
// dispatcher sees each stream's batches in order, and a command's effect
// before the command answers. The order matters: the registry ignores an
// event older than what it has seen of its stream, so a batch observed after
// the next one on its stream would be lost. What other processes append,
// the reactor observes as it reads the log.
//
// A store that offers eventstore.MultiAppender is returned as one that
// offers it too, observing every part; one that does not (EventStoreDB) is
// returned as one that does not, so the write side takes its per-stream path.
func (d *Dispatcher) Watch(store eventstore.Store) eventstore.Store {
	w := &watched{store: store, d: d}
	if m, ok := store.(eventstore.MultiAppender); ok {
		return &watchedMulti{watched: w, multi: m}
	}
	return w
}

// watchedMulti is a watched store that appends to several streams at once.
type watchedMulti struct {
	*watched
	multi eventstore.MultiAppender
}

var _ eventstore.MultiAppender = (*watchedMulti)(nil)

// AppendMulti appends every part atomically and observes each part's new
// events, in the order of the parts.
func (w *watchedMulti) AppendMulti(ctx context.Context, parts ...eventstore.StreamAppend) ([]eventstore.AppendResult, error) {
	results, err := w.multi.AppendMulti(ctx, parts...)
	if err != nil {
		return results, err
	}
	for i, p := range parts {
		w.observe(p.Stream, results[i], p.Events)
	}
	return results, nil
}

// watched is a store whose appends the dispatcher observes. It forwards
// every method by name (no embedding), so a method added to
// eventstore.Store must be forwarded, and observed if it appends, before
// the build passes.
type watched struct {
	store eventstore.Store
	d     *Dispatcher
}

var (
	_ eventstore.Store          = (*watched)(nil)
	_ eventstore.TypeSubscriber = (*watched)(nil)
)

// Append appends to the store and observes what was written; a duplicate
// append wrote nothing new.
func (w *watched) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	res, err := w.store.Append(ctx, stream, expected, events...)
	if err != nil {
		return res, err
	}
	w.observe(stream, res, events)
	return res, nil
}

// observe tells the dispatcher the events an append wrote to stream; a
// duplicate append wrote nothing new.
func (w *watched) observe(stream string, res eventstore.AppendResult, events []eventstore.EventData) {
	if res.Duplicate || !observed(stream) || w.d.FollowsAssignmentsOnly() {
		return // the reactor observes it from the log (FollowAssignmentsOnly)
	}
	firstVersion := res.NextVersion - uint64(len(events)) + 1
	for i, data := range events {
		e, err := domain.DecodeEvent(data.Type, data.Data)
		if err != nil {
			continue // not a domain event: nothing the registry keeps
		}
		w.d.Observe(e, firstVersion+uint64(i), res.FirstPosition+uint64(i))
	}
}

// observed reports whether the registry keeps events of stream: job and
// node streams, not accounts (decoding those would be wasted).
func observed(stream string) bool { return !strings.HasPrefix(stream, domain.AccountStream("")) }

// ReadStream reads from the store.
func (w *watched) ReadStream(ctx context.Context, stream string, from uint64, max int) ([]eventstore.RecordedEvent, error) {
	return w.store.ReadStream(ctx, stream, from, max)
}

// ReadAll reads from the store.
func (w *watched) ReadAll(ctx context.Context, from uint64, max int) ([]eventstore.RecordedEvent, error) {
	return w.store.ReadAll(ctx, from, max)
}

// Head returns the store's head.
func (w *watched) Head(ctx context.Context) (uint64, error) { return w.store.Head(ctx) }

// Subscribe subscribes to the store.
func (w *watched) Subscribe(ctx context.Context, from uint64) *eventstore.Subscription {
	return w.store.Subscribe(ctx, from)
}

// SubscribeTypes subscribes to the store's events of types, filtered by
// the store where it can (eventstore.SubscribeTypes).
func (w *watched) SubscribeTypes(ctx context.Context, from uint64, types ...string) *eventstore.Subscription {
	return eventstore.SubscribeTypes(ctx, w.store, from, types...)
}

// Close closes the store.
func (w *watched) Close() error { return w.store.Close() }
