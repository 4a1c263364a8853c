package esdb

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"testing"
	"time"

	esdbclient "github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
	"github.com/rendertrust/rendertrust/eventstore"
	"github.com/rendertrust/rendertrust/eventstore/esdb/esdbtest"
)

func TestSplitURL(t *testing.T) {
	cases := []struct {
		name, in, conn, prefix string
		bad                    bool
	}{
		{"NoParameters", "esdb://h:2113", "esdb://h:2113", DefaultStreamPrefix, false},
		{"OtherParameters", "esdb://h:2113?tls=false", "esdb://h:2113?tls=false", DefaultStreamPrefix, false},
		{"Prefix", "esdb://h:2113?tls=false&streamPrefix=acme%3A", "esdb://h:2113?tls=false", "acme:", false},
		{"PrefixAnyCase", "esdb://h?STREAMPREFIX=a-", "esdb://h", "a-", false},
		{"EmptyPrefix", "esdb://h?streamPrefix=", "", "", true},
		{"SystemPrefix", "esdb://h?streamPrefix=%24ce-", "", "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			conn, prefix, err := splitURL(tc.in)
			if tc.bad {
				if err == nil {
					t.Fatalf("splitURL(%q) = %q, %q; want an error", tc.in, conn, prefix)
				}
				return
			}
			if err != nil || conn != tc.conn || prefix != tc.prefix {
				t.Fatalf("splitURL(%q) = %q, %q, %v; want %q, %q", tc.in, conn, prefix, err, tc.conn, tc.prefix)
			}
		})
	}
}

func TestEventID(t *testing.T) {
	v7 := eventstore.NewEventID()
	if got := eventID(v7); got.String() != v7 {
		t.Errorf("eventID(%s) = %s, want the UUID itself", v7, got)
	}
	upper := "0192F0C1-0000-7000-8000-000000000001"
	if got := eventID(upper); got.String() == "0192f0c1-0000-7000-8000-000000000001" {
		t.Errorf("eventID(%s) = the lower-case UUID; two ids would share one EventStoreDB id", upper)
	}
	if a, b := eventID("order-1"), eventID("order-2"); a == b || a.Version() != 8 {
		t.Errorf("derived ids %s, %s: want distinct UUIDv8s", a, b)
	}
}

// openTest opens a store on a fresh in-process server.
func openTest(t *testing.T) (*Store, *esdbtest.Server) {
	t.Helper()
	srv := esdbtest.MustStart(t)
	s, err := Open(context.Background(), srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, srv
}

// TestNonUUIDEventIDs: ids that are not UUIDs (the contract allows any
// name) are stored under a derived EventStoreDB id and read back as given.
func TestNonUUIDEventIDs(t *testing.T) {
	s, _ := openTest(t)
	e := eventstore.EventData{ID: "payment-ch_3Nx", Type: "credits.purchased", SchemaVersion: 1, Data: json.RawMessage(`{"n":1}`)}
	first, err := s.Append(context.Background(), "acct-1", eventstore.NoStream, e)
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.Append(context.Background(), "acct-1", eventstore.NoStream, e)
	if err != nil || !again.Duplicate || again.FirstPosition != first.FirstPosition {
		t.Fatalf("re-append = %+v, %v; want a duplicate of %+v", again, err, first)
	}
	got, err := s.ReadStream(context.Background(), "acct-1", 1, 10)
	if err != nil || len(got) != 1 || got[0].ID != e.ID {
		t.Fatalf("read %+v, %v; want the event with id %s", got, err, e.ID)
	}
}

// TestResubscribeAfterDrop: 1. a store follows $all; 2. the server drops
// every connection and call; 3. events appended by another client after
// that reach the store's index through its live subscription alone (no
// read of the store calls sync), so it subscribed again, from where it was.
func TestResubscribeAfterDrop(t *testing.T) {
	s, srv := openTest(t)
	ctx := context.Background()
	if _, err := s.Append(ctx, "job-1", eventstore.NoStream, testEvent(0)); err != nil {
		t.Fatal(err)
	}
	if err := srv.Restart(0); err != nil {
		t.Fatal(err)
	}
	other, err := Open(ctx, srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	for i := 1; i <= 5; i++ {
		if _, err := other.Append(ctx, "job-1", eventstore.Exact(uint64(i)), testEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for s.index.head() < 6 {
		if time.Now().After(deadline) {
			t.Fatalf("index head = %d after the drop, want 6; drops seen: %d", s.index.head(), s.drops.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if s.drops.Load() == 0 {
		t.Error("the live subscription never saw the drop")
	}
	events, err := s.ReadAll(ctx, 1, 10)
	if err != nil || len(events) != 6 {
		t.Fatalf("ReadAll = %d events, %v; want 6", len(events), err)
	}
}

// TestSurvivesOutage: 1. the server goes down for longer than the v4
// client keeps trying to connect (after which it closes itself for good);
// 2. once it is back, the store appends again and its live subscription
// brings another client's events, so it made a new client.
func TestSurvivesOutage(t *testing.T) {
	s, srv := openTest(t)
	ctx := context.Background()
	if _, err := s.Append(ctx, "job-1", eventstore.NoStream, testEvent(0)); err != nil {
		t.Fatal(err)
	}
	if err := srv.Restart(3 * time.Second); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(40 * time.Second)
	for {
		_, err := s.Append(ctx, "job-1", eventstore.Exact(1), testEvent(1))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("append after the outage: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	other, err := Open(ctx, srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.Append(ctx, "job-1", eventstore.Exact(2), testEvent(2)); err != nil {
		t.Fatal(err)
	}
	for s.index.head() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("index head = %d, want 3: the live subscription did not come back", s.index.head())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestEventStoreDBView: what an operator sees with EventStoreDB's own tools:
// the stream under the prefix, the event's own id and type, JSON content,
// the envelope bytes as data and their leaf hash in the metadata.
func TestEventStoreDBView(t *testing.T) {
	s, srv := openTest(t)
	e := eventstore.EventData{ID: eventstore.NewEventID(), Type: "job.submitted", SchemaVersion: 1,
		Data: json.RawMessage(`{"b":1,"a":2}`), Metadata: eventstore.Metadata{CorrelationID: "c-1"}}
	if _, err := s.Append(context.Background(), "job-7", eventstore.NoStream, e); err != nil {
		t.Fatal(err)
	}
	stored, err := s.ReadAll(context.Background(), 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	raw := readRaw(t, srv.URL(), DefaultStreamPrefix+"job-7")
	var meta metadata
	if err := json.Unmarshal(raw.UserMetadata, &meta); err != nil {
		t.Fatalf("metadata %s: %v", raw.UserMetadata, err)
	}
	hash := stored[0].LeafHash
	switch {
	case raw.EventID != uuid.MustParse(e.ID) || raw.EventType != e.Type || raw.ContentType != "application/json":
		t.Errorf("EventStoreDB event %s %s %s, want %s %s application/json", raw.EventID, raw.EventType, raw.ContentType, e.ID, e.Type)
	case string(raw.Data) != string(stored[0].Bytes):
		t.Errorf("data %s, want the envelope %s", raw.Data, stored[0].Bytes)
	case meta.LeafHash != hex.EncodeToString(hash[:]) || meta.CorrelationID != "c-1":
		t.Errorf("metadata %s, want leafHash %x and $correlationId c-1", raw.UserMetadata, hash)
	}
}

func readRaw(t *testing.T, conn, stream string) *esdbclient.RecordedEvent {
	t.Helper()
	cfg, err := esdbclient.ParseConnectionString(conn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Logger = esdbclient.NoopLogging()
	c, err := esdbclient.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rs, err := c.ReadStream(context.Background(), stream, esdbclient.ReadStreamOptions{}, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	ev, err := rs.Recv()
	if err != nil {
		t.Fatal(err)
	}
	return ev.Event
}

func testEvent(n int) eventstore.EventData {
	data, _ := json.Marshal(map[string]int{"n": n})
	return eventstore.EventData{ID: eventstore.NewEventID(), Type: "test", SchemaVersion: 1, Data: data}
}
