// Package replay rebuilds any moment of RenderTrust's history from the raw
// event log alone — no read model, no audit table, no cache: a user's
// balance, holds and available credits, a job's full timestamped history
// with its node, attempts, errors, charge, refunds and result hash, or the
// state of every aggregate at once. It folds the events through the
// domain's own aggregates (domain.Account, domain.Job, domain.Node), the
// same code that decided them, so what it prints is what the system knew
// at that position.
//
// A moment is a log position (everything at or before it) or a time (the
// longest prefix of the log recorded at or before it: recorded-at times
// never run backwards along positions within one writer, see
// eventstore.Committer).
//
// A log that does not read back intact (a *eventstore.CorruptionError) or
// that holds an event in a stream the domain never writes it to (a
// *MisfiledError) fails the replay: settling a dispute on a damaged log
// would be wrong, and `rendertrust check` says exactly what is damaged.
package replay

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/rendertrust/rendertrust/eventstore"
)

// Store is the part of the event store a replay reads; eventstore.Store
// implements it.
type Store interface {
	ReadAll(ctx context.Context, from uint64, max int) ([]eventstore.RecordedEvent, error)
	ReadStream(ctx context.Context, stream string, from uint64, max int) ([]eventstore.RecordedEvent, error)
	Head(ctx context.Context) (uint64, error)
}

// Errors of Resolve and ParseUntil; test with errors.Is.
var (
	// ErrInvalidUntil: the moment is neither a position nor a time.
	ErrInvalidUntil = errors.New("invalid moment: want a log position (e.g. 1234) or a time (RFC 3339, e.g. 2026-03-06T12:00:00Z, or a date)")
	// ErrBeyondHead: the position is past the last committed event.
	ErrBeyondHead = errors.New("position is beyond the end of the log")
)

// Until names a moment of history: a log position or a time, exactly one
// of them set. The zero Until is the log's head (now).
type Until struct {
	Position uint64    // the last position to include, ≥ 1
	Time     time.Time // include the events recorded at or before it
}

// ParseUntil reads a moment: a decimal position ("1234"), a time in RFC
// 3339 ("2026-03-06T12:00:00Z", fractions allowed), a UTC time without a
// zone ("2026-03-06T12:00:00") or a date ("2026-03-06", its first instant
// in UTC). "" and "now" mean the head. It returns an error wrapping
// ErrInvalidUntil for anything else.
func ParseUntil(s string) (Until, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "now" || s == "head" {
		return Until{}, nil
	}
	if n, err := strconv.ParseUint(s, 10, 64); err == nil {
		if n == 0 {
			return Until{}, fmt.Errorf("%w: positions start at 1", ErrInvalidUntil)
		}
		return Until{Position: n}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", time.DateOnly} {
		if t, err := time.Parse(layout, s); err == nil {
			return Until{Time: t.UTC()}, nil
		}
	}
	return Until{}, fmt.Errorf("%w: %q", ErrInvalidUntil, s)
}

// String returns the moment as ParseUntil reads it.
func (u Until) String() string {
	switch {
	case u.Position > 0:
		return strconv.FormatUint(u.Position, 10)
	case !u.Time.IsZero():
		return u.Time.Format(time.RFC3339Nano)
	}
	return "now"
}

// Moment is a resolved Until: the last log position it includes.
type Moment struct {
	Position   uint64    `json:"position"`             // 0: before the first event
	RecordedAt time.Time `json:"recorded_at,omitzero"` // when that event was recorded
	Head       uint64    `json:"head"`                 // the log's head when resolved
	Until      string    `json:"until"`                // what was asked, as ParseUntil reads it
	Time       time.Time `json:"until_time,omitzero"`  // the asked time, for a time
}

// Resolve turns u into the last position it includes, reading O(log n)
// events for a time. It returns an error wrapping ErrBeyondHead for a
// position past the head, or the log's error (a *eventstore.CorruptionError
// for an entry that does not read back intact).
func Resolve(ctx context.Context, store Store, u Until) (Moment, error) {
	head, err := store.Head(ctx)
	if err != nil {
		return Moment{}, fmt.Errorf("read head: %w", err)
	}
	m := Moment{Head: head, Until: u.String(), Time: u.Time}
	switch {
	case u.Position > head:
		return Moment{}, fmt.Errorf("%w: %d, the log ends at %d", ErrBeyondHead, u.Position, head)
	case u.Position > 0:
		m.Position = u.Position
	case !u.Time.IsZero():
		if m.Position, err = lastRecordedBy(ctx, store, u.Time, head); err != nil {
			return Moment{}, err
		}
	default:
		m.Position = head
	}
	if m.Position > 0 {
		e, err := readAt(ctx, store, m.Position)
		if err != nil {
			return Moment{}, err
		}
		m.RecordedAt = e.RecordedAt
	}
	return m, nil
}

// lastRecordedBy returns the last position p ≤ head whose event, and every
// one before it, was recorded at or before t (0 if the first was not), by
// binary search over positions.
func lastRecordedBy(ctx context.Context, store Store, t time.Time, head uint64) (uint64, error) {
	lo, hi := uint64(0), head // invariant: lo qualifies (0 trivially), hi+1 does not
	for lo < hi {
		mid := lo + (hi-lo+1)/2
		e, err := readAt(ctx, store, mid)
		if err != nil {
			return 0, err
		}
		if e.RecordedAt.After(t) {
			hi = mid - 1
		} else {
			lo = mid
		}
	}
	return lo, nil
}

// readAt returns the event at position, or a *eventstore.CorruptionError
// when the log does not hold it.
func readAt(ctx context.Context, store Store, position uint64) (eventstore.RecordedEvent, error) {
	evs, err := store.ReadAll(ctx, position, 1)
	if err != nil {
		return eventstore.RecordedEvent{}, fmt.Errorf("read position %d: %w", position, err)
	}
	if len(evs) == 0 || evs[0].Position != position {
		return eventstore.RecordedEvent{}, &eventstore.CorruptionError{Position: position, Reason: "missing from the log"}
	}
	return evs[0], nil
}
