package commands_test

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/rendertrust/rendertrust/commands"
	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/eventstore"
)

// TestReactorEffectsNameTheirCause checks that every effect the reactor
// makes records, as its causation id, the id of the event that called for
// it:
//
//  1. A completed job's credits.deducted names the job.completed event.
//  2. A cancelled job's credits.hold_released names the job.cancelled event.
//  3. An orphaned hold's credits.hold_released names the credits.held event.
func TestReactorEffectsNameTheirCause(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		e.mustNode(t, "node-a", 2, false)
		e.mustGrant(t, "u1", 30)
		r, stop := e.runReactor(t)
		defer stop()

		// 1.
		done := e.mustSubmit(t, "u1", domain.JobRender)
		e.svc.StartJob(ctx, system, "node-a", done.JobID)
		if _, err := e.svc.CompleteJob(ctx, system, "node-a", done.JobID, sha, 1); err != nil {
			t.Fatal(err)
		}
		e.settle(t, r)
		// 2.
		cancelled := e.mustSubmit(t, "u1", domain.JobRender)
		if _, err := e.svc.CancelJob(ctx, system, "u1", cancelled.JobID); err != nil {
			t.Fatal(err)
		}
		e.settle(t, r)
		// 3.
		acc, _ := e.svc.Account(ctx, "u1")
		held, _ := acc.Hold("lost-job", 5, e.clock.Now())
		appendDomain(t, e, domain.AccountStream("u1"), acc.Version(), held...)
		e.settle(t, r)
		e.clock.Advance(2 * time.Minute)
		r.Sweep(ctx)

		recs := e.records(t)
		byType := func(typ, job string) []eventstore.RecordedEvent {
			var out []eventstore.RecordedEvent
			for _, rec := range recs {
				if rec.Type == typ && containsJob(rec, job) {
					out = append(out, rec)
				}
			}
			return out
		}
		tests := []struct {
			name, effect, cause, job string
		}{
			{"Deducted", domain.EventCreditsDeducted, domain.EventJobCompleted, string(done.JobID)},
			{"ReleasedOnCancel", domain.EventHoldReleased, domain.EventJobCancelled, string(cancelled.JobID)},
			{"ReleasedOrphan", domain.EventHoldReleased, domain.EventCreditsHeld, "lost-job"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				effects, causes := byType(tt.effect, tt.job), byType(tt.cause, tt.job)
				if len(effects) != 1 || len(causes) != 1 {
					t.Fatalf("%d %s and %d %s events for %s, want 1 each", len(effects), tt.effect, len(causes), tt.cause, tt.job)
				}
				if got, want := effects[0].Metadata.CausationID, causes[0].ID; got != want || got == "" {
					t.Errorf("%s causation id = %q, want %q (the %s event)", tt.effect, got, want, tt.cause)
				}
			})
		}
	})
}

// containsJob reports whether rec's event is about job.
func containsJob(rec eventstore.RecordedEvent, job string) bool {
	ev, err := domain.DecodeEvent(rec.Type, rec.Data)
	if err != nil {
		return false
	}
	switch ev := ev.(type) {
	case domain.CreditsDeducted:
		return string(ev.JobID) == job
	case domain.HoldReleased:
		return string(ev.JobID) == job
	case domain.CreditsHeld:
		return string(ev.JobID) == job
	case domain.JobCompleted:
		return string(ev.JobID) == job
	case domain.JobCancelled:
		return string(ev.JobID) == job
	}
	return false
}

// records reads the whole log with its envelopes.
func (e *env) records(tb testing.TB) []eventstore.RecordedEvent {
	tb.Helper()
	var out []eventstore.RecordedEvent
	for from := uint64(1); ; {
		page, err := e.store.ReadAll(ctx, from, eventstore.ReadEventsMax)
		if err != nil {
			tb.Fatal(err)
		}
		if len(page) == 0 {
			return out
		}
		out = append(out, page...)
		from = page[len(page)-1].Position + 1
	}
}

// TestReactorWaitForSavedCheckpoint: a caller waiting for a position that a
// reactor's previous run already handled is answered as soon as the new
// run has loaded its checkpoint, even when nothing new is ever appended
// (the soak's quiesce waited a minute for an unrelated sweep effect).
func TestReactorWaitForSavedCheckpoint(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		e.mustNode(t, "node-a", 1, false)
		e.mustGrant(t, "u1", 30)
		job := e.mustSubmit(t, "u1", domain.JobRender)
		e.svc.StartJob(ctx, system, "node-a", job.JobID)
		if _, err := e.svc.CompleteJob(ctx, system, "node-a", job.JobID, sha, 1); err != nil {
			t.Fatal(err)
		}
		first, stop := e.runReactor(t)
		e.settle(t, first)
		stop()
		head := e.head(t)

		r := commands.NewReactor(e.svc, time.Minute)
		const waiters = 4
		answered := make(chan error, waiters)
		wctx, cancel := context.WithTimeout(ctx, reactorWaitBound)
		defer cancel()
		for range waiters {
			go func() { answered <- r.WaitFor(wctx, head) }()
		}
		waitBlocked(t, "commands.(*Reactor).WaitFor", waiters)
		rctx, stopRun := context.WithCancel(ctx)
		ran := make(chan struct{})
		go func() { defer close(ran); r.Run(rctx) }()
		defer func() { stopRun(); <-ran }()
		for range waiters {
			if err := <-answered; err != nil {
				t.Fatalf("WaitFor(%d) with the checkpoint at %d: %v", head, r.Position(), err)
			}
		}
		// WaitFor checks the checkpoint once more when its bound runs
		// out: an answer that needed the bound came too late.
		if wctx.Err() != nil {
			t.Fatalf("WaitFor(%d) answered only when its %v bound ran out", head, reactorWaitBound)
		}
	})
}

// reactorWaitBound bounds a wait that must end at once; reaching it is
// the failure.
const reactorWaitBound = 20 * time.Second

// waitBlocked waits until n goroutines are parked in a sync.Cond wait
// inside fn, so that what the test does next happens while they wait.
func waitBlocked(t *testing.T, fn string, n int) {
	t.Helper()
	deadline := time.Now().Add(reactorWaitBound)
	buf := make([]byte, 1<<20)
	for {
		stacks := string(buf[:runtime.Stack(buf, true)])
		blocked := 0
		for _, g := range strings.Split(stacks, "\n\n") {
			if strings.Contains(g, "[sync.Cond.Wait") && strings.Contains(g, fn) {
				blocked++
			}
		}
		if blocked >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines waiting in %s, want %d", blocked, fn, n)
		}
		runtime.Gosched()
	}
}

// TestReactorDispatchesBeforeCheckpoint: a failure written behind the
// service's back (as another process's command would be) frees a slot and
// leaves its job to retry; the reactor dispatches it again before its
// checkpoint passes the failure, so whoever waits for the reactor finds the
// job DISPATCHED. The store slows the dispatcher's appends to widen the
// window the reactor once left open (it saved the checkpoint first).
func TestReactorDispatchesBeforeCheckpoint(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		store, db := b.open(t)
		c := &clock{now: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}
		svc, err := newService(ctx, slowDispatches{store}, db, c.Now)
		if err != nil {
			t.Fatal(err)
		}
		e := &env{store: store, db: db, svc: svc, clock: c}
		e.mustNode(t, "node-a", 1, false)
		e.mustGrant(t, "u1", 10)
		job := e.mustSubmit(t, "u1", domain.JobRender)
		r, stop := e.runReactor(t)
		defer stop()
		e.settle(t, r)
		j, _ := e.svc.Job(ctx, job.JobID)
		if j.Status() != domain.StatusDispatched {
			t.Fatalf("setup: job %s, want DISPATCHED", j.Status())
		}
		appendDomain(t, e, domain.JobStream(job.JobID), j.Version(), domain.JobFailed{
			JobID: job.JobID, Owner: "u1", NodeID: j.Node(), Error: "boom", Attempt: 1, WillRetry: true, At: c.Now(),
		})
		e.settle(t, r)
		j, _ = e.svc.Job(ctx, job.JobID)
		if j.Status() != domain.StatusDispatched || j.Attempts() != 2 {
			t.Fatalf("after the reactor passed the failure: job %s, attempt %d; want DISPATCHED, attempt 2", j.Status(), j.Attempts())
		}
	})
}

// slowDispatches delays the appends of the dispatcher's passes.
type slowDispatches struct{ eventstore.Store }

func (s slowDispatches) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	if len(events) > 0 && events[0].Metadata.Actor == "system:dispatcher" {
		time.Sleep(100 * time.Millisecond)
	}
	return s.Store.Append(ctx, stream, expected, events...)
}
