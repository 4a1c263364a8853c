package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/rendertrust/rendertrust/eventstore"
)

// testSubscribeTypes: a subscription to some event types (eventstore
// .SubscribeTypes: filtered by the store where it can, else by the
// subscription) delivers exactly the events of those types, in position
// order, from stored events and then from live appends of another store
// instance, and its position moves past the events of other types.
func testSubscribeTypes(t *testing.T, h Harness) {
	db := h.NewDB(t)
	writer, reader := h.Open(t, db), h.Open(t, db)
	defer writer.Close()
	defer reader.Close()
	types := []string{"kept.a", "kept.b"}
	mixed := []string{"kept.a", "other", "other", "kept.b", "other"}
	const before, during = 120, 120
	for i := range before {
		MustAppend(t, writer, streamName("filter", i%7), eventstore.Any, Event(mixed[i%len(mixed)], i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sub := eventstore.SubscribeTypes(ctx, reader, 1, types...)
	go func() {
		for i := range during {
			if _, err := writer.Append(context.Background(), streamName("filter", i%5), eventstore.Any, Event(mixed[i%len(mixed)], before+i)); err != nil {
				t.Errorf("append %d: %v", i, err)
				return
			}
		}
		// The last event is of a kept type, so the reader knows when to stop.
		if _, err := writer.Append(context.Background(), "filter-end", eventstore.Any, Event("kept.b", "end")); err != nil {
			t.Errorf("append the end: %v", err)
		}
	}()
	var got []uint64
	for len(got) == 0 || !isEnd(t, reader, got[len(got)-1]) {
		batch, err := sub.Next()
		if err != nil {
			t.Fatalf("next after %v: %v", got, err)
		}
		if len(batch) == 0 {
			t.Fatal("Next returned no event")
		}
		for _, e := range batch {
			if !slices.Contains(types, e.Type) {
				t.Fatalf("got %s at %d, not one of %v", e.Type, e.Position, types)
			}
			got = append(got, e.Position)
		}
	}
	var want []uint64
	for _, e := range ReadAllEvents(t, reader) {
		if slices.Contains(types, e.Type) {
			want = append(want, e.Position)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("delivered positions %v,\nwant %v", got, want)
	}
	if sub.Position() != want[len(want)-1]+1 {
		t.Fatalf("position %d after the last event at %d", sub.Position(), want[len(want)-1])
	}
	// Events of other types only: the position moves past them at the next kept one.
	for i := range 10 {
		MustAppend(t, writer, "filter-tail", eventstore.Any, Event("other", i))
	}
	last := MustAppend(t, writer, "filter-tail", eventstore.Any, Event("kept.a", "last")).LastPosition
	batch, err := sub.Next()
	if err != nil || len(batch) != 1 || batch[0].Position != last {
		t.Fatalf("after ten events of another type: %d events (%v), want the one at %d", len(batch), err, last)
	}
}

// isEnd reports whether the event at position is the test's last one.
func isEnd(t *testing.T, s eventstore.Store, position uint64) bool {
	events, err := s.ReadAll(context.Background(), position, 1)
	if err != nil || len(events) != 1 {
		t.Fatalf("read %d: %v", position, err)
	}
	return events[0].Stream == "filter-end"
}
