package domain

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// sampleEvents returns one event of every registered type, with every field
// set, at a time that has nanoseconds so stamp's truncation is exercised.
func sampleEvents() []Event {
	at := stamp(t0.Add(123456789 * time.Nanosecond))
	ps := []Posting{{Debit: AccountStripe, Credit: UserAccount("u"), Amount: 100}}
	return []Event{
		CreditsPurchased{"u", "p1", "credits_100", 100, 1000, "usd", ProviderStripe, "cs_1", ps, at},
		CreditsGranted{"u", "g1", 5, "welcome", ps, at},
		CreditsHeld{"u", "j1", 10, ps, at},
		CreditsDeducted{"u", "j1", 10, ps, at},
		HoldReleased{"u", "j1", 10, "cancelled", ps, at},
		CreditsRefunded{"u", "j1", "r1", 10, "dispute", ps, at},
		JobSubmitted{"j1", "u", JobRender, PriorityHigh, true, Payload{Inline: `{"a":"<&>"}`}, 10, at},
		JobSubmitted{"j2", "u", JobEcho, PriorityLow, false, Payload{URI: "s3://b/k"}, 0, at},
		JobDispatched{"j1", "n1", 1, at},
		JobStarted{"j1", "n1", at},
		JobCompleted{"j1", "u", "n1", sha, 42, "", at},
		JobCompleted{"j1", "u", "n1", sha, 42, sha, at},
		JobFailed{"j1", "u", "n1", "boom ✗", 2, true, at},
		JobTimedOut{"j1", "u", "n1", 4, false, at},
		JobCancelled{"j1", "u", "user asked", at},
		NodeEnrolled{"n1", "gpu box", []JobType{JobRender, JobEcho}, true, 4, at},
		NodeCapabilitiesChanged{"n1", []JobType{JobEcho}, false, 1, at},
		NodeRetired{"n1", "decommissioned", at},
		AnchorRecorded{7, strings.Repeat("ab", 32), 1337, "0x" + strings.Repeat("cd", 20), "0x" + strings.Repeat("ef", 32), 9, "0x" + strings.Repeat("12", 32), at},
	}
}

func TestEventRoundTrip(t *testing.T) {
	events := sampleEvents()
	for _, e := range events {
		t.Run(e.EventType(), func(t *testing.T) { mustRoundTrip(t, []Event{e}) })
	}
	var seen []string
	for _, e := range events {
		if !slices.Contains(seen, e.EventType()) {
			seen = append(seen, e.EventType())
		}
	}
	slices.Sort(seen)
	if !reflect.DeepEqual(seen, EventTypes()) {
		t.Errorf("sample covers %v, registry has %v", seen, EventTypes())
	}
}

// TestEventTypeNames pins the stored names: changing one breaks the log.
func TestEventTypeNames(t *testing.T) {
	want := []string{
		"anchor.recorded", "credits.deducted", "credits.granted", "credits.held", "credits.hold_released",
		"credits.purchased", "credits.refunded", "job.cancelled", "job.completed",
		"job.dispatched", "job.failed", "job.started", "job.submitted", "job.timed_out",
		"node.capabilities_changed", "node.enrolled", "node.retired",
	}
	if got := EventTypes(); !reflect.DeepEqual(got, want) {
		t.Errorf("EventTypes() = %v, want %v", got, want)
	}
}

// TestEncodeEventStable pins one encoding: the JSON schema is part of the log.
func TestEncodeEventStable(t *testing.T) {
	e := CreditsHeld{UserID: "u", JobID: "j", Amount: 10,
		Postings: post(UserAccount("u"), UserHeldAccount("u"), 10), At: t0}
	got, err := EncodeEvent(e)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"user_id":"u","job_id":"j","amount":10,"postings":[{"debit":"user:u","credit":"user:u:held","amount":10}],"at":"2026-03-01T12:00:00Z"}`
	if string(got) != want {
		t.Errorf("EncodeEvent =\n%s\nwant\n%s", got, want)
	}
}

type strayEvent struct{}

func (strayEvent) EventType() string { return "stray.event" }

func TestEventErrors(t *testing.T) {
	tests := []struct {
		name string
		err  func() error
	}{
		{"decode unknown type", func() error { _, err := DecodeEvent("x.y", []byte(`{}`)); return err }},
		{"encode unregistered", func() error { _, err := EncodeEvent(strayEvent{}); return err }},
		{"encode pointer", func() error { _, err := EncodeEvent(&JobStarted{}); return err }},
		{"encode nil", func() error { _, err := EncodeEvent(nil); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.err(); !errors.Is(err, ErrUnknownEventType) {
				t.Errorf("err = %v, want ErrUnknownEventType", err)
			}
		})
	}
	t.Run("decode bad json", func(t *testing.T) {
		_, err := DecodeEvent(EventJobStarted, []byte(`{"job_id":`))
		if err == nil || ErrorCode(err) != CodeInternal {
			t.Errorf("err = %v (code %q), want an internal error", err, ErrorCode(err))
		}
	})
}

func TestApplyForeignEventPanics(t *testing.T) {
	tests := []struct {
		name  string
		apply func()
	}{
		{"account", func() { NewAccount("u").Apply(JobStarted{}) }},
		{"job", func() { NewJob("j").Apply(CreditsHeld{}) }},
		{"node", func() { NewNode("n").Apply(JobStarted{}) }},
		{"pointer", func() { NewJob("j").Apply(&JobStarted{}) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("Apply of a foreign event did not panic")
				}
			}()
			tt.apply()
		})
	}
}

// TestJobCompletedInputIsOptional: the input hash added to job.completed
// leaves the events written before it byte for byte as they were, and
// those still decode (the log replays without a new schema version).
func TestJobCompletedInputIsOptional(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	old := `{"job_id":"j1","owner":"u","node_id":"n1","result_sha256":"` + sha + `","result_bytes":42,"at":"2026-01-02T03:04:05Z"}`
	data, err := EncodeEvent(JobCompleted{"j1", "u", "n1", sha, 42, "", at})
	if err != nil || string(data) != old {
		t.Fatalf("encode without input: %s, %v; want the bytes written before the field existed:\n%s", data, err, old)
	}
	e, err := DecodeEvent(EventJobCompleted, []byte(old))
	if err != nil || e.(JobCompleted).InputSHA256 != "" || e.(JobCompleted).ResultBytes != 42 {
		t.Fatalf("decode an old event: %+v, %v", e, err)
	}
	withInput, _ := EncodeEvent(JobCompleted{"j1", "u", "n1", sha, 42, sha, at})
	if !strings.Contains(string(withInput), `"input_sha256":"`+sha+`"`) {
		t.Errorf("encode with input: %s lacks input_sha256", withInput)
	}
}

// TestStreamOf checks, for every event type, the aggregate helpers against
// the event type's prefix: AccountOf answers for credits.* events only,
// JobIDOf for job.* events only, and OccurredAt always returns the At field.
func TestStreamOf(t *testing.T) {
	for _, e := range sampleEvents() {
		t.Run(e.EventType(), func(t *testing.T) {
			typ := e.EventType()
			user, isAccount := AccountOf(e)
			if want := strings.HasPrefix(typ, "credits."); isAccount != want || (isAccount && user != "u") {
				t.Errorf("AccountOf = %q, %v; want an account event: %v", user, isAccount, want)
			}
			job, isJob := JobIDOf(e)
			if want := strings.HasPrefix(typ, "job."); isJob != want || (isJob && job != JobID(reflect.ValueOf(e).Field(0).String())) {
				t.Errorf("JobIDOf = %q, %v; want a job event: %v", job, isJob, want)
			}
			if got, want := OccurredAt(e), reflect.ValueOf(e).FieldByName("At").Interface(); got != want {
				t.Errorf("OccurredAt = %v, want %v", got, want)
			}
		})
	}
}
