package domain

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"time"
)

// Event is a fact an aggregate decided. Events are plain values; their JSON
// encoding (the json tags on each event) is the event schema in the log.
type Event interface {
	// EventType returns the event's type name, one of the Event* constants.
	EventType() string
}

// Event type names. They are stored in the event log and hashed into the
// Merkle tree, so they never change; a new meaning gets a new name.
const (
	EventCreditsPurchased = "credits.purchased"
	EventCreditsGranted   = "credits.granted"
	EventCreditsHeld      = "credits.held"
	EventCreditsDeducted  = "credits.deducted"
	EventHoldReleased     = "credits.hold_released"
	EventCreditsRefunded  = "credits.refunded"

	EventJobSubmitted  = "job.submitted"
	EventJobDispatched = "job.dispatched"
	EventJobStarted    = "job.started"
	EventJobCompleted  = "job.completed"
	EventJobFailed     = "job.failed"
	EventJobTimedOut   = "job.timed_out"
	EventJobCancelled  = "job.cancelled"

	EventNodeEnrolled            = "node.enrolled"
	EventNodeCapabilitiesChanged = "node.capabilities_changed"
	EventNodeRetired             = "node.retired"
)

// SchemaVersion is the schema version of every event type's encoding, for
// the log envelope. A change to an event's JSON that old readers cannot
// decode gets a new event type name instead.
const SchemaVersion = 1

// eventCodec decodes one registered event type.
type eventCodec struct {
	goType reflect.Type
	decode func(data []byte) (Event, error)
}

// registry maps each event type name to its Go type and decoder.
var registry = map[string]eventCodec{
	EventCreditsPurchased: codec[CreditsPurchased](),
	EventCreditsGranted:   codec[CreditsGranted](),
	EventCreditsHeld:      codec[CreditsHeld](),
	EventCreditsDeducted:  codec[CreditsDeducted](),
	EventHoldReleased:     codec[HoldReleased](),
	EventCreditsRefunded:  codec[CreditsRefunded](),

	EventJobSubmitted:  codec[JobSubmitted](),
	EventJobDispatched: codec[JobDispatched](),
	EventJobStarted:    codec[JobStarted](),
	EventJobCompleted:  codec[JobCompleted](),
	EventJobFailed:     codec[JobFailed](),
	EventJobTimedOut:   codec[JobTimedOut](),
	EventJobCancelled:  codec[JobCancelled](),

	EventNodeEnrolled:            codec[NodeEnrolled](),
	EventNodeCapabilitiesChanged: codec[NodeCapabilitiesChanged](),
	EventNodeRetired:             codec[NodeRetired](),
	EventAnchorRecorded:          codec[AnchorRecorded](),
}

// codec returns the codec of event type T.
func codec[T Event]() eventCodec {
	return eventCodec{
		goType: reflect.TypeFor[T](),
		decode: func(data []byte) (Event, error) {
			var e T
			err := json.Unmarshal(data, &e)
			return e, err
		},
	}
}

// EventTypes returns every registered event type name, sorted.
func EventTypes() []string {
	names := make([]string, 0, len(registry))
	for name := range registry {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// EncodeEvent returns e's JSON encoding (the event's data in the log). The
// encoding is deterministic: fields in declaration order, no maps. It returns
// ErrUnknownEventType if e is nil, not registered, or a pointer instead of the
// registered value type.
func EncodeEvent(e Event) ([]byte, error) {
	if e == nil {
		return nil, fmt.Errorf("encode nil event: %w", ErrUnknownEventType)
	}
	c, ok := registry[e.EventType()]
	if !ok || reflect.TypeOf(e) != c.goType {
		return nil, fmt.Errorf("encode %T as %q: %w", e, e.EventType(), ErrUnknownEventType)
	}
	data, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", e.EventType(), err)
	}
	return data, nil
}

// DecodeEvent returns the event of type typ encoded in data, as the value type
// registered for typ. It returns ErrUnknownEventType for an unregistered typ
// and a wrapped encoding/json error for data that does not decode. Unknown
// JSON fields are ignored.
func DecodeEvent(typ string, data []byte) (Event, error) {
	c, ok := registry[typ]
	if !ok {
		return nil, fmt.Errorf("decode %q: %w", truncate(typ, 80), ErrUnknownEventType)
	}
	e, err := c.decode(data)
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", typ, err)
	}
	return e, nil
}

// PostingsOf returns the postings an account event carries, and nil for any
// other event. The returned slice is the event's own; do not modify it.
func PostingsOf(e Event) []Posting {
	switch e := e.(type) {
	case CreditsPurchased:
		return e.Postings
	case CreditsGranted:
		return e.Postings
	case CreditsHeld:
		return e.Postings
	case CreditsDeducted:
		return e.Postings
	case HoldReleased:
		return e.Postings
	case CreditsRefunded:
		return e.Postings
	}
	return nil
}

// unknownEvent panics: an aggregate was given an event that does not belong to
// its stream, which is a programming error or a corrupt stream.
func unknownEvent(aggregate string, e Event) {
	panic(fmt.Sprintf("domain: %s cannot apply %T", aggregate, e))
}

// OccurredAt returns when the domain decided e (its At field), and the zero
// time for an event it does not know.
func OccurredAt(e Event) time.Time {
	switch e := e.(type) {
	case CreditsPurchased:
		return e.At
	case CreditsGranted:
		return e.At
	case CreditsHeld:
		return e.At
	case CreditsDeducted:
		return e.At
	case HoldReleased:
		return e.At
	case CreditsRefunded:
		return e.At
	case JobSubmitted:
		return e.At
	case JobDispatched:
		return e.At
	case JobStarted:
		return e.At
	case JobCompleted:
		return e.At
	case JobFailed:
		return e.At
	case JobTimedOut:
		return e.At
	case JobCancelled:
		return e.At
	case NodeEnrolled:
		return e.At
	case NodeCapabilitiesChanged:
		return e.At
	case NodeRetired:
		return e.At
	case AnchorRecorded:
		return e.At
	}
	return time.Time{}
}

// AccountOf returns the user whose account an account event changes, and
// false for any other event.
func AccountOf(e Event) (UserID, bool) {
	switch e := e.(type) {
	case CreditsPurchased:
		return e.UserID, true
	case CreditsGranted:
		return e.UserID, true
	case CreditsHeld:
		return e.UserID, true
	case CreditsDeducted:
		return e.UserID, true
	case HoldReleased:
		return e.UserID, true
	case CreditsRefunded:
		return e.UserID, true
	}
	return "", false
}

// JobIDOf returns the job whose stream a job event belongs to, and false for
// any other event (an account event that names a job is an account's).
func JobIDOf(e Event) (JobID, bool) {
	switch e := e.(type) {
	case JobSubmitted:
		return e.JobID, true
	case JobDispatched:
		return e.JobID, true
	case JobStarted:
		return e.JobID, true
	case JobCompleted:
		return e.JobID, true
	case JobFailed:
		return e.JobID, true
	case JobTimedOut:
		return e.JobID, true
	case JobCancelled:
		return e.JobID, true
	}
	return "", false
}
