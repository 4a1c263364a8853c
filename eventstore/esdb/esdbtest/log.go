package esdbtest

import (
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/google/uuid"
)

// record is one event in the server's transaction log. Records are never
// changed once appended (Tamper replaces one with an altered copy), so a
// reader may send a record it took under the lock after releasing it.
type record struct {
	stream      string
	revision    uint64 // 0-based, as EventStoreDB numbers a stream's events
	id          uuid.UUID
	eventType   string
	contentType string
	created     int64 // .NET ticks (100 ns) since the Unix epoch, as EventStoreDB reports it
	data        []byte
	meta        []byte // the client's custom metadata
	// commit and prepare are the record's $all position: byte offsets,
	// never 1..N. The events of one append share the commit position (the
	// offset of the first) and each has its own prepare position, so a
	// position alone does not say which event of a write came last.
	commit, prepare uint64
}

// before reports whether r comes before $all position (commit, prepare).
func (r *record) before(commit, prepare uint64) bool {
	return r.commit < commit || (r.commit == commit && r.prepare < prepare)
}

// recordOverheadBytes stands in for the header of a record in EventStoreDB's
// transaction log, so positions advance by more than the payload, with gaps,
// as real commit positions do.
const recordOverheadBytes = 120

// expectKind mirrors the four expected-revision kinds of AppendReq.
type expectKind int

const (
	expectAny expectKind = iota
	expectNoStream
	expectStreamExists
	expectRevision
)

type expectation struct {
	kind     expectKind
	revision uint64 // for expectRevision
}

// appendOutcome is the server's answer to an append: success (possibly an
// idempotent repeat) or a wrong expected version.
type appendOutcome struct {
	ok       bool
	current  int64  // the stream's last revision; -1 when it has no events
	position uint64 // the commit position of the write (that of its first event)
}

// eventLog is the server's storage: every record in commit order ($all) and each
// stream's records in revision order.
type eventLog struct {
	mu      sync.Mutex
	all     []*record
	streams map[string][]*record
	nextPos uint64
	changed chan struct{} // closed and replaced at every write
}

func newLog() *eventLog {
	l := &eventLog{streams: map[string][]*record{}, changed: make(chan struct{})}
	// A fresh EventStoreDB writes system events before any user event; so
	// does this double, so clients must skip what is not theirs in $all.
	now := time.Now()
	l.write("$settings", []*record{{id: uuid.New(), eventType: "$settings", contentType: "application/json",
		data: []byte(`{"$userStreamAcl":{"$r":"$all"},"$systemStreamAcl":{"$r":"$admins"}}`)}}, now)
	l.write("$users", []*record{{id: uuid.New(), eventType: "$User", contentType: "application/json",
		data: []byte(`"admin"`)}}, now)
	return l
}

// append writes events to stream if exp holds, with EventStoreDB's
// idempotency: a repeat of events already written at the expected place (or,
// for any and stream-exists, anywhere in the stream) succeeds again without
// writing; a partial repeat is a wrong expected version.
func (l *eventLog) append(stream string, exp expectation, events []*record, now time.Time) appendOutcome {
	l.mu.Lock()
	defer l.mu.Unlock()
	recs := l.streams[stream]
	current := int64(len(recs)) - 1
	if len(events) > 0 {
		if out, decided := idempotent(recs, exp, events); decided {
			return out
		}
	}
	if !allows(exp, current) {
		return appendOutcome{current: current}
	}
	if len(events) == 0 {
		return appendOutcome{ok: true, current: current, position: l.lastPosition(recs)}
	}
	last := l.write(stream, events, now)
	return appendOutcome{ok: true, current: int64(last.revision), position: last.commit}
}

func (l *eventLog) lastPosition(recs []*record) uint64 {
	if len(recs) == 0 {
		return 0
	}
	return recs[len(recs)-1].commit
}

func allows(exp expectation, current int64) bool {
	switch exp.kind {
	case expectNoStream:
		return current == -1
	case expectStreamExists:
		return current >= 0
	case expectRevision:
		return current == int64(exp.revision)
	}
	return true
}

// idempotent decides an append whose events may already be in the stream.
// It reports decided=false when the append is new and must be checked and
// written normally.
func idempotent(recs []*record, exp expectation, events []*record) (appendOutcome, bool) {
	current := int64(len(recs)) - 1
	start := -1
	switch exp.kind {
	case expectNoStream, expectRevision:
		after := int64(-1)
		if exp.kind == expectRevision {
			after = int64(exp.revision)
		}
		if after >= current || recs[after+1].id != events[0].id {
			return appendOutcome{}, false
		}
		start = int(after + 1)
	default:
		for i, r := range recs {
			if r.id == events[0].id {
				start = i
				break
			}
		}
		if start < 0 {
			return appendOutcome{}, false
		}
	}
	end := start + len(events) - 1
	if end >= len(recs) {
		return appendOutcome{current: current}, true
	}
	for i, e := range events {
		if recs[start+i].id != e.id {
			return appendOutcome{current: current}, true
		}
	}
	return appendOutcome{ok: true, current: int64(end), position: recs[start].commit}, true
}

// write appends events to stream, assigning revisions and positions; l.mu
// must be held (or l not yet shared).
func (l *eventLog) write(stream string, events []*record, now time.Time) *record {
	ticks := now.UnixNano() / 100
	recs := l.streams[stream]
	var last *record
	commit := l.nextPos
	for _, e := range events {
		r := *e
		r.stream, r.revision, r.created = stream, uint64(len(recs)), ticks
		r.commit, r.prepare = commit, l.nextPos
		l.nextPos += recordOverheadBytes + uint64(len(stream)+len(r.eventType)+len(r.data)+len(r.meta))
		recs = append(recs, &r)
		l.all = append(l.all, &r)
		last = &r
	}
	l.streams[stream] = recs
	close(l.changed)
	l.changed = make(chan struct{})
	return last
}

// stream returns a snapshot of stream's records.
func (l *eventLog) stream(name string) []*record {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.streams[name]
}

// snapshot returns every record in commit order.
func (l *eventLog) snapshot() []*record {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.all
}

// after returns up to max records of stream ("" for $all) from index
// cursor on, and a channel closed at the next write.
func (l *eventLog) after(stream string, cursor, max int) ([]*record, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	recs := l.all
	if stream != "" {
		recs = l.streams[stream]
	}
	if cursor >= len(recs) {
		return nil, l.changed
	}
	return recs[cursor:min(len(recs), cursor+max)], l.changed
}

// length returns how many records stream ("" for $all) has.
func (l *eventLog) length(stream string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if stream == "" {
		return len(l.all)
	}
	return len(l.streams[stream])
}

// firstAtOrAfter returns the index in all of the first record at or after
// $all position (commit, prepare).
func firstAtOrAfter(all []*record, commit, prepare uint64) int {
	return sort.Search(len(all), func(i int) bool { return !all[i].before(commit, prepare) })
}

// tamper flips one bit in the middle of the data of stream's event at
// revision, behind every client's back.
func (l *eventLog) tamper(stream string, revision uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	recs := l.streams[stream]
	if revision >= uint64(len(recs)) || len(recs[revision].data) == 0 {
		return fmt.Errorf("tamper: %s has no event with data at revision %d", stream, revision)
	}
	old := recs[revision]
	r := *old
	r.data = append([]byte(nil), old.data...)
	r.data[len(r.data)/2] ^= 0x01
	// Copy the slices so snapshots taken before stay as they were.
	recs = append([]*record(nil), recs...)
	recs[revision] = &r
	l.streams[stream] = recs
	all := append([]*record(nil), l.all...)
	all[firstAtOrAfter(all, old.commit, old.prepare)] = &r
	l.all = all
	return nil
}
