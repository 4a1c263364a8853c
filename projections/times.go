package projections

import (
	"time"
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
