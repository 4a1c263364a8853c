package domain

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

// t0 is the start of every test's clock.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// applier is any aggregate.
type applier interface{ Apply(Event) }

// mustDecide fails the test unless err is nil, applies events to agg and
// returns them.
func mustDecide(tb testing.TB, agg applier, events []Event, err error) []Event {
	tb.Helper()
	if err != nil {
		tb.Fatalf("decide: unexpected error: %v", err)
	}
	for _, e := range events {
		agg.Apply(e)
	}
	return events
}

// wantErr fails the test unless err matches want (errors.Is) and no events
// were returned.
func wantErr(tb testing.TB, events []Event, err, want error) {
	tb.Helper()
	if !errors.Is(err, want) {
		tb.Fatalf("err = %v, want %v", err, want)
	}
	if len(events) != 0 {
		tb.Fatalf("got %d events with an error, want 0", len(events))
	}
}

// mustRoundTrip fails the test unless every event survives EncodeEvent and
// DecodeEvent unchanged.
func mustRoundTrip(tb testing.TB, events []Event) {
	tb.Helper()
	for _, e := range events {
		data, err := EncodeEvent(e)
		if err != nil {
			tb.Fatalf("EncodeEvent(%T): %v", e, err)
		}
		got, err := DecodeEvent(e.EventType(), data)
		if err != nil {
			tb.Fatalf("DecodeEvent(%s): %v", e.EventType(), err)
		}
		if !reflect.DeepEqual(got, e) {
			tb.Fatalf("round trip of %s:\n got %#v\nwant %#v", e.EventType(), got, e)
		}
	}
}

// sha is a valid result hash.
const sha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

// loadAccount returns user's account rebuilt by applying events in order.
// It panics on an event that is not an account event.
func loadAccount(user UserID, events []Event) *Account {
	a := NewAccount(user)
	for _, e := range events {
		a.Apply(e)
	}
	return a
}

// loadJob returns job id rebuilt by applying events in order. It panics on
// an event that is not a job event.
func loadJob(id JobID, events []Event) *Job {
	j := NewJob(id)
	for _, e := range events {
		j.Apply(e)
	}
	return j
}

// loadNode returns node id rebuilt by applying events in order. It panics on
// an event that is not a node event.
func loadNode(id NodeID, events []Event) *Node {
	n := NewNode(id)
	for _, e := range events {
		n.Apply(e)
	}
	return n
}
