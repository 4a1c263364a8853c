package esdb

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	esdbclient "github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
	"github.com/rendertrust/rendertrust/eventstore"
)

// metadata is the EventStoreDB metadata of each event: the envelope's leaf
// hash, which reads check, and the correlation and causation ids under the
// names EventStoreDB's own projections use. It is not part of the hashed
// bytes.
type metadata struct {
	CausationID   string `json:"$causationId,omitempty"`
	CorrelationID string `json:"$correlationId,omitempty"`
	LeafHash      string `json:"leafHash"`
}

// encode builds the EventStoreDB events of an append to stream at version
// current: each one's data is its canonical envelope. It fails with an
// *InvalidError when an envelope exceeds eventstore.EventBytesMax.
func (s *Store) encode(stream string, current uint64, events []eventstore.EventData, ids []uuid.UUID) ([]esdbclient.EventData, error) {
	at := s.clock.now()
	out := make([]esdbclient.EventData, len(events))
	for i, e := range events {
		b := eventstore.EncodeEnvelope(stream, current+uint64(i)+1, e, at)
		if len(b) > eventstore.EventBytesMax {
			return nil, &eventstore.InvalidError{Field: fmt.Sprintf("events[%d]", i), Reason: fmt.Sprintf("envelope is %d bytes, limit %d", len(b), eventstore.EventBytesMax)}
		}
		hash := eventstore.LeafHash(b)
		meta, err := json.Marshal(metadata{CausationID: e.Metadata.CausationID, CorrelationID: e.Metadata.CorrelationID, LeafHash: hex.EncodeToString(hash[:])})
		if err != nil {
			panic(err) // three strings always marshal
		}
		out[i] = esdbclient.EventData{EventID: ids[i], EventType: e.Type, ContentType: esdbclient.ContentTypeJson, Data: b, Metadata: meta}
	}
	return out, nil
}

// decode turns an EventStoreDB event of the prefix's streams into the event
// at log position position, checking its leaf hash, that its envelope names
// its stream and version, and that its EventStoreDB id is the envelope's.
func (s *Store) decode(position uint64, ev *esdbclient.RecordedEvent) (eventstore.RecordedEvent, error) {
	stream, _ := s.index.productStream(ev.StreamID)
	var meta metadata
	var hash []byte
	if json.Unmarshal(ev.UserMetadata, &meta) == nil {
		hash, _ = hex.DecodeString(meta.LeafHash)
	}
	e, err := eventstore.DecodeStored(position, stream, ev.EventNumber+1, ev.Data, hash)
	if err != nil {
		return e, err
	}
	if eventID(e.ID) != ev.EventID {
		return eventstore.RecordedEvent{}, &eventstore.CorruptionError{Position: position,
			Reason: fmt.Sprintf("EventStoreDB event id %s is not the envelope's id %s", ev.EventID, e.ID)}
	}
	return e, nil
}

// ReadAll implements eventstore.Store. The index says where in $all the
// events from..from+max-1 are; they are read from there, skipping events of
// other streams, and each must be at the place the index has for it.
func (s *Store) ReadAll(ctx context.Context, from uint64, max int) ([]eventstore.RecordedEvent, error) {
	from, max = eventstore.ClampFrom(from), eventstore.ClampMax(max)
	if s.closed.Load() {
		return nil, eventstore.ErrClosed
	}
	if from > s.index.head() {
		if err := s.sync(ctx); err != nil {
			return nil, s.ctxErr(ctx, fmt.Errorf("read log from %d: %w", from, err))
		}
	}
	want := s.index.span(from, from+uint64(max)-1)
	if len(want) == 0 {
		return nil, nil
	}
	events, err := s.readSpan(ctx, from, want)
	if err != nil {
		return events, s.ctxErr(ctx, err)
	}
	return events, eventstore.CheckPositions(from, events)
}

// readSpan reads the events of want, which start at log position from,
// from $all. It returns the events before the first that fails.
func (s *Store) readSpan(ctx context.Context, from uint64, want []entry) ([]eventstore.RecordedEvent, error) {
	out := make([]eventstore.RecordedEvent, 0, len(want))
	next := esdbclient.AllPosition(want[0].pos)
	var seen *esdbclient.Position // pages after the first start with the last event of the one before
	for {
		page, full, err := s.readAllPage(ctx, next, len(want)-len(out))
		if err != nil {
			return out, fmt.Errorf("read log from %d: %w", from, err)
		}
		for _, ev := range page {
			if seen != nil && !after(ev.Position, *seen) {
				continue
			}
			seen = &ev.Position
			if _, ours := s.index.productStream(ev.StreamID); !ours {
				continue
			}
			position := from + uint64(len(out))
			if ev.Position != want[len(out)].pos {
				return out, &eventstore.CorruptionError{Position: position, Reason: fmt.Sprintf("$all holds %s@%d where the log had this event", ev.StreamID, ev.EventNumber)}
			}
			e, err := s.decode(position, ev)
			if err != nil {
				return out, err
			}
			if out = append(out, e); len(out) == len(want) {
				return out, nil
			}
		}
		if !full {
			return out, &eventstore.CorruptionError{Position: from + uint64(len(out)), Reason: "missing from $all"}
		}
		next = *seen
	}
}

// readAllPage reads one page of $all from position from (inclusive); full
// says the server had more. It asks for a little more than need, since other
// streams' events are mixed in.
func (s *Store) readAllPage(ctx context.Context, from esdbclient.AllPosition, need int) (page []*esdbclient.RecordedEvent, full bool, err error) {
	count := min(uint64(need)+64, allPageEventsMax)
	err = s.call(func(c *esdbclient.Client) error {
		page, err = readAllEvents(ctx, c, from, count)
		return err
	})
	return page, uint64(len(page)) == count, err
}

// readAllEvents reads up to count events of $all from position from (inclusive).
func readAllEvents(ctx context.Context, c *esdbclient.Client, from esdbclient.AllPosition, count uint64) ([]*esdbclient.RecordedEvent, error) {
	rs, err := c.ReadAll(ctx, esdbclient.ReadAllOptions{From: from}, count)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var page []*esdbclient.RecordedEvent
	for {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return page, nil
		}
		if err != nil {
			return nil, err
		}
		if ev.Event != nil {
			page = append(page, ev.Event)
		}
	}
}

// ReadStream implements eventstore.Store: it reads the EventStoreDB stream
// and numbers each event from the index.
func (s *Store) ReadStream(ctx context.Context, stream string, from uint64, max int) ([]eventstore.RecordedEvent, error) {
	from, max = eventstore.ClampFrom(from), eventstore.ClampMax(max)
	if s.closed.Load() {
		return nil, eventstore.ErrClosed
	}
	raw, err := s.readStream(ctx, stream, from, max)
	if err != nil {
		return nil, s.ctxErr(ctx, fmt.Errorf("read %s from %d: %w", stream, from, err))
	}
	events := make([]eventstore.RecordedEvent, 0, len(raw))
	for _, ev := range raw {
		position, err := s.positionOf(ctx, ev)
		if err != nil {
			return events, s.ctxErr(ctx, err)
		}
		e, err := s.decode(position, ev)
		if err != nil {
			return events, err
		}
		events = append(events, e)
	}
	return events, eventstore.CheckVersions(from, events)
}

// readStream reads up to max events of stream from version from; a stream
// that does not exist reads as empty.
func (s *Store) readStream(ctx context.Context, stream string, from uint64, max int) (events []*esdbclient.RecordedEvent, err error) {
	err = s.call(func(c *esdbclient.Client) error {
		events, err = readStreamEvents(ctx, c, s.prefix+stream, from, max)
		return err
	})
	return events, err
}

// readStreamEvents reads up to max events of the EventStoreDB stream from
// version from.
func readStreamEvents(ctx context.Context, c *esdbclient.Client, stream string, from uint64, max int) ([]*esdbclient.RecordedEvent, error) {
	rs, err := c.ReadStream(ctx, stream, esdbclient.ReadStreamOptions{From: esdbclient.Revision(from - 1)}, uint64(max))
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []*esdbclient.RecordedEvent
	for {
		ev, err := rs.Recv()
		var ee *esdbclient.Error
		switch {
		case errors.Is(err, io.EOF):
			return out, nil
		case errors.As(err, &ee) && ee.Code() == esdbclient.ErrorCodeResourceNotFound:
			return nil, nil
		case err != nil:
			return nil, err
		}
		if ev.Event != nil {
			out = append(out, ev.Event)
		}
	}
}

// positionOf returns the log position of an event read from one of the
// prefix's streams, reading the tail of $all when the index has not seen it.
func (s *Store) positionOf(ctx context.Context, ev *esdbclient.RecordedEvent) (uint64, error) {
	if p, ok := s.index.positionOf(ev.Position); ok {
		return p, nil
	}
	if err := s.sync(ctx); err != nil {
		return 0, fmt.Errorf("read %s: %w", ev.StreamID, err)
	}
	if p, ok := s.index.positionOf(ev.Position); ok {
		return p, nil
	}
	return 0, fmt.Errorf("read %s@%d: the event is not in $all at %d/%d", ev.StreamID, ev.EventNumber, ev.Position.Commit, ev.Position.Prepare)
}
