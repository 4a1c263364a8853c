package eventstore

import (
	"fmt"
	"time"
)

// prepareAppend validates an append's input and returns its events with
// canonical data. It runs in the caller's goroutine so the costly part of an
// append (parsing and canonicalizing JSON) spreads over all cores.
func prepareAppend(stream string, expected ExpectedVersion, events []EventData) ([]EventData, error) {
	if err := validName("stream", stream, StreamNameBytesMax); err != nil {
		return nil, err
	}
	if !expected.Valid() {
		return nil, &InvalidError{Field: "expected", Reason: "unknown expected-version kind"}
	}
	switch {
	case len(events) == 0:
		return nil, &InvalidError{Field: "events", Reason: "none given"}
	case len(events) > AppendEventsMax:
		return nil, &InvalidError{Field: "events", Reason: fmt.Sprintf("%d events, limit %d", len(events), AppendEventsMax)}
	}
	out := make([]EventData, len(events))
	seen := make(map[string]bool, len(events))
	for i, e := range events {
		field := fmt.Sprintf("events[%d]", i)
		if err := validEvent(field, e); err != nil {
			return nil, err
		}
		if seen[e.ID] {
			return nil, &InvalidError{Field: field + ".id", Reason: "repeated in this append"}
		}
		seen[e.ID] = true
		data, err := CanonicalData(e.Data)
		if err != nil {
			return nil, &InvalidError{Field: field + ".data", Reason: err.(*InvalidError).Reason}
		}
		e.Data = data
		out[i] = e
	}
	return out, nil
}

func validEvent(field string, e EventData) error {
	if err := validName(field+".id", e.ID, IDBytesMax); err != nil {
		return err
	}
	if err := validName(field+".type", e.Type, TypeBytesMax); err != nil {
		return err
	}
	if e.SchemaVersion < 1 {
		return &InvalidError{Field: field + ".schema_version", Reason: "must be ≥ 1"}
	}
	if len(e.Data) > EventBytesMax {
		return &InvalidError{Field: field + ".data", Reason: fmt.Sprintf("%d bytes, limit %d", len(e.Data), EventBytesMax)}
	}
	m := e.Metadata
	for name, v := range map[string]string{"actor": m.Actor, "correlation_id": m.CorrelationID, "causation_id": m.CausationID, "idempotency_key": m.IdempotencyKey} {
		if v != "" {
			if err := validName(field+".metadata."+name, v, StreamNameBytesMax); err != nil {
				return err
			}
		}
	}
	return nil
}

// planner turns the appends of one batch into rows. It starts from the
// batch's Snapshot, read once up front, then decides every append in memory,
// tracking what the batch itself writes.
type planner struct {
	at       time.Time
	head     uint64
	versions map[string]uint64    // stream versions (absent: 0), updated as the batch writes
	ids      map[string]StoredRef // stored ids, updated as the batch writes
	rows     []Row
}

// batchKeys returns the distinct streams and every event id of the batch:
// what its Snapshot must hold.
func batchKeys(batch []*appendRequest) (streams, ids []string) {
	seen := map[string]bool{}
	for _, req := range batch {
		for _, part := range req.parts {
			if !seen[part.Stream] {
				seen[part.Stream] = true
				streams = append(streams, part.Stream)
			}
			for _, e := range part.Events {
				ids = append(ids, e.ID)
			}
		}
	}
	return streams, ids
}

// newPlanner starts planning at the snapshot's head; it takes over the
// snapshot's maps and updates them as the batch writes.
func newPlanner(at time.Time, snap Snapshot) *planner {
	p := &planner{at: at, head: snap.Head, versions: snap.Versions, ids: snap.IDs}
	if p.versions == nil {
		p.versions = map[string]uint64{}
	}
	if p.ids == nil {
		p.ids = map[string]StoredRef{}
	}
	return p
}

// plan decides one request: a refusal, or for each part an idempotent
// duplicate or new rows. Every part is checked before any is written, so a
// refused request leaves the planner as it was; the new rows of all parts
// take contiguous positions.
func (p *planner) plan(req *appendRequest) ([]AppendResult, error) {
	results := make([]AppendResult, len(req.parts))
	fresh := make([]bool, len(req.parts))
	for i, part := range req.parts {
		if stored := p.stored(part.Events); len(stored) > 0 {
			r, err := duplicateResult(part, stored)
			if err != nil {
				return nil, err
			}
			results[i] = r
			continue
		}
		if current := p.versions[part.Stream]; !part.Expected.Allows(current) {
			return nil, &ConflictError{Stream: part.Stream, Expected: part.Expected, Actual: current}
		}
		fresh[i] = true
	}
	var rows []Row
	head := p.head
	for i, part := range req.parts {
		if !fresh[i] {
			continue
		}
		current := p.versions[part.Stream] // parts name distinct streams
		for k, e := range part.Events {
			b := encodeEnvelope(part.Stream, current+uint64(k)+1, e, p.at)
			if len(b) > EventBytesMax {
				return nil, &InvalidError{Field: eventField(req, i, k), Reason: fmt.Sprintf("envelope is %d bytes, limit %d", len(b), EventBytesMax)}
			}
			rows = append(rows, Row{Position: head + uint64(k) + 1, Stream: part.Stream, Version: current + uint64(k) + 1,
				ID: e.ID, Type: e.Type, RecordedAt: p.at, Bytes: b, LeafHash: LeafHash(b)})
		}
		n := uint64(len(part.Events))
		results[i] = AppendResult{FirstPosition: head + 1, LastPosition: head + n, NextVersion: current + n}
		head += n
	}
	for _, r := range rows {
		p.ids[r.ID] = StoredRef{Stream: r.Stream, Version: r.Version, Position: r.Position}
		p.versions[r.Stream] = r.Version
	}
	p.rows = append(p.rows, rows...)
	p.head = head
	return results, nil
}

// eventField names event k of part i as the caller knows it: "events[k]"
// for an Append, "parts[i].events[k]" for an AppendMulti.
func eventField(req *appendRequest, i, k int) string {
	if !req.multi {
		return fmt.Sprintf("events[%d]", k)
	}
	return fmt.Sprintf("parts[%d].events[%d]", i, k)
}

// stored returns the events' ids that are already stored.
func (p *planner) stored(events []EventData) map[string]StoredRef {
	found := map[string]StoredRef{}
	for _, e := range events {
		if ref, ok := p.ids[e.ID]; ok {
			found[e.ID] = ref
		}
	}
	return found
}

// duplicateResult accepts a re-append only when every event is already this
// stream's event at consecutive versions, in the same order.
func duplicateResult(part StreamAppend, stored map[string]StoredRef) (AppendResult, error) {
	first, ok := stored[part.Events[0].ID]
	for i, e := range part.Events {
		ref, found := stored[e.ID]
		if !ok || !found || ref.Stream != part.Stream || ref.Version != first.Version+uint64(i) {
			return AppendResult{}, fmt.Errorf("append to %s: event %s: %w", part.Stream, e.ID, ErrDuplicateEventID)
		}
	}
	last := stored[part.Events[len(part.Events)-1].ID]
	return AppendResult{FirstPosition: first.Position, LastPosition: last.Position, NextVersion: last.Version, Duplicate: true}, nil
}
