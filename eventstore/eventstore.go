// Package eventstore is RenderTrust's append-only, verifiable event log.
//
// Every event lives in one stream (an aggregate such as "job-42") and has one
// position in the single global log. Positions run 1, 2, 3 … with no gaps, in
// commit order, so a reader that has seen position n has seen everything
// before it. Each event is encoded once, at append, into canonical bytes that
// are stored verbatim; its RFC 9162 leaf hash SHA-256(0x00 ‖ bytes) is checked
// on every read.
//
// The backends (eventstore/sqlite, eventstore/postgres, eventstore/esdb for
// EventStoreDB) implement Store and pass the same contract suite,
// eventstore/storetest. SQLite and PostgreSQL also offer MultiAppender, an
// atomic append to several streams; callers must not depend on it.
package eventstore

import (
	"context"
	"encoding/json"
	"time"
)

// Store is an event log. All methods are safe for concurrent use.
type Store interface {
	// Append writes events to stream atomically, if the stream's current
	// version satisfies expected. It returns the positions and versions
	// written. Re-appending events whose ids are already the stream's events
	// at the same place returns the original result (idempotent success).
	// Errors: *ConflictError (errors.Is ErrConflict) when expected does not
	// hold, ErrDuplicateEventID when an id belongs to another stream or place,
	// *InvalidError (errors.Is ErrInvalid) for bad input; nothing is written on
	// any error.
	Append(ctx context.Context, stream string, expected ExpectedVersion, events ...EventData) (AppendResult, error)

	// ReadStream returns up to max events of stream with version ≥ from, in
	// version order. A stream that does not exist reads as empty.
	// A stored event whose hash does not match fails with *CorruptionError.
	ReadStream(ctx context.Context, stream string, from uint64, max int) ([]RecordedEvent, error)

	// ReadAll returns up to max events with position ≥ from, in position
	// order, never skipping a committed position. A stored event whose hash
	// does not match fails with *CorruptionError.
	ReadAll(ctx context.Context, from uint64, max int) ([]RecordedEvent, error)

	// Head returns the position of the last committed event, 0 when empty.
	Head(ctx context.Context) (uint64, error)

	// Subscribe delivers every event with position ≥ from, first catching up
	// on stored events, then following new appends, with no gap or duplicate.
	Subscribe(ctx context.Context, from uint64) *Subscription

	// Close releases the store's resources. Appends in flight finish first.
	Close() error
}

// EventData is an event a caller asks to append.
type EventData struct {
	// ID identifies the event forever (a UUIDv7 from NewEventID, or a
	// deterministic id from DeriveEventID so a retried command is a no-op).
	ID string
	// Type names the event, e.g. "job.submitted".
	Type string
	// SchemaVersion is the version of Data's schema, ≥ 1.
	SchemaVersion int
	// Data is the event body: any JSON value; it is stored canonicalized.
	Data json.RawMessage
	// Metadata says who and what caused the event.
	Metadata Metadata
}

// Metadata records who caused an event and why.
type Metadata struct {
	Actor          string `json:"actor,omitempty"`
	CorrelationID  string `json:"correlation_id,omitempty"`
	CausationID    string `json:"causation_id,omitempty"`
	IdempotencyKey string `json:"idempotency_key,omitempty"`
}

// RecordedEvent is an event as stored in the log.
type RecordedEvent struct {
	ID            string
	Stream        string
	Version       uint64 // 1 for a stream's first event
	Position      uint64 // 1 for the log's first event
	Type          string
	SchemaVersion int
	RecordedAt    time.Time // UTC, microsecond precision
	Data          json.RawMessage
	Metadata      Metadata
	// Bytes are the exact canonical bytes stored at append; LeafHash is
	// SHA-256(0x00 ‖ Bytes). Neither is ever recomputed from the fields.
	Bytes    []byte
	LeafHash [32]byte
}

// AppendResult says where an append landed.
type AppendResult struct {
	// FirstPosition and LastPosition bound the positions written.
	FirstPosition, LastPosition uint64
	// NextVersion is the stream's version after the append.
	NextVersion uint64
	// Duplicate is true when every event was already stored (idempotent
	// re-append) and nothing new was written.
	Duplicate bool
}

// Limits of the log. Each is enforced on every backend.
const (
	// EventBytesMax bounds one event's encoded envelope.
	EventBytesMax = 256 << 10
	// AppendEventsMax bounds the events in one Append.
	AppendEventsMax = 1000
	// StreamNameBytesMax bounds a stream name.
	StreamNameBytesMax = 200
	// TypeBytesMax bounds an event type name.
	TypeBytesMax = 100
	// IDBytesMax bounds an event id.
	IDBytesMax = 64
	// ReadEventsMax bounds the events one read returns.
	ReadEventsMax = 10000
)
