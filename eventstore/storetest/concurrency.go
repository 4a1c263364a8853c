package storetest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rendertrust/rendertrust/eventstore"
)

// writeConcurrently runs writers goroutines, each appending perWriter
// single-event appends to its own stream, and returns when all are done.
func writeConcurrently(t *testing.T, stores []eventstore.Store, writers, perWriter int) {
	t.Helper()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := stores[w%len(stores)]
			for i := range perWriter {
				if _, err := s.Append(context.Background(), streamName("writer", w), eventstore.Exact(uint64(i)), Event("w", i)); err != nil {
					t.Errorf("writer %d append %d: %v", w, i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// testReadAllDuringWrites: a reader following the log with ReadAll while 16
// writers append sees positions exactly 1..N, never skipping or reordering.
func testReadAllDuringWrites(t *testing.T, h Harness) {
	s, _ := MustOpen(t, h)
	const writers, perWriter = 16, 60
	done := make(chan struct{})
	var seen atomic.Uint64
	go func() {
		defer close(done)
		next := uint64(1)
		for next <= writers*perWriter {
			batch, err := s.ReadAll(context.Background(), next, 37)
			if err != nil {
				t.Errorf("read from %d: %v", next, err)
				return
			}
			for _, e := range batch {
				if e.Position != next {
					t.Errorf("read position %d, want %d", e.Position, next)
					return
				}
				next++
			}
			seen.Store(next - 1)
		}
	}()
	writeConcurrently(t, []eventstore.Store{s}, writers, perWriter)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("reader stuck at position %d of %d", seen.Load(), writers*perWriter)
	}
}

// testSeveralInstances: stores opened separately on one database (as
// separate processes would be) append concurrently; the log stays gapless
// and every stream keeps its versions.
func testSeveralInstances(t *testing.T, h Harness) {
	db := h.NewDB(t)
	stores := make([]eventstore.Store, 3)
	for i := range stores {
		stores[i] = h.Open(t, db)
		defer stores[i].Close()
	}
	const writers, perWriter = 12, 25
	writeConcurrently(t, stores, writers, perWriter)
	all := ReadAllEvents(t, stores[0])
	if len(all) != writers*perWriter {
		t.Fatalf("log has %d events, want %d", len(all), writers*perWriter)
	}
	versions := map[string]uint64{}
	for _, e := range all {
		versions[e.Stream]++
		if e.Version != versions[e.Stream] {
			t.Fatalf("%s: version %d at position %d, want %d", e.Stream, e.Version, e.Position, versions[e.Stream])
		}
	}
}

// testSubscribe: a subscription from position 1 catches up on stored events
// and then follows live appends, with no gap and no duplicate.
func testSubscribe(t *testing.T, h Harness) {
	s, _ := MustOpen(t, h)
	const before, during = 150, 150
	for i := range before {
		MustAppend(t, s, streamName("sub", i%7), eventstore.Any, Event("before", i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sub := s.Subscribe(ctx, 1)
	written := make(chan struct{})
	go func() {
		defer close(written)
		for i := range during {
			// Not ctx: the reader may see an event (and stop) before its Append returns.
			if _, err := s.Append(context.Background(), streamName("sub", i%5), eventstore.Any, Event("during", i)); err != nil {
				t.Errorf("append %d: %v", i, err)
				return
			}
			if i%50 == 0 {
				time.Sleep(5 * time.Millisecond) // let the subscriber reach the live tail
			}
		}
	}()
	next := uint64(1)
	for next <= before+during {
		batch, err := sub.Next()
		if err != nil {
			t.Fatalf("next after %d: %v", next-1, err)
		}
		for _, e := range batch {
			if e.Position != next {
				t.Fatalf("got position %d, want %d", e.Position, next)
			}
			next++
		}
	}
	<-written
	cancel()
	if _, err := sub.Next(); !errors.Is(err, context.Canceled) {
		t.Fatalf("next after cancel: %v, want context.Canceled", err)
	}
}

// testTamper: one byte changed in storage makes every read that covers the
// event fail, naming its position.
func testTamper(t *testing.T, h Harness) {
	s, db := MustOpen(t, h)
	for i := range 10 {
		MustAppend(t, s, "tamper-1", eventstore.Any, Event("t", i))
	}
	h.Tamper(t, db, 7)
	var ce *eventstore.CorruptionError
	if _, err := s.ReadAll(context.Background(), 1, 100); !errors.As(err, &ce) || ce.Position != 7 {
		t.Fatalf("ReadAll err = %v, want corruption at position 7", err)
	}
	if _, err := s.ReadStream(context.Background(), "tamper-1", 1, 100); !errors.As(err, &ce) || ce.Position != 7 {
		t.Fatalf("ReadStream err = %v, want corruption at position 7", err)
	}
	if got, err := s.ReadAll(context.Background(), 1, 6); err != nil || len(got) != 6 {
		t.Fatalf("events before the damage: %d, %v; want 6 readable", len(got), err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.Subscribe(ctx, 7).Next(); !errors.As(err, &ce) {
		t.Fatalf("subscription err = %v, want corruption", err)
	}
}

// testCancelledContext: appends whose context ends at any moment are each
// either wholly written or not at all, and a cancelled append before the
// start writes nothing.
func testCancelledContext(t *testing.T, h Harness) {
	s, _ := MustOpen(t, h)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Append(ctx, "cancel-0", eventstore.Any, Events("c", 5)...); !errors.Is(err, context.Canceled) {
		t.Fatalf("append with a cancelled context: %v, want context.Canceled", err)
	}
	if head := mustHead(t, s); head != 0 {
		t.Fatalf("head = %d, want 0", head)
	}
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(i*50)*time.Microsecond)
			defer cancel()
			s.Append(ctx, streamName("cancel", i), eventstore.NoStream, Events("c", 25)...)
		}()
	}
	wg.Wait()
	counts := map[string]int{}
	for _, e := range ReadAllEvents(t, s) {
		counts[e.Stream]++
	}
	for stream, n := range counts {
		if n != 25 {
			t.Errorf("%s has %d of its 25 events: half-written", stream, n)
		}
	}
}
