package eventstore

import (
	"context"
	"fmt"
)

// MultiAppender is offered by a Store that can append to several streams in
// one atomic write (SQLite and PostgreSQL, whose group commit writes one
// transaction anyway). It is an optimisation only: every effect across
// streams stays correct with one Append per stream, as on EventStoreDB, so a
// caller uses it when the store offers it (a type assertion) and the
// per-stream path otherwise.
type MultiAppender interface {
	// AppendMulti writes every part in one transaction: all of them or none.
	// Each part is judged as its own Append would be — its stream's
	// expected version, an idempotent re-append of its event ids (that part
	// then reports Duplicate and writes nothing) — and the first part that
	// fails fails the whole call with Append's errors (*ConflictError names
	// the part's stream). The new events of all parts take contiguous
	// positions, in the order of the parts. It returns one result per part.
	// A stream may appear in only one part, and the parts together hold at
	// most AppendEventsMax events.
	AppendMulti(ctx context.Context, parts ...StreamAppend) ([]AppendResult, error)
}

// StreamAppend is one stream's part of an AppendMulti.
type StreamAppend struct {
	Stream   string
	Expected ExpectedVersion
	Events   []EventData
}

// AppendStreamsMax bounds the parts of one AppendMulti.
const AppendStreamsMax = 1000

// prepareMulti validates an AppendMulti's input and returns its parts with
// canonical data. Errors name the part: "parts[1].events[0].type".
func prepareMulti(parts []StreamAppend) ([]StreamAppend, error) {
	switch {
	case len(parts) == 0:
		return nil, &InvalidError{Field: "parts", Reason: "none given"}
	case len(parts) > AppendStreamsMax:
		return nil, &InvalidError{Field: "parts", Reason: fmt.Sprintf("%d parts, limit %d", len(parts), AppendStreamsMax)}
	}
	out := make([]StreamAppend, len(parts))
	streams := make(map[string]bool, len(parts))
	ids := map[string]bool{}
	total := 0
	for i, p := range parts {
		field := fmt.Sprintf("parts[%d]", i)
		events, err := prepareAppend(p.Stream, p.Expected, p.Events)
		if err != nil {
			ie := err.(*InvalidError) // prepareAppend fails only with *InvalidError
			return nil, &InvalidError{Field: field + "." + ie.Field, Reason: ie.Reason}
		}
		if streams[p.Stream] {
			return nil, &InvalidError{Field: field + ".stream", Reason: "repeated in this append"}
		}
		streams[p.Stream] = true
		for k, e := range events {
			if ids[e.ID] {
				return nil, &InvalidError{Field: fmt.Sprintf("%s.events[%d].id", field, k), Reason: "repeated in this append"}
			}
			ids[e.ID] = true
		}
		if total += len(events); total > AppendEventsMax {
			return nil, &InvalidError{Field: "parts", Reason: fmt.Sprintf("more than %d events in all", AppendEventsMax)}
		}
		out[i] = StreamAppend{Stream: p.Stream, Expected: p.Expected, Events: events}
	}
	return out, nil
}
