package esdb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	esdbclient "github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
	"github.com/rendertrust/rendertrust/eventstore"
)

// allPageEventsMax bounds the events one read of $all asks the server for.
const allPageEventsMax = 4096

// streamState is what the index knows of one product stream; entries share
// its name rather than each holding a copy.
type streamState struct {
	name    string
	version uint64
}

// entry is what the index keeps of one of the product's events.
type entry struct {
	pos     esdbclient.Position
	stream  string // the product's stream name, without the prefix
	version uint64 // 1-based
	id      uuid.UUID
}

// index numbers the product's events: the event at index i of entries has
// log position i+1. The number of an event is its rank among the events of
// the prefix's streams in $all, which EventStoreDB orders by commit and never
// reorders, so every reader and every restart derives the same numbers,
// gapless, in commit order. The index also answers what an append must know:
// each stream's version and where each event id is stored.
type index struct {
	prefix string
	signal *eventstore.HeadSignal

	mu      sync.Mutex
	entries []entry
	ids     map[uuid.UUID]uint64    // EventStoreDB event id → log position
	streams map[string]*streamState // by product stream name
	scanned esdbclient.AllPosition  // $all has been examined up to here, inclusive; esdbclient.Start{} before anything

	// syncMu serializes catch-up reads; requested and covered let callers
	// that waited share a read that started after they asked.
	syncMu    sync.Mutex
	requested atomic.Uint64
	covered   uint64 // guarded by syncMu
}

func newIndex(prefix string, signal *eventstore.HeadSignal) *index {
	return &index{prefix: prefix, signal: signal, ids: map[uuid.UUID]uint64{}, streams: map[string]*streamState{},
		scanned: esdbclient.Start{}}
}

// sync reads $all from where the index stands to its end, so that every
// event committed before sync was called is indexed when it returns.
func (x *index) sync(ctx context.Context, client *esdbclient.Client) error {
	ticket := x.requested.Add(1)
	x.syncMu.Lock()
	defer x.syncMu.Unlock()
	if x.covered >= ticket {
		return nil // a read that began after our call has finished
	}
	started := x.requested.Load()
	for {
		n, err := x.readPage(ctx, client)
		if err != nil {
			return err
		}
		if n < allPageEventsMax {
			x.covered = started
			return nil
		}
	}
}

// readPage reads one page of $all from the last examined position (which it
// reads again: reads from a position include it) and indexes it.
func (x *index) readPage(ctx context.Context, client *esdbclient.Client) (int, error) {
	x.mu.Lock()
	from := x.scanned
	x.mu.Unlock()
	rs, err := client.ReadAll(ctx, esdbclient.ReadAllOptions{From: from}, allPageEventsMax)
	if err != nil {
		return 0, fmt.Errorf("read $all: %w", err)
	}
	defer rs.Close()
	var page []*esdbclient.RecordedEvent
	for {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, fmt.Errorf("read $all: %w", err)
		}
		if ev.Event != nil {
			page = append(page, ev.Event)
		}
	}
	x.observe(page)
	return len(page), nil
}

// observe indexes events read from $all in order. Events at or before the
// examined position are already indexed (the catch-up read and the live
// subscription both feed the index) and are skipped.
func (x *index) observe(events []*esdbclient.RecordedEvent) {
	x.mu.Lock()
	for _, ev := range events {
		if !after(ev.Position, x.scanned) {
			continue
		}
		x.scanned = ev.Position
		stream, ok := x.productStream(ev.StreamID)
		if !ok {
			continue
		}
		st := x.streams[stream]
		if st == nil {
			st = &streamState{name: strings.Clone(stream)}
			x.streams[st.name] = st
		}
		st.version = ev.EventNumber + 1
		x.entries = append(x.entries, entry{pos: ev.Position, stream: st.name, version: st.version, id: ev.EventID})
		if _, dup := x.ids[ev.EventID]; !dup {
			x.ids[ev.EventID] = uint64(len(x.entries))
		}
	}
	head := uint64(len(x.entries))
	x.mu.Unlock()
	x.signal.Advance(head)
}

// productStream strips the prefix from a stream name of the product's.
func (x *index) productStream(esdbStream string) (string, bool) {
	if !strings.HasPrefix(esdbStream, x.prefix) {
		return "", false
	}
	return esdbStream[len(x.prefix):], true
}

// resumeFrom returns where a subscription that follows the index starts
// (exclusive).
func (x *index) resumeFrom() esdbclient.AllPosition {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.scanned
}

// head returns the last log position indexed.
func (x *index) head() uint64 {
	x.mu.Lock()
	defer x.mu.Unlock()
	return uint64(len(x.entries))
}

// version returns stream's version, 0 when it has no events.
func (x *index) version(stream string) uint64 {
	x.mu.Lock()
	defer x.mu.Unlock()
	if st := x.streams[stream]; st != nil {
		return st.version
	}
	return 0
}

// span returns the entries of log positions from..to.
func (x *index) span(from, to uint64) []entry {
	x.mu.Lock()
	defer x.mu.Unlock()
	to = min(to, uint64(len(x.entries)))
	if from < 1 || from > to {
		return nil
	}
	return append([]entry(nil), x.entries[from-1:to]...)
}

// positionOf returns the log position of the event at $all position pos.
func (x *index) positionOf(pos esdbclient.Position) (uint64, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	i := sort.Search(len(x.entries), func(i int) bool { return !after(pos, x.entries[i].pos) })
	if i < len(x.entries) && x.entries[i].pos == pos {
		return uint64(i) + 1, true
	}
	return 0, false
}

// stored returns the entries of the given ids that are indexed, by id.
func (x *index) stored(ids []uuid.UUID) map[uuid.UUID]storedAt {
	x.mu.Lock()
	defer x.mu.Unlock()
	found := map[uuid.UUID]storedAt{}
	for _, id := range ids {
		if p, ok := x.ids[id]; ok {
			e := x.entries[p-1]
			found[id] = storedAt{stream: e.stream, version: e.version, position: p}
		}
	}
	return found
}

// storedAt says where an event is.
type storedAt struct {
	stream   string
	version  uint64
	position uint64
}

// after reports whether $all position a comes after b (esdbclient.Start{}
// comes before every position).
func after(a esdbclient.Position, b esdbclient.AllPosition) bool {
	p, ok := b.(esdbclient.Position)
	if !ok {
		return true
	}
	return a.Commit > p.Commit || (a.Commit == p.Commit && a.Prepare > p.Prepare)
}
