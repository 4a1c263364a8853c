package replay

import (
	"errors"
	"fmt"

	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/eventstore"
)

// MisfiledError says the log holds an event in a stream the domain never
// writes it to: an account event of user B in account-A, a job event in a
// node stream, and so on. Aggregates folded from such a log would differ
// from the read models, which route events by their data; it never happens
// unless someone appended to the store behind the commands' back.
type MisfiledError struct {
	Position uint64
	EntryID  string
	Stream   string // where it is
	Want     string // where the domain writes it
	Type     string
}

// Error says where the event is and where it belongs.
func (e *MisfiledError) Error() string {
	return fmt.Sprintf("event %s (%s) at position %d is in stream %s; the domain writes it to %s",
		e.EntryID, e.Type, e.Position, e.Stream, e.Want)
}

// ExpectedStream returns the stream the domain writes e to: account-{user}
// for money, job-{id}, node-{id}, or anchors. It returns false for an event
// type it does not know.
func ExpectedStream(e domain.Event) (string, bool) {
	if user, ok := domain.AccountOf(e); ok {
		return domain.AccountStream(user), true
	}
	switch e := e.(type) {
	case domain.JobSubmitted:
		return domain.JobStream(e.JobID), true
	case domain.JobDispatched:
		return domain.JobStream(e.JobID), true
	case domain.JobStarted:
		return domain.JobStream(e.JobID), true
	case domain.JobCompleted:
		return domain.JobStream(e.JobID), true
	case domain.JobFailed:
		return domain.JobStream(e.JobID), true
	case domain.JobTimedOut:
		return domain.JobStream(e.JobID), true
	case domain.JobCancelled:
		return domain.JobStream(e.JobID), true
	case domain.NodeEnrolled:
		return domain.NodeStream(e.NodeID), true
	case domain.NodeCapabilitiesChanged:
		return domain.NodeStream(e.NodeID), true
	case domain.NodeRetired:
		return domain.NodeStream(e.NodeID), true
	case domain.AnchorRecorded:
		return domain.AnchorStream, true
	}
	return "", false
}

// Decode returns the domain event rec records, nil for a type or schema
// version the domain does not know (skipped, as the read models skip it).
// It returns an error naming the position for a known type whose data does
// not decode, and a *MisfiledError for an event outside its stream.
func Decode(rec eventstore.RecordedEvent) (domain.Event, error) {
	if rec.SchemaVersion != domain.SchemaVersion {
		return nil, nil
	}
	e, err := domain.DecodeEvent(rec.Type, rec.Data)
	if errors.Is(err, domain.ErrUnknownEventType) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("event %s at position %d: %w", rec.ID, rec.Position, err)
	}
	if want, _ := ExpectedStream(e); want != rec.Stream {
		return nil, &MisfiledError{Position: rec.Position, EntryID: rec.ID, Stream: rec.Stream, Want: want, Type: rec.Type}
	}
	return e, nil
}

// jobOfMoney returns the job an account event is about.
func jobOfMoney(e domain.Event) (domain.JobID, bool) {
	switch e := e.(type) {
	case domain.CreditsHeld:
		return e.JobID, true
	case domain.CreditsDeducted:
		return e.JobID, true
	case domain.HoldReleased:
		return e.JobID, true
	case domain.CreditsRefunded:
		return e.JobID, true
	}
	return "", false
}
