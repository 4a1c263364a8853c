package eventstore

import (
	"errors"
	"fmt"
)

var (
	// ErrConflict is matched (errors.Is) by every *ConflictError.
	ErrConflict = errors.New("wrong expected version")
	// ErrInvalid is matched (errors.Is) by every *InvalidError.
	ErrInvalid = errors.New("invalid append")
	// ErrDuplicateEventID means an event id is already stored elsewhere in
	// the log (another stream, or another place in this stream).
	ErrDuplicateEventID = errors.New("duplicate event id")
	// ErrCorrupt is matched (errors.Is) by every *CorruptionError.
	ErrCorrupt = errors.New("corrupt event")
	// ErrClosed is returned by a store that has been closed.
	ErrClosed = errors.New("event store closed")
)

// ConflictError says an append's expected version did not hold.
type ConflictError struct {
	Stream   string
	Expected ExpectedVersion
	Actual   uint64 // the stream's version at the time; 0 when it has no events
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("append to %s: expected %s, stream is at version %d", e.Stream, e.Expected, e.Actual)
}

// Is makes errors.Is(err, ErrConflict) true.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// InvalidError says an append was refused for its input; nothing was written.
type InvalidError struct {
	Field  string // "stream", "events[3].type", …
	Reason string
}

func (e *InvalidError) Error() string { return fmt.Sprintf("invalid %s: %s", e.Field, e.Reason) }

// Is makes errors.Is(err, ErrInvalid) true.
func (e *InvalidError) Is(target error) bool { return target == ErrInvalid }

// CorruptionError says a stored event does not match its hash or its row.
// It is never a user error: the log was altered behind the store's back.
type CorruptionError struct {
	Position uint64
	Reason   string
}

func (e *CorruptionError) Error() string {
	return fmt.Sprintf("corrupt event at position %d: %s", e.Position, e.Reason)
}

// Is makes errors.Is(err, ErrCorrupt) true.
func (e *CorruptionError) Is(target error) bool { return target == ErrCorrupt }
