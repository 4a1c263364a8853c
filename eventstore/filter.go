package eventstore

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// TypeSubscriber is a store that filters the log where it is stored: a
// subscription to a few event types reads and decodes only those, as
// EventStoreDB's server-side filtered subscriptions to $all do. A process
// that needs one kind of event in a hundred then pays for that one, not
// for the log.
type TypeSubscriber interface {
	// SubscribeTypes delivers, in position order and with no gap among
	// them, the events with position ≥ from whose type is one of types.
	// The subscription's Position moves past the events of other types too.
	SubscribeTypes(ctx context.Context, from uint64, types ...string) *Subscription
}

// SubscribeTypes follows the events of types in store: filtered by the
// store when it is a TypeSubscriber, otherwise read whole and filtered
// here, so the caller sees the same events either way.
func SubscribeTypes(ctx context.Context, store Store, from uint64, types ...string) *Subscription {
	if ts, ok := store.(TypeSubscriber); ok {
		return ts.SubscribeTypes(ctx, from, types...)
	}
	sub := store.Subscribe(ctx, from)
	sub.keep = types
	return sub
}

// FilteredReadFunc reads the events at or after from whose type is one of
// types, at most max, and returns the last position it looked at (through:
// every event from from up to it that was not returned is of another
// type). A backend's filtered read has this shape.
type FilteredReadFunc func(ctx context.Context, from uint64, max int, types []string) (events []RecordedEvent, through uint64, err error)

// NewFilteredSubscription follows the events of types that read returns,
// from position from, woken by signal (and every poll when poll > 0), as
// NewSubscription does for the whole log.
func NewFilteredSubscription(ctx context.Context, read FilteredReadFunc, signal *HeadSignal, from uint64, poll time.Duration, types ...string) *Subscription {
	s := &Subscription{ctx: ctx, signal: signal, poll: poll, next: max(from, 1), keep: types}
	s.filtered = read
	return s
}

// CheckFiltered fails with a *CorruptionError when events read by a
// filtered read from from are out of order, before from, or of a type not
// asked for (a row whose type column disagrees with its stored bytes).
func CheckFiltered(from uint64, types []string, events []RecordedEvent) error {
	next := max(from, 1)
	for _, e := range events {
		if e.Position < next {
			return &CorruptionError{Position: e.Position, Reason: fmt.Sprintf("out of order: read after position %d", next-1)}
		}
		if !slices.Contains(types, e.Type) {
			return &CorruptionError{Position: e.Position, Reason: fmt.Sprintf("type %q stored as one of %v", e.Type, types)}
		}
		next = e.Position + 1
	}
	return nil
}
