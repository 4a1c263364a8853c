// Package storetest is the contract every eventstore backend passes: one
// suite, run by each backend's tests against a real database.
package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/google/uuid"
	"github.com/rendertrust/rendertrust/eventstore"
)

// Harness tells the suite how to reach one backend.
type Harness struct {
	// NewDB returns the location of a fresh, empty database (a file path, a
	// connection string) that lives until the test ends.
	NewDB func(tb testing.TB) string
	// Open opens a store on a database location. Several stores may be open
	// on one location at once, as separate processes would be.
	Open func(tb testing.TB, db string) eventstore.Store
	// Tamper changes one byte of the stored bytes of the event at position,
	// behind the store's back.
	Tamper func(tb testing.TB, db string, position uint64)
	// MultiAppend says the backend's stores offer eventstore.MultiAppender;
	// the suite then runs its contract too (in the crash test as well).
	MultiAppend bool
}

// Run runs the whole contract against h. When the test binary was started as
// a crash-test child it runs the child's work instead and exits.
func Run(t *testing.T, h Harness) {
	if runCrashChild(h) {
		return
	}
	t.Run("ExpectedVersion", func(t *testing.T) { testExpectedVersion(t, h) })
	t.Run("RacingExactVersions", func(t *testing.T) { testRacingExactVersions(t, h) })
	t.Run("IdempotentReappend", func(t *testing.T) { testIdempotentReappend(t, h) })
	t.Run("ReadStream", func(t *testing.T) { testReadStream(t, h) })
	t.Run("CanonicalBytes", func(t *testing.T) { testCanonicalBytes(t, h) })
	t.Run("ReadAllDuringWrites", func(t *testing.T) { testReadAllDuringWrites(t, h) })
	t.Run("SeveralInstances", func(t *testing.T) { testSeveralInstances(t, h) })
	t.Run("SubscribeCatchUpThenLive", func(t *testing.T) { testSubscribe(t, h) })
	t.Run("SubscribeTypes", func(t *testing.T) { testSubscribeTypes(t, h) })
	t.Run("Tamper", func(t *testing.T) { testTamper(t, h) })
	t.Run("BadInput", func(t *testing.T) { testBadInput(t, h) })
	t.Run("CancelledContext", func(t *testing.T) { testCancelledContext(t, h) })
	t.Run("Crash", func(t *testing.T) { testCrash(t, h) })
	runMulti(t, h)
}

// MustOpen opens a store on a fresh database and closes it when tb ends.
func MustOpen(tb testing.TB, h Harness) (eventstore.Store, string) {
	tb.Helper()
	db := h.NewDB(tb)
	s := h.Open(tb, db)
	tb.Cleanup(func() { s.Close() })
	return s, db
}

// Event returns an event with a fresh UUIDv7 id and a small JSON body.
func Event(typ string, body any) eventstore.EventData {
	data, err := json.Marshal(body)
	if err != nil {
		panic(err)
	}
	return eventstore.EventData{ID: uuid.Must(uuid.NewV7()).String(), Type: typ, SchemaVersion: 1, Data: data}
}

// Events returns n events of type typ numbered 0..n-1.
func Events(typ string, n int) []eventstore.EventData {
	out := make([]eventstore.EventData, n)
	for i := range out {
		out[i] = Event(typ, map[string]int{"n": i})
	}
	return out
}

// MustAppend appends or fails the test.
func MustAppend(tb testing.TB, s eventstore.Store, stream string, expected eventstore.ExpectedVersion, events ...eventstore.EventData) eventstore.AppendResult {
	tb.Helper()
	r, err := s.Append(context.Background(), stream, expected, events...)
	if err != nil {
		tb.Fatalf("append to %s: %v", stream, err)
	}
	return r
}

// ReadAllEvents reads the whole log, checking it is gapless, or fails the test.
func ReadAllEvents(tb testing.TB, s eventstore.Store) []eventstore.RecordedEvent {
	tb.Helper()
	var all []eventstore.RecordedEvent
	for {
		batch, err := s.ReadAll(context.Background(), uint64(len(all))+1, eventstore.ReadEventsMax)
		if err != nil {
			tb.Fatalf("read all from %d: %v", len(all)+1, err)
		}
		if len(batch) == 0 {
			return all
		}
		all = append(all, batch...)
	}
}

// mustHead returns the store's head or fails the test.
func mustHead(tb testing.TB, s eventstore.Store) uint64 {
	tb.Helper()
	h, err := s.Head(context.Background())
	if err != nil {
		tb.Fatalf("head: %v", err)
	}
	return h
}

func streamName(prefix string, i int) string { return fmt.Sprintf("%s-%d", prefix, i) }
