package eventstore

import (
	"context"
	"errors"
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

// isRefusal reports whether err refuses one append (its own input or
// precondition) rather than failing the whole transaction.
func isRefusal(err error) bool {
	return errors.Is(err, ErrConflict) || errors.Is(err, ErrInvalid) || errors.Is(err, ErrDuplicateEventID)
}

// planner turns the appends of one batch into rows, tracking the versions and
// ids the batch has written so far on top of what the transaction sees.
type planner struct {
	tx       Tx
	at       time.Time
	head     uint64
	versions map[string]uint64    // stream versions after this batch's rows
	ids      map[string]StoredRef // ids written by this batch
	rows     []Row
}

// plan decides one append: a refusal, an idempotent duplicate, or new rows.
func (p *planner) plan(ctx context.Context, req *appendRequest) (AppendResult, error) {
	stored, err := p.lookup(ctx, req.events)
	if err != nil {
		return AppendResult{}, err
	}
	if len(stored) > 0 {
		return duplicateResult(req, stored)
	}
	current, err := p.streamVersion(ctx, req.stream)
	if err != nil {
		return AppendResult{}, err
	}
	if !req.expected.Allows(current) {
		return AppendResult{}, &ConflictError{Stream: req.stream, Expected: req.expected, Actual: current}
	}
	rows := make([]Row, len(req.events))
	for i, e := range req.events {
		b := encodeEnvelope(req.stream, current+uint64(i)+1, e, p.at)
		if len(b) > EventBytesMax {
			return AppendResult{}, &InvalidError{Field: fmt.Sprintf("events[%d]", i), Reason: fmt.Sprintf("envelope is %d bytes, limit %d", len(b), EventBytesMax)}
		}
		rows[i] = Row{Position: p.head + uint64(i) + 1, Stream: req.stream, Version: current + uint64(i) + 1,
			ID: e.ID, Type: e.Type, RecordedAt: p.at, Bytes: b, LeafHash: LeafHash(b)}
	}
	for _, r := range rows {
		p.ids[r.ID] = StoredRef{Stream: r.Stream, Version: r.Version, Position: r.Position}
	}
	p.rows = append(p.rows, rows...)
	p.head += uint64(len(rows))
	p.versions[req.stream] = current + uint64(len(rows))
	return AppendResult{FirstPosition: rows[0].Position, LastPosition: p.head, NextVersion: p.versions[req.stream]}, nil
}

func (p *planner) streamVersion(ctx context.Context, stream string) (uint64, error) {
	if v, ok := p.versions[stream]; ok {
		return v, nil
	}
	v, err := p.tx.StreamVersion(ctx, stream)
	if err != nil {
		return 0, fmt.Errorf("read version of %s: %w", stream, err)
	}
	p.versions[stream] = v
	return v, nil
}

// lookup finds which of the events' ids are already stored, in the database
// or earlier in this batch.
func (p *planner) lookup(ctx context.Context, events []EventData) (map[string]StoredRef, error) {
	ids := make([]string, len(events))
	for i, e := range events {
		ids[i] = e.ID
	}
	found, err := p.tx.LookupIDs(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("look up event ids: %w", err)
	}
	for _, id := range ids {
		if ref, ok := p.ids[id]; ok {
			found[id] = ref
		}
	}
	return found, nil
}

// duplicateResult accepts a re-append only when every event is already this
// stream's event at consecutive versions, in the same order.
func duplicateResult(req *appendRequest, stored map[string]StoredRef) (AppendResult, error) {
	first, ok := stored[req.events[0].ID]
	for i, e := range req.events {
		ref, found := stored[e.ID]
		if !ok || !found || ref.Stream != req.stream || ref.Version != first.Version+uint64(i) {
			return AppendResult{}, fmt.Errorf("append to %s: event %s: %w", req.stream, e.ID, ErrDuplicateEventID)
		}
	}
	last := stored[req.events[len(req.events)-1].ID]
	return AppendResult{FirstPosition: first.Position, LastPosition: last.Position, NextVersion: last.Version, Duplicate: true}, nil
}
