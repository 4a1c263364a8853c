package esdb_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	esdbclient "github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
	"github.com/rendertrust/rendertrust/eventstore"
	"github.com/rendertrust/rendertrust/eventstore/storetest"
)

// rawClient connects the real v4 client to the server of db, as another
// application on the same server would.
func rawClient(t *testing.T, db string) *esdbclient.Client {
	t.Helper()
	base, _, _ := strings.Cut(db, "&streamPrefix=")
	base, _, _ = strings.Cut(base, "?streamPrefix=")
	cfg, err := esdbclient.ParseConnectionString(base)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Logger = esdbclient.NoopLogging()
	c, err := esdbclient.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// writeForeign appends one event of another application to $all.
func writeForeign(t *testing.T, c *esdbclient.Client, stream string) {
	t.Helper()
	_, err := c.AppendToStream(context.Background(), stream, esdbclient.AppendToStreamOptions{},
		esdbclient.EventData{EventID: uuid.New(), EventType: "OrderPlaced", ContentType: esdbclient.ContentTypeJson, Data: []byte(`{"x":1}`)})
	if err != nil {
		t.Fatalf("foreign append to %s: %v", stream, err)
	}
}

// TestForeignEventsGetNoPosition: events of other streams on the server,
// between and around ours, neither take positions nor show in reads.
func TestForeignEventsGetNoPosition(t *testing.T) {
	s, db := storetest.MustOpen(t, Harness)
	raw := rawClient(t, db)
	foreign := "other-app-" + uuid.NewString()[:8]
	for i := range 5 {
		writeForeign(t, raw, foreign)
		r := storetest.MustAppend(t, s, "job-1", eventstore.Exact(uint64(i)), storetest.Event("job.step", i))
		if r.FirstPosition != uint64(i)+1 {
			t.Fatalf("append %d at position %d, want %d", i, r.FirstPosition, i+1)
		}
	}
	writeForeign(t, raw, foreign)
	all := storetest.ReadAllEvents(t, s)
	if len(all) != 5 {
		t.Fatalf("log has %d events, want 5", len(all))
	}
	for i, e := range all {
		if e.Stream != "job-1" || e.Version != uint64(i)+1 {
			t.Errorf("position %d holds %s@%d, want job-1@%d", i+1, e.Stream, e.Version, i+1)
		}
	}
}

// TestPositionsAgree is the sequencing property: 1. several stores, opened
// at different times on one server, append random batches to random streams
// concurrently while another application writes to the same server; 2. a
// store opened afterwards (a restart) and every writer read the same log,
// positions 1..N with no gap; 3. each append's reported positions hold its
// events; 4. ReadStream numbers each event as ReadAll does.
func TestPositionsAgree(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	db := Harness.NewDB(t)
	raw := rawClient(t, db)
	const writers, appendsPerWriter = 3, 40
	stores := make([]eventstore.Store, writers)
	acked := make([]map[uint64]string, writers) // position → event id, as each writer was told
	var wg sync.WaitGroup
	for w := range writers {
		stores[w] = Harness.Open(t, db)
		defer stores[w].Close()
		acked[w] = map[uint64]string{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(seed), uint64(w)))
			for i := range appendsPerWriter {
				events := storetest.Events("prop", 1+rng.IntN(4))
				stream := fmt.Sprintf("prop-%d", rng.IntN(6))
				r, err := stores[w].Append(context.Background(), stream, eventstore.Any, events...)
				if err != nil {
					t.Errorf("writer %d append %d: %v", w, i, err)
					return
				}
				for k, e := range events {
					acked[w][r.FirstPosition+uint64(k)] = e.ID
				}
			}
		}()
	}
	for range 20 {
		writeForeign(t, raw, "other-app-prop")
	}
	wg.Wait()
	restarted := Harness.Open(t, db)
	defer restarted.Close()
	want := storetest.ReadAllEvents(t, restarted)
	for w, s := range stores {
		checkSameLog(t, fmt.Sprintf("writer %d", w), storetest.ReadAllEvents(t, s), want)
		for pos, id := range acked[w] {
			if pos > uint64(len(want)) || want[pos-1].ID != id {
				t.Errorf("writer %d was told %s is at position %d; it is not", w, id, pos)
			}
		}
	}
	checkStreamsNumbered(t, restarted, want)
}

func checkSameLog(t *testing.T, who string, got, want []eventstore.RecordedEvent) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s reads %d events, a fresh store %d", who, len(got), len(want))
	}
	for i := range got {
		if got[i].Position != want[i].Position || got[i].ID != want[i].ID || got[i].LeafHash != want[i].LeafHash {
			t.Fatalf("%s: position %d holds %s, a fresh store reads %s", who, i+1, got[i].ID, want[i].ID)
		}
	}
}

func checkStreamsNumbered(t *testing.T, s eventstore.Store, all []eventstore.RecordedEvent) {
	t.Helper()
	byStream := map[string][]eventstore.RecordedEvent{}
	for _, e := range all {
		byStream[e.Stream] = append(byStream[e.Stream], e)
	}
	for stream, want := range byStream {
		got, err := s.ReadStream(context.Background(), stream, 1, eventstore.ReadEventsMax)
		if err != nil || len(got) != len(want) {
			t.Fatalf("ReadStream(%s) = %d events, %v; want %d", stream, len(got), err, len(want))
		}
		for i := range got {
			if got[i].Position != want[i].Position || got[i].Version != uint64(i)+1 {
				t.Errorf("%s@%d at position %d, ReadAll has it at %d", stream, got[i].Version, got[i].Position, want[i].Position)
			}
		}
	}
}
