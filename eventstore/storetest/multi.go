package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/rendertrust/rendertrust/eventstore"
)

// runMulti runs the contract of eventstore.MultiAppender when h says the
// backend offers it, and checks that it offers it exactly then.
func runMulti(t *testing.T, h Harness) {
	t.Run("MultiAppendOffered", func(t *testing.T) {
		s, _ := MustOpen(t, h)
		if _, ok := s.(eventstore.MultiAppender); ok != h.MultiAppend {
			t.Fatalf("store offers AppendMulti: %v; the harness says %v", ok, h.MultiAppend)
		}
	})
	if !h.MultiAppend {
		return
	}
	t.Run("MultiAppendPositions", func(t *testing.T) { testMultiPositions(t, h) })
	t.Run("MultiAppendAtomic", func(t *testing.T) { testMultiAtomic(t, h) })
	t.Run("MultiAppendIdempotent", func(t *testing.T) { testMultiIdempotent(t, h) })
	t.Run("MultiAppendBadInput", func(t *testing.T) { testMultiBadInput(t, h) })
	t.Run("MultiAppendConcurrent", func(t *testing.T) { testMultiConcurrent(t, h) })
}

// mustOpenMulti opens a fresh store that offers AppendMulti.
func mustOpenMulti(t *testing.T, h Harness) (eventstore.Store, eventstore.MultiAppender) {
	t.Helper()
	s, _ := MustOpen(t, h)
	return s, s.(eventstore.MultiAppender)
}

// testMultiPositions: the parts' events take contiguous positions in the
// parts' order, each stream its next versions.
func testMultiPositions(t *testing.T, h Harness) {
	s, m := mustOpenMulti(t, h)
	MustAppend(t, s, "mp-a", eventstore.NoStream, Events("seed", 2)...)
	MustAppend(t, s, "mp-other", eventstore.NoStream, Events("seed", 1)...) // head 3
	rs, err := m.AppendMulti(context.Background(),
		eventstore.StreamAppend{Stream: "mp-a", Expected: eventstore.Exact(2), Events: Events("a", 2)},
		eventstore.StreamAppend{Stream: "mp-b", Expected: eventstore.NoStream, Events: Events("b", 1)},
		eventstore.StreamAppend{Stream: "mp-c", Expected: eventstore.Any, Events: Events("c", 3)})
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	want := []eventstore.AppendResult{
		{FirstPosition: 4, LastPosition: 5, NextVersion: 4},
		{FirstPosition: 6, LastPosition: 6, NextVersion: 1},
		{FirstPosition: 7, LastPosition: 9, NextVersion: 3},
	}
	if len(rs) != len(want) {
		t.Fatalf("%d results, want %d", len(rs), len(want))
	}
	for i := range want {
		if rs[i] != want[i] {
			t.Errorf("part %d: %+v, want %+v", i, rs[i], want[i])
		}
	}
	all := ReadAllEvents(t, s)
	wantRows := []struct {
		stream  string
		version uint64
	}{{"mp-a", 3}, {"mp-a", 4}, {"mp-b", 1}, {"mp-c", 1}, {"mp-c", 2}, {"mp-c", 3}}
	if len(all) != 9 {
		t.Fatalf("log has %d events, want 9", len(all))
	}
	for i, w := range wantRows {
		if e := all[3+i]; e.Stream != w.stream || e.Version != w.version {
			t.Errorf("position %d: %s@%d, want %s@%d", e.Position, e.Stream, e.Version, w.stream, w.version)
		}
	}
	if got := all[3].RecordedAt; !got.Equal(all[8].RecordedAt) {
		t.Errorf("recorded_at differs within one append: %v and %v", got, all[8].RecordedAt)
	}
}

// testMultiAtomic: a part refused for any reason refuses every part; nothing
// is written, and the refusal names the refused part's stream.
func testMultiAtomic(t *testing.T, h Harness) {
	s, m := mustOpenMulti(t, h)
	MustAppend(t, s, "ma-a", eventstore.NoStream, Events("seed", 1)...)
	taken := Event("taken", 1)
	MustAppend(t, s, "ma-b", eventstore.NoStream, taken)
	cases := []struct {
		name  string
		parts []eventstore.StreamAppend
		check func(t *testing.T, err error)
	}{
		{"ConflictInSecondPart", []eventstore.StreamAppend{
			{Stream: "ma-new", Expected: eventstore.NoStream, Events: Events("n", 2)},
			{Stream: "ma-a", Expected: eventstore.Exact(5), Events: Events("a", 1)},
		}, func(t *testing.T, err error) {
			var ce *eventstore.ConflictError
			if !errors.As(err, &ce) || ce.Stream != "ma-a" || ce.Actual != 1 {
				t.Fatalf("err = %v, want a *ConflictError for ma-a at version 1", err)
			}
		}},
		{"ConflictInFirstPart", []eventstore.StreamAppend{
			{Stream: "ma-b", Expected: eventstore.NoStream, Events: Events("b", 1)},
			{Stream: "ma-new", Expected: eventstore.Any, Events: Events("n", 1)},
		}, func(t *testing.T, err error) {
			var ce *eventstore.ConflictError
			if !errors.As(err, &ce) || ce.Stream != "ma-b" {
				t.Fatalf("err = %v, want a *ConflictError for ma-b", err)
			}
		}},
		{"IDOfAnotherStream", []eventstore.StreamAppend{
			{Stream: "ma-new", Expected: eventstore.NoStream, Events: Events("n", 1)},
			{Stream: "ma-c", Expected: eventstore.Any, Events: []eventstore.EventData{taken}},
		}, func(t *testing.T, err error) {
			if !errors.Is(err, eventstore.ErrDuplicateEventID) {
				t.Fatalf("err = %v, want ErrDuplicateEventID", err)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := mustHead(t, s)
			rs, err := m.AppendMulti(context.Background(), tc.parts...)
			if rs != nil {
				t.Errorf("results %+v with an error", rs)
			}
			tc.check(t, err)
			if got := mustHead(t, s); got != before {
				t.Fatalf("head = %d after a refused append, want %d", got, before)
			}
			if events, _ := s.ReadStream(context.Background(), "ma-new", 1, 10); len(events) != 0 {
				t.Fatalf("the accepted part was written: %d events", len(events))
			}
		})
	}
	// The refusals left the writer's view intact: the same streams append
	// at the versions the log holds.
	if _, err := m.AppendMulti(context.Background(),
		eventstore.StreamAppend{Stream: "ma-a", Expected: eventstore.Exact(1), Events: Events("a", 1)},
		eventstore.StreamAppend{Stream: "ma-new", Expected: eventstore.NoStream, Events: Events("n", 1)},
	); err != nil {
		t.Fatalf("append after the refusals: %v", err)
	}
}

// testMultiIdempotent: re-appending the same parts returns the original
// results as duplicates; a part already stored is a duplicate while a new
// part beside it is written; a part whose ids sit elsewhere is refused.
func testMultiIdempotent(t *testing.T, h Harness) {
	s, m := mustOpenMulti(t, h)
	parts := []eventstore.StreamAppend{
		{Stream: "mi-a", Expected: eventstore.NoStream, Events: Events("a", 2)},
		{Stream: "mi-b", Expected: eventstore.NoStream, Events: Events("b", 1)},
	}
	first, err := m.AppendMulti(context.Background(), parts...)
	if err != nil {
		t.Fatal(err)
	}
	MustAppend(t, s, "mi-a", eventstore.Any, Event("later", 1))
	again, err := m.AppendMulti(context.Background(), parts...)
	if err != nil {
		t.Fatalf("re-append: %v", err)
	}
	for i := range parts {
		if want := first[i]; !again[i].Duplicate || again[i].FirstPosition != want.FirstPosition || again[i].LastPosition != want.LastPosition || again[i].NextVersion != want.NextVersion {
			t.Errorf("part %d re-appended = %+v, want a duplicate of %+v", i, again[i], want)
		}
	}
	if n := len(ReadAllEvents(t, s)); n != 4 {
		t.Fatalf("log has %d events after the re-append, want 4", n)
	}
	mixed, err := m.AppendMulti(context.Background(), parts[1],
		eventstore.StreamAppend{Stream: "mi-c", Expected: eventstore.NoStream, Events: Events("c", 1)})
	if err != nil {
		t.Fatalf("stored part beside a new one: %v", err)
	}
	if !mixed[0].Duplicate || mixed[0].FirstPosition != first[1].FirstPosition || mixed[1].Duplicate || mixed[1].FirstPosition != 5 {
		t.Fatalf("results %+v: want the stored part a duplicate at %d and the new one at 5", mixed, first[1].FirstPosition)
	}
	before := mustHead(t, s)
	_, err = m.AppendMulti(context.Background(),
		eventstore.StreamAppend{Stream: "mi-d", Expected: eventstore.NoStream, Events: Events("d", 1)},
		eventstore.StreamAppend{Stream: "mi-e", Expected: eventstore.Any, Events: parts[0].Events})
	if !errors.Is(err, eventstore.ErrDuplicateEventID) {
		t.Fatalf("ids of mi-a appended to mi-e: %v, want ErrDuplicateEventID", err)
	}
	if got := mustHead(t, s); got != before {
		t.Fatalf("head = %d, want %d: something was written", got, before)
	}
}

func testMultiBadInput(t *testing.T, h Harness) {
	_, m := mustOpenMulti(t, h)
	shared := Event("x", 1)
	half := eventstore.AppendEventsMax/2 + 1
	cases := []struct {
		name  string
		field string
		parts []eventstore.StreamAppend
	}{
		{"NoParts", "parts", nil},
		{"RepeatedStream", "parts[1].stream", []eventstore.StreamAppend{
			{Stream: "mb-a", Expected: eventstore.Any, Events: Events("x", 1)},
			{Stream: "mb-a", Expected: eventstore.Any, Events: Events("x", 1)}}},
		{"IDInTwoParts", "parts[1].events[0].id", []eventstore.StreamAppend{
			{Stream: "mb-a", Expected: eventstore.Any, Events: []eventstore.EventData{shared}},
			{Stream: "mb-b", Expected: eventstore.Any, Events: []eventstore.EventData{shared}}}},
		{"TooManyEventsInAll", "parts", []eventstore.StreamAppend{
			{Stream: "mb-a", Expected: eventstore.Any, Events: Events("x", half)},
			{Stream: "mb-b", Expected: eventstore.Any, Events: Events("x", half)}}},
		{"BadPart", "parts[1].stream", []eventstore.StreamAppend{
			{Stream: "mb-a", Expected: eventstore.Any, Events: Events("x", 1)},
			{Stream: "", Expected: eventstore.Any, Events: Events("x", 1)}}},
		{"NoEventsInAPart", "parts[0].events", []eventstore.StreamAppend{
			{Stream: "mb-a", Expected: eventstore.Any}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := m.AppendMulti(context.Background(), tc.parts...)
			var ie *eventstore.InvalidError
			if !errors.As(err, &ie) || ie.Field != tc.field {
				t.Fatalf("err = %v, want an *InvalidError for %s", err, tc.field)
			}
		})
	}
	if head := mustHead(t, m.(eventstore.Store)); head != 0 {
		t.Fatalf("head = %d after refused appends, want 0", head)
	}
}

// testMultiConcurrent: writers on several store instances (as several
// processes) each append, many times, one event to a shared hot stream
// together with one to their own stream, retrying lost races on the hot
// stream. Every append is whole and contiguous: the hot stream's event is
// immediately followed by the writer's own, and both streams keep gapless
// versions.
func testMultiConcurrent(t *testing.T, h Harness) {
	db := h.NewDB(t)
	stores := make([]eventstore.Store, 2)
	for i := range stores {
		stores[i] = h.Open(t, db)
		defer stores[i].Close()
	}
	const writers, perWriter = 12, 15
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := stores[w%len(stores)].(eventstore.MultiAppender)
			hot := uint64(0)
			for i := 0; i < perWriter; {
				rs, err := m.AppendMulti(context.Background(),
					eventstore.StreamAppend{Stream: "multi-hot", Expected: eventstore.Exact(hot), Events: []eventstore.EventData{Event("hot", w)}},
					eventstore.StreamAppend{Stream: streamName("multi-own", w), Expected: eventstore.Exact(uint64(i)), Events: []eventstore.EventData{Event("own", w)}})
				var ce *eventstore.ConflictError
				switch {
				case errors.As(err, &ce) && ce.Stream == "multi-hot":
					hot = ce.Actual
					continue
				case err != nil:
					t.Errorf("writer %d append %d: %v", w, i, err)
					return
				case rs[1].FirstPosition != rs[0].LastPosition+1:
					t.Errorf("writer %d: parts at %d and %d, not contiguous", w, rs[0].LastPosition, rs[1].FirstPosition)
				}
				hot = rs[0].NextVersion
				i++
			}
		}()
	}
	wg.Wait()
	all := ReadAllEvents(t, stores[0])
	if len(all) != 2*writers*perWriter {
		t.Fatalf("log has %d events, want %d", len(all), 2*writers*perWriter)
	}
	versions := map[string]uint64{}
	for i, e := range all {
		versions[e.Stream]++
		if e.Version != versions[e.Stream] {
			t.Fatalf("%s: version %d at position %d, want %d", e.Stream, e.Version, e.Position, versions[e.Stream])
		}
		if (i%2 == 0) != (e.Stream == "multi-hot") {
			t.Fatalf("position %d is %s: the parts of an append were split", e.Position, e.Stream)
		}
	}
}
