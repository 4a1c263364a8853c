package projections

import (
	"time"

	"github.com/rendertrust/rendertrust/domain"
)

// Read models store times as Unix microseconds (portable across SQLite and
// PostgreSQL, and exact: events are stamped to the microsecond); 0 means
// "not yet".

func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

// timeOf returns the UTC time of us microseconds.
func timeOf(us int64) time.Time { return time.UnixMicro(us).UTC() }

// optionalTime returns nil for 0 ("not yet"), else the time.
func optionalTime(us int64) *time.Time {
	if us == 0 {
		return nil
	}
	t := timeOf(us)
	return &t
}

// occurredAt returns when the domain decided e (its At field), or the zero
// time for an event without one.
func occurredAt(e domain.Event) time.Time {
	switch e := e.(type) {
	case domain.CreditsPurchased:
		return e.At
	case domain.CreditsGranted:
		return e.At
	case domain.CreditsHeld:
		return e.At
	case domain.CreditsDeducted:
		return e.At
	case domain.HoldReleased:
		return e.At
	case domain.CreditsRefunded:
		return e.At
	case domain.JobSubmitted:
		return e.At
	case domain.JobDispatched:
		return e.At
	case domain.JobStarted:
		return e.At
	case domain.JobCompleted:
		return e.At
	case domain.JobFailed:
		return e.At
	case domain.JobTimedOut:
		return e.At
	case domain.JobCancelled:
		return e.At
	case domain.NodeEnrolled:
		return e.At
	case domain.NodeCapabilitiesChanged:
		return e.At
	case domain.NodeRetired:
		return e.At
	}
	return time.Time{}
}
