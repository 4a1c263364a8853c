package domain

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

// submission is a valid render submission by user "u".
func submission() Submission {
	return Submission{Owner: "u", Type: JobRender, GPU: true, Payload: Payload{URI: "s3://b/scene.blend"}, Cost: 10}
}

// jobAt returns job "j1" submitted at t0 and driven to status by node "n1".
func jobAt(tb testing.TB, status Status) *Job {
	tb.Helper()
	j := NewJob("j1")
	ev, err := j.Submit(submission(), t0)
	mustDecide(tb, j, ev, err)
	path := map[Status][]func() ([]Event, error){
		StatusQueued:     nil,
		StatusDispatched: {func() ([]Event, error) { return j.Dispatch("n1", t0) }},
		StatusRunning: {func() ([]Event, error) { return j.Dispatch("n1", t0) },
			func() ([]Event, error) { return j.Start("n1", t0) }},
		StatusCompleted: {func() ([]Event, error) { return j.Dispatch("n1", t0) },
			func() ([]Event, error) { return j.Start("n1", t0) },
			func() ([]Event, error) { return j.Complete("n1", sha, 5, t0) }},
		StatusCancelled: {func() ([]Event, error) { return j.Cancel("changed my mind", t0) }},
	}
	for _, step := range path[status] {
		ev, err := step()
		mustDecide(tb, j, ev, err)
	}
	if status == StatusFailed {
		for range AttemptsMax {
			ev, err := j.Dispatch("n1", t0)
			mustDecide(tb, j, ev, err)
			ev, err = j.Fail("n1", "boom", t0)
			mustDecide(tb, j, ev, err)
		}
	}
	if j.Status() != status {
		tb.Fatalf("set up job in %s, got %s", status, j.Status())
	}
	return j
}

func TestJobSubmit(t *testing.T) {
	tests := []struct {
		name    string
		mod     func(*Submission)
		wantErr error
	}{
		{"valid", func(*Submission) {}, nil},
		{"ErrInvalidID owner", func(s *Submission) { s.Owner = "" }, ErrInvalidID},
		{"ErrUnknownJobType", func(s *Submission) { s.Type = "mining" }, ErrUnknownJobType},
		{"ErrInvalidPriority", func(s *Submission) { s.Priority = "urgent" }, ErrInvalidPriority},
		{"ErrInvalidPayload", func(s *Submission) { s.Payload = Payload{URI: "ftp://x/y"} }, ErrInvalidPayload},
		{"ErrPayloadTooLarge", func(s *Submission) {
			s.Payload = Payload{Inline: `"` + string(make([]byte, PayloadInlineBytesMax)) + `"`}
		}, ErrPayloadTooLarge},
		{"ErrInvalidAmount", func(s *Submission) { s.Cost = -1 }, ErrInvalidAmount},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := submission()
			tt.mod(&s)
			if err := s.Validate(); !errors.Is(err, tt.wantErr) {
				t.Errorf("Validate() = %v, want %v", err, tt.wantErr)
			}
			j := NewJob("j1")
			ev, err := j.Submit(s, t0)
			if tt.wantErr != nil {
				wantErr(t, ev, err, tt.wantErr)
				return
			}
			mustDecide(t, j, ev, err)
			if j.Status() != StatusQueued || j.Priority() != PriorityNormal || j.Owner() != "u" ||
				j.Cost() != 10 || !j.GPU() || j.SubmittedAt() != t0 || j.Version() != 1 {
				t.Errorf("submitted job = %+v", j)
			}
		})
	}
	t.Run("ErrJobExists", func(t *testing.T) {
		ev, err := jobAt(t, StatusQueued).Submit(submission(), t0)
		wantErr(t, ev, err, ErrJobExists)
	})
	t.Run("ErrInvalidID job", func(t *testing.T) {
		ev, err := NewJob("bad id").Submit(submission(), t0)
		wantErr(t, ev, err, ErrInvalidID)
	})
}

// TestJobTransitions tries every command in every status.
func TestJobTransitions(t *testing.T) {
	commands := map[string]func(j *Job) ([]Event, error){
		"dispatch": func(j *Job) ([]Event, error) { return j.Dispatch("n2", t0) },
		"start":    func(j *Job) ([]Event, error) { return j.Start("n1", t0) },
		"complete": func(j *Job) ([]Event, error) { return j.Complete("n1", sha, 1, t0) },
		"fail":     func(j *Job) ([]Event, error) { return j.Fail("n1", "boom", t0) },
		"timeout":  func(j *Job) ([]Event, error) { return j.TimeOut(t0.Add(DispatchTimeout)) },
		"cancel":   func(j *Job) ([]Event, error) { return j.Cancel("stop", t0) },
	}
	// allowed maps status and command to the resulting status.
	allowed := map[Status]map[string]Status{
		StatusQueued:     {"dispatch": StatusDispatched, "cancel": StatusCancelled},
		StatusDispatched: {"start": StatusRunning, "fail": StatusQueued, "timeout": StatusQueued, "cancel": StatusCancelled},
		StatusRunning:    {"complete": StatusCompleted, "fail": StatusQueued},
		StatusCompleted:  {},
		StatusFailed:     {},
		StatusCancelled:  {},
	}
	for from, ok := range allowed {
		for name, cmd := range commands {
			t.Run(string(from)+" "+name, func(t *testing.T) {
				j := jobAt(t, from)
				ev, err := cmd(j)
				to, want := ok[name]
				if !want {
					var ite *InvalidTransitionError
					if !errors.As(err, &ite) || ite.From != from || len(ev) != 0 {
						t.Fatalf("err = %v, want *InvalidTransitionError from %s", err, from)
					}
					if name == "cancel" && !errors.Is(err, ErrNotCancellable) {
						t.Errorf("cancel err = %v, want ErrNotCancellable", err)
					}
					return
				}
				mustDecide(t, j, ev, err)
				if j.Status() != to {
					t.Errorf("status = %s, want %s", j.Status(), to)
				}
			})
		}
	}
}

func TestJobNodeChecks(t *testing.T) {
	tests := []struct {
		name    string
		status  Status
		decide  func(j *Job) ([]Event, error)
		wantErr error
	}{
		{"ErrWrongNode start", StatusDispatched, func(j *Job) ([]Event, error) { return j.Start("n2", t0) }, ErrWrongNode},
		{"ErrWrongNode complete", StatusRunning, func(j *Job) ([]Event, error) { return j.Complete("n2", sha, 1, t0) }, ErrWrongNode},
		{"ErrWrongNode fail", StatusRunning, func(j *Job) ([]Event, error) { return j.Fail("n2", "x", t0) }, ErrWrongNode},
		{"ErrInvalidResult short hash", StatusRunning, func(j *Job) ([]Event, error) { return j.Complete("n1", "abc", 1, t0) }, ErrInvalidResult},
		{"ErrInvalidResult not hex", StatusRunning, func(j *Job) ([]Event, error) { return j.Complete("n1", sha[:63]+"g", 1, t0) }, ErrInvalidResult},
		{"ErrInvalidResult size", StatusRunning, func(j *Job) ([]Event, error) { return j.Complete("n1", sha, -1, t0) }, ErrInvalidResult},
		{"ErrInvalidID node", StatusQueued, func(j *Job) ([]Event, error) { return j.Dispatch("", t0) }, ErrInvalidID},
		{"ErrNotTimedOut", StatusDispatched, func(j *Job) ([]Event, error) { return j.TimeOut(t0.Add(DispatchTimeout - 1)) }, ErrNotTimedOut},
		{"ErrInvalidReason", StatusQueued, func(j *Job) ([]Event, error) { return j.Cancel("", t0) }, ErrInvalidReason},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := jobAt(t, tt.status)
			ev, err := tt.decide(j)
			wantErr(t, ev, err, tt.wantErr)
		})
	}
	t.Run("ErrJobNotFound", func(t *testing.T) {
		for _, decide := range []func(j *Job) ([]Event, error){
			func(j *Job) ([]Event, error) { return j.Dispatch("n1", t0) },
			func(j *Job) ([]Event, error) { return j.Start("n1", t0) },
			func(j *Job) ([]Event, error) { return j.TimeOut(t0) },
			func(j *Job) ([]Event, error) { return j.Cancel("x", t0) },
		} {
			ev, err := decide(NewJob("j1"))
			wantErr(t, ev, err, ErrJobNotFound)
		}
	})
}

// TestJobRetries drives a job through its whole retry budget:
//  1. dispatch to n1, fail: back to QUEUED, node cleared, attempt 1 of 4;
//  2. dispatch to n2, time out after DispatchTimeout: QUEUED, attempt 2;
//  3. dispatch to n1, start, fail while RUNNING: QUEUED, attempt 3;
//  4. dispatch to n3, fail: no retry left, FAILED with the node kept;
//  5. the last failure (and only it) settles the hold: release.
func TestJobRetries(t *testing.T) {
	j := jobAt(t, StatusQueued)
	now := t0
	step := func(ev []Event, err error) Event {
		t.Helper()
		return mustDecide(t, j, ev, err)[0]
	}
	step(j.Dispatch("n1", now))
	e := step(j.Fail("n1", "out of memory", now))
	if f := e.(JobFailed); !f.WillRetry || f.Attempt != 1 || j.Status() != StatusQueued || j.Node() != "" {
		t.Fatalf("step 1: %+v, status %s node %q", f, j.Status(), j.Node())
	}
	step(j.Dispatch("n2", now))
	now = now.Add(DispatchTimeout)
	if got, want := j.TimesOutAt(), now; !got.Equal(want) {
		t.Errorf("TimesOutAt() = %v, want %v", got, want)
	}
	e = step(j.TimeOut(now))
	if to := e.(JobTimedOut); !to.WillRetry || to.Attempt != 2 || to.NodeID != "n2" || j.Status() != StatusQueued {
		t.Fatalf("step 2: %+v, status %s", to, j.Status())
	}
	step(j.Dispatch("n1", now))
	step(j.Start("n1", now))
	if _, ok := SettlementOf(step(j.Fail("n1", "crash", now))); ok || j.Attempts() != 3 {
		t.Fatalf("step 3: a retried failure settled, or attempts %d != 3", j.Attempts())
	}
	step(j.Dispatch("n3", now.Add(time.Second)))
	e = step(j.Fail("n3", "again", now.Add(2*time.Second)))
	if f := e.(JobFailed); f.WillRetry || f.Attempt != AttemptsMax || j.Status() != StatusFailed || j.Node() != "n3" {
		t.Fatalf("step 4: %+v, status %s node %s", f, j.Status(), j.Node())
	}
	if j.LastError() != "again" || !j.FinishedAt().Equal(now.Add(2*time.Second)) {
		t.Errorf("step 4: last error %q finished %v", j.LastError(), j.FinishedAt())
	}
	got, ok := SettlementOf(e)
	want := Settlement{Owner: "u", Job: "j1", Action: SettleRelease, Reason: "failed"}
	if !ok || got != want {
		t.Errorf("step 5: SettlementOf = %+v, %v; want %+v", got, ok, want)
	}
}

func TestJobComplete(t *testing.T) {
	j := jobAt(t, StatusRunning)
	ev, err := j.Complete("n1", "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08", 5, t0.Add(time.Minute))
	mustDecide(t, j, ev, err)
	if j.ResultSHA256() != sha || j.ResultBytes() != 5 || !j.Status().Terminal() {
		t.Errorf("completed job: hash %s size %d status %s", j.ResultSHA256(), j.ResultBytes(), j.Status())
	}
	got, ok := SettlementOf(ev[0])
	if want := (Settlement{Owner: "u", Job: "j1", Action: SettleDeduct}); !ok || got != want {
		t.Errorf("SettlementOf = %+v, %v; want %+v", got, ok, want)
	}
}

func TestJobCancel(t *testing.T) {
	for _, from := range []Status{StatusQueued, StatusDispatched} {
		t.Run(string(from), func(t *testing.T) {
			j := jobAt(t, from)
			if !j.Cancellable() {
				t.Fatalf("Cancellable() = false in %s", from)
			}
			ev, err := j.Cancel(" user asked ", t0.Add(time.Second))
			mustDecide(t, j, ev, err)
			if j.CancelReason() != "user asked" || !j.FinishedAt().Equal(t0.Add(time.Second)) || j.Cancellable() {
				t.Errorf("cancelled job: reason %q finished %v", j.CancelReason(), j.FinishedAt())
			}
			got, ok := SettlementOf(ev[0])
			if want := (Settlement{"u", "j1", SettleRelease, "cancelled"}); !ok || got != want {
				t.Errorf("SettlementOf = %+v, %v; want %+v", got, ok, want)
			}
		})
	}
}

func TestJobRebuild(t *testing.T) {
	j := NewJob("j1")
	var all []Event
	for _, decide := range []func() ([]Event, error){
		func() ([]Event, error) { return j.Submit(submission(), t0) },
		func() ([]Event, error) { return j.Dispatch("n1", t0.Add(time.Second)) },
		func() ([]Event, error) { return j.Start("n1", t0.Add(2*time.Second)) },
		func() ([]Event, error) { return j.Complete("n1", sha, 1, t0.Add(3*time.Second)) },
	} {
		ev, err := decide()
		all = append(all, mustDecide(t, j, ev, err)...)
	}
	mustRoundTrip(t, all)
	if got := loadJob("j1", all); !reflect.DeepEqual(got, j) {
		t.Errorf("LoadJob = %+v, want %+v", got, j)
	}
	snap := j.Snapshot()
	if !reflect.DeepEqual(snap, j) || snap == j {
		t.Errorf("Snapshot() is not an equal copy")
	}
	if j.StartedAt() != t0.Add(2*time.Second) || j.DispatchedAt() != t0.Add(time.Second) || j.UpdatedAt() != t0.Add(3*time.Second) {
		t.Errorf("timestamps: dispatched %v started %v updated %v", j.DispatchedAt(), j.StartedAt(), j.UpdatedAt())
	}
}
