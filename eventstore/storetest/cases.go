package storetest

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/gowebpki/jcs"
	"github.com/rendertrust/rendertrust/eventstore"
)

func testExpectedVersion(t *testing.T, h Harness) {
	s, _ := MustOpen(t, h)
	MustAppend(t, s, "existing-1", eventstore.Any, Events("seed", 3)...) // version 3
	cases := []struct {
		name     string
		stream   string
		expected eventstore.ExpectedVersion
		conflict bool
	}{
		{"AnyOnNew", "fresh-any", eventstore.Any, false},
		{"AnyOnExisting", "existing-1", eventstore.Any, false},
		{"NoStreamOnNew", "fresh-nostream", eventstore.NoStream, false},
		{"NoStreamOnExisting", "existing-1", eventstore.NoStream, true},
		{"StreamExistsOnNew", "fresh-exists", eventstore.StreamExists, true},
		{"StreamExistsOnExisting", "existing-1", eventstore.StreamExists, false},
		{"ExactZeroOnNew", "fresh-exact0", eventstore.Exact(0), false},
		{"ExactRightOnExisting", "existing-1", eventstore.Exact(5), false}, // after the two appends above
		{"ExactBehind", "existing-1", eventstore.Exact(2), true},
		{"ExactAhead", "existing-1", eventstore.Exact(99), true},
		{"ExactOnNew", "fresh-exact", eventstore.Exact(1), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := mustHead(t, s)
			r, err := s.Append(context.Background(), tc.stream, tc.expected, Event("x", 1))
			if tc.conflict {
				var ce *eventstore.ConflictError
				if !errors.Is(err, eventstore.ErrConflict) || !errors.As(err, &ce) || ce.Stream != tc.stream {
					t.Fatalf("err = %v, want a *ConflictError for %s", err, tc.stream)
				}
				if got := mustHead(t, s); got != before {
					t.Fatalf("head after conflict = %d, want %d", got, before)
				}
				return
			}
			if err != nil {
				t.Fatalf("append: %v", err)
			}
			if r.FirstPosition != before+1 || r.LastPosition != before+1 {
				t.Fatalf("positions = %d..%d, want %d", r.FirstPosition, r.LastPosition, before+1)
			}
		})
	}
}

// testRacingExactVersions: 64 goroutines each try to write versions 1..n of
// one stream with Exact; every version must have exactly one winner.
func testRacingExactVersions(t *testing.T, h Harness) {
	s, _ := MustOpen(t, h)
	const racers, versions = 64, 20
	var wg sync.WaitGroup
	wins := make([][]uint64, racers)
	for r := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for v := uint64(0); v < versions; v++ {
				res, err := s.Append(context.Background(), "race-1", eventstore.Exact(v), Event("raced", r))
				switch {
				case err == nil:
					wins[r] = append(wins[r], res.NextVersion)
				case !errors.Is(err, eventstore.ErrConflict):
					t.Errorf("racer %d version %d: %v", r, v, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	won := map[uint64]int{}
	for _, ws := range wins {
		for _, v := range ws {
			won[v]++
		}
	}
	for v := uint64(1); v <= versions; v++ {
		if won[v] != 1 {
			t.Errorf("version %d won %d times, want 1", v, won[v])
		}
	}
	events, err := s.ReadStream(context.Background(), "race-1", 1, 1000)
	if err != nil || len(events) != versions {
		t.Fatalf("stream has %d events (err %v), want %d", len(events), err, versions)
	}
}

func testIdempotentReappend(t *testing.T, h Harness) {
	s, _ := MustOpen(t, h)
	batch := Events("once", 3)
	first := MustAppend(t, s, "idem-1", eventstore.NoStream, batch...)
	MustAppend(t, s, "idem-1", eventstore.Any, Event("later", 1))
	t.Run("SameStreamSameIDs", func(t *testing.T) {
		again, err := s.Append(context.Background(), "idem-1", eventstore.NoStream, batch...)
		if err != nil {
			t.Fatalf("re-append: %v", err)
		}
		if !again.Duplicate || again.FirstPosition != first.FirstPosition || again.LastPosition != first.LastPosition {
			t.Fatalf("re-append = %+v, want duplicate of %+v", again, first)
		}
	})
	refused := map[string]func() error{
		"OtherStream": func() error {
			_, err := s.Append(context.Background(), "idem-2", eventstore.Any, batch...)
			return err
		},
		"PartialOverlap": func() error {
			_, err := s.Append(context.Background(), "idem-1", eventstore.Any, batch[2], Event("new", 1))
			return err
		},
		"Reordered": func() error {
			_, err := s.Append(context.Background(), "idem-1", eventstore.Any, batch[1], batch[0])
			return err
		},
	}
	for name, appendAgain := range refused {
		t.Run(name, func(t *testing.T) {
			before := mustHead(t, s)
			if err := appendAgain(); !errors.Is(err, eventstore.ErrDuplicateEventID) {
				t.Fatalf("err = %v, want ErrDuplicateEventID", err)
			}
			if got := mustHead(t, s); got != before {
				t.Fatalf("head = %d, want %d: something was written", got, before)
			}
		})
	}
	if n := len(ReadAllEvents(t, s)); n != 4 {
		t.Fatalf("log has %d events, want 4", n)
	}
}

func testReadStream(t *testing.T, h Harness) {
	s, _ := MustOpen(t, h)
	for i := range 5 {
		MustAppend(t, s, "rs-a", eventstore.Any, Event("a", i))
		MustAppend(t, s, "rs-b", eventstore.Any, Event("b", i))
	}
	events, err := s.ReadStream(context.Background(), "rs-a", 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 3 {
		t.Fatalf("read %d events, want 3", len(events))
	}
	for i, e := range events {
		if e.Stream != "rs-a" || e.Version != uint64(i+2) || e.Position != uint64(2*(i+1)+1) {
			t.Errorf("event %d = %s@%d pos %d, want rs-a@%d pos %d", i, e.Stream, e.Version, e.Position, i+2, 2*(i+1)+1)
		}
	}
	none, err := s.ReadStream(context.Background(), "rs-missing", 1, 10)
	if err != nil || len(none) != 0 {
		t.Fatalf("missing stream read %d events, err %v; want none", len(none), err)
	}
}

// testCanonicalBytes: stored bytes are RFC 8785 canonical, carry every field,
// and hash to the leaf hash.
func testCanonicalBytes(t *testing.T, h Harness) {
	s, _ := MustOpen(t, h)
	e := eventstore.EventData{
		ID: "0192f0c1-0000-7000-8000-000000000001", Type: "credits.purchased", SchemaVersion: 2,
		Data:     []byte(`{ "b": [1, 2.50, "x\u00e9\n"], "a": {"z": true, "y": null}, "</script>": "é" }`),
		Metadata: eventstore.Metadata{Actor: "user:1", CorrelationID: "c-1", IdempotencyKey: "k\"1"},
	}
	MustAppend(t, s, "canon-1", eventstore.NoStream, e)
	got := ReadAllEvents(t, s)[0]
	canon, err := jcs.Transform(got.Bytes)
	if err != nil || !bytes.Equal(canon, got.Bytes) {
		t.Fatalf("stored bytes are not canonical:\n got %s\nwant %s (err %v)", got.Bytes, canon, err)
	}
	if got.LeafHash != eventstore.LeafHash(got.Bytes) {
		t.Fatal("leaf hash does not match the bytes")
	}
	wantData := `{"</script>":"é","a":{"y":null,"z":true},"b":[1,2.5,"xé\n"]}`
	if string(got.Data) != wantData {
		t.Errorf("data = %s, want %s", got.Data, wantData)
	}
	if got.ID != e.ID || got.Type != e.Type || got.SchemaVersion != 2 || got.Metadata != e.Metadata || got.Version != 1 || got.Position != 1 {
		t.Errorf("read back %+v, want the appended fields", got)
	}
	if got.RecordedAt.Location().String() != "UTC" || got.RecordedAt.Nanosecond()%1000 != 0 {
		t.Errorf("recorded_at = %v, want UTC with microsecond precision", got.RecordedAt)
	}
}

func testBadInput(t *testing.T, h Harness) {
	s, _ := MustOpen(t, h)
	huge := Event("big", strings.Repeat("x", eventstore.EventBytesMax))
	noType := Event("", 1)
	badJSON := Event("bad", 1)
	badJSON.Data = []byte(`{"a":`)
	noSchema := Event("v", 1)
	noSchema.SchemaVersion = 0
	cases := []struct {
		name     string
		stream   string
		expected eventstore.ExpectedVersion
		events   []eventstore.EventData
	}{
		{"EmptyStream", "", eventstore.Any, Events("x", 1)},
		{"ControlCharStream", "job-\x01", eventstore.Any, Events("x", 1)},
		{"NewlineStream", "job-1\n", eventstore.Any, Events("x", 1)},
		{"InvalidUTF8Stream", "job-\xff", eventstore.Any, Events("x", 1)},
		{"LongStream", strings.Repeat("s", eventstore.StreamNameBytesMax+1), eventstore.Any, Events("x", 1)},
		{"UnknownExpectedKind", "bad-1", eventstore.ExpectedVersion{}, Events("x", 1)},
		{"NoEvents", "bad-1", eventstore.Any, nil},
		{"TooManyEvents", "bad-1", eventstore.Any, Events("x", eventstore.AppendEventsMax+1)},
		{"EventTooLarge", "bad-1", eventstore.Any, []eventstore.EventData{Event("ok", 1), huge}},
		{"EmptyType", "bad-1", eventstore.Any, []eventstore.EventData{noType}},
		{"NotJSON", "bad-1", eventstore.Any, []eventstore.EventData{badJSON}},
		{"SchemaVersionZero", "bad-1", eventstore.Any, []eventstore.EventData{noSchema}},
		{"RepeatedID", "bad-1", eventstore.Any, []eventstore.EventData{noSchema, noSchema}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Append(context.Background(), tc.stream, tc.expected, tc.events...)
			var ie *eventstore.InvalidError
			if !errors.Is(err, eventstore.ErrInvalid) || !errors.As(err, &ie) || ie.Field == "" {
				t.Fatalf("err = %v, want an *InvalidError naming the field", err)
			}
			if head := mustHead(t, s); head != 0 {
				t.Fatalf("head = %d after a refused append, want 0", head)
			}
		})
	}
}
