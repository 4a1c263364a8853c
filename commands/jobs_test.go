package commands_test

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rendertrust/rendertrust/commands"
	"github.com/rendertrust/rendertrust/dispatch"
	"github.com/rendertrust/rendertrust/domain"
)

// TestJobLifecycle: 1. a funded user submits a render job, which is held and
// dispatched at once; 2. the node starts and completes it; 3. the reactor
// deducts the hold exactly once, also after a restart.
func TestJobLifecycle(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		e.mustNode(t, "node-a", 2, true)
		e.mustGrant(t, "u1", 25)
		sub := e.mustSubmit(t, "u1", domain.JobRender)
		if sub.Status != domain.StatusDispatched || sub.NodeID != "node-a" || sub.Cost != 10 {
			t.Fatalf("step 1: submitted = %+v, want DISPATCHED to node-a costing 10", sub)
		}
		acc, _ := e.svc.Account(ctx, "u1")
		if acc.Available() != 15 || acc.Held() != 10 {
			t.Fatalf("step 1: available %d held %d, want 15 and 10", acc.Available(), acc.Held())
		}
		if _, err := e.svc.StartJob(ctx, system, "node-a", sub.JobID); err != nil {
			t.Fatalf("step 2: start: %v", err)
		}
		if _, err := e.svc.CompleteJob(ctx, system, "node-a", sub.JobID, sha, 42); err != nil {
			t.Fatalf("step 2: complete: %v", err)
		}
		r, stop := e.runReactor(t)
		e.settle(t, r)
		stop()
		r, stop = e.runReactor(t) // a restart must not charge again
		e.settle(t, r)
		stop()
		acc, _ = e.svc.Account(ctx, "u1")
		if acc.Balance() != 15 || acc.Held() != 0 || acc.Deducted() != 10 {
			t.Fatalf("step 3: balance %d held %d deducted %d, want 15, 0, 10", acc.Balance(), acc.Held(), acc.Deducted())
		}
	})
}

const sha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

// TestConcurrentSubmissions: 50 render submissions race on a balance of 100:
// exactly 10 are accepted, 40 refused, and available is never seen below 0.
func TestConcurrentSubmissions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		e.mustNode(t, "node-a", 256, true)
		e.mustGrant(t, "u1", 100)
		var accepted, refused atomic.Int32
		var wg sync.WaitGroup
		stop := make(chan struct{})
		watch := make(chan domain.Credits, 1)
		go func() { // observe available while the race runs
			lowest := domain.Credits(100)
			for {
				select {
				case <-stop:
					watch <- lowest
					return
				default:
				}
				if acc, err := e.svc.Account(ctx, "u1"); err == nil {
					lowest = min(lowest, acc.Available())
				}
			}
		}()
		for range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p, _ := domain.PayloadURI("s3://bucket/scene.blend")
				_, err := e.svc.SubmitJob(ctx, commands.Actor{ID: "user:u1"}, commands.SubmitJob{Owner: "u1", Type: domain.JobRender, Payload: p})
				switch {
				case err == nil:
					accepted.Add(1)
				case errors.Is(err, domain.ErrInsufficientCredits):
					refused.Add(1)
				default:
					t.Errorf("submit: %v", err)
				}
			}()
		}
		wg.Wait()
		close(stop)
		lowest := <-watch
		if accepted.Load() != 10 || refused.Load() != 40 {
			t.Fatalf("accepted %d refused %d, want 10 and 40", accepted.Load(), refused.Load())
		}
		acc, _ := e.svc.Account(ctx, "u1")
		if acc.Available() != 0 || acc.Held() != 100 || lowest < 0 {
			t.Fatalf("available %d held %d lowest seen %d; want 0, 100, ≥ 0", acc.Available(), acc.Held(), lowest)
		}
	})
}

// TestInvalidCommands: every invalid command is refused with its domain
// error and writes nothing.
func TestInvalidCommands(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		e.mustNode(t, "node-a", 4, false, domain.JobRender, domain.JobEcho)
		e.mustGrant(t, "u1", 100)
		running := e.mustSubmit(t, "u1", domain.JobRender)
		if _, err := e.svc.StartJob(ctx, system, "node-a", running.JobID); err != nil {
			t.Fatal(err)
		}
		done := e.mustSubmit(t, "u1", domain.JobEcho)
		e.svc.StartJob(ctx, system, "node-a", done.JobID)
		e.svc.CompleteJob(ctx, system, "node-a", done.JobID, sha, 1)
		p, _ := domain.PayloadURI("s3://b/k")
		submit := func(typ domain.JobType, gpu bool, user domain.UserID) func() error {
			return func() error {
				_, err := e.svc.SubmitJob(ctx, commands.Actor{}, commands.SubmitJob{Owner: user, Type: typ, GPU: gpu, Payload: p})
				return err
			}
		}
		cases := []struct {
			name string
			run  func() error
			want error
		}{
			{"ErrUnknownJobType", submit("teleport", false, "u1"), domain.ErrUnknownJobType},
			{"ErrNoHealthyNodesForType", submit(domain.JobInference, false, "u1"), domain.ErrNoHealthyNodes},
			{"ErrNoHealthyNodesForGPU", submit(domain.JobRender, true, "u1"), domain.ErrNoHealthyNodes},
			{"ErrInsufficientCredits", submit(domain.JobRender, false, "broke"), domain.ErrInsufficientCredits},
			// Too few credits is said first, whatever the nodes (402 before 503).
			{"ErrInsufficientCreditsWithoutNodes", submit(domain.JobInference, false, "broke"), domain.ErrInsufficientCredits},
			{"ErrInvalidPayload", func() error {
				_, err := e.svc.SubmitJob(ctx, commands.Actor{}, commands.SubmitJob{Owner: "u1", Type: domain.JobRender})
				return err
			}, domain.ErrInvalidPayload},
			{"ErrNotCancellableRunning", func() error { _, err := e.svc.CancelJob(ctx, system, "u1", running.JobID); return err }, domain.ErrNotCancellable},
			{"ErrJobNotFoundOtherOwner", func() error { _, err := e.svc.CancelJob(ctx, system, "u2", running.JobID); return err }, domain.ErrJobNotFound},
			{"ErrWrongNode", func() error { _, err := e.svc.CompleteJob(ctx, system, "node-b", running.JobID, sha, 1); return err }, domain.ErrWrongNode},
			{"ErrInvalidResult", func() error { _, err := e.svc.CompleteJob(ctx, system, "node-a", running.JobID, "xyz", 1); return err }, domain.ErrInvalidResult},
			{"ErrInvalidTransitionStartTwice", func() error { _, err := e.svc.StartJob(ctx, system, "node-a", running.JobID); return err }, domain.ErrInvalidTransition},
			{"ErrJobNotFound", func() error { _, err := e.svc.StartJob(ctx, system, "node-a", "nope"); return err }, domain.ErrJobNotFound},
			{"ErrNotTimedOut", func() error { _, err := e.svc.TimeOutJob(ctx, running.JobID); return err }, domain.ErrInvalidTransition},
			{"ErrNotDeducted", func() error { _, err := e.svc.Refund(ctx, admin, running.JobID, 5, "r1", "dispute"); return err }, domain.ErrNotDeducted},
			{"ErrNodeNotFound", func() error { return e.svc.Heartbeat(ctx, "ghost") }, domain.ErrNodeNotFound},
			{"ErrNodeExists", func() error {
				_, err := e.svc.EnrollNode(ctx, admin, "node-a", domain.Enrollment{Name: "x", Capabilities: domain.Capabilities{JobTypes: []domain.JobType{domain.JobEcho}, Slots: 1}})
				return err
			}, domain.ErrNodeExists},
			{"ErrInvalidNodeSlots", func() error {
				_, err := e.svc.EnrollNode(ctx, admin, "node-z", domain.Enrollment{Name: "x", Capabilities: domain.Capabilities{JobTypes: []domain.JobType{domain.JobEcho}, Slots: 0}})
				return err
			}, domain.ErrInvalidNode},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				before := e.head(t)
				if err := tc.run(); !errors.Is(err, tc.want) {
					t.Fatalf("err = %v, want %v", err, tc.want)
				}
				if after := e.head(t); after != before {
					t.Fatalf("head moved %d → %d: a refused command wrote", before, after)
				}
			})
		}
	})
}

// TestRefundNeverExceedsCharge: concurrent partial refunds of one charged
// job never total more than its charge.
func TestRefundNeverExceedsCharge(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		e.mustNode(t, "node-a", 4, false)
		e.mustGrant(t, "u1", 10)
		job := e.mustSubmit(t, "u1", domain.JobRender)
		e.svc.StartJob(ctx, system, "node-a", job.JobID)
		e.svc.CompleteJob(ctx, system, "node-a", job.JobID, sha, 1)
		r, stop := e.runReactor(t)
		e.settle(t, r)
		stop()
		var wg sync.WaitGroup
		var ok atomic.Int32
		for i := range 12 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := e.svc.Refund(ctx, admin, job.JobID, 3, "refund-"+string(rune('a'+i)), "dispute")
				if err == nil {
					ok.Add(1)
				} else if !errors.Is(err, domain.ErrRefundExceedsDeduction) {
					t.Errorf("refund: %v", err)
				}
			}()
		}
		wg.Wait()
		acc, _ := e.svc.Account(ctx, "u1")
		if ok.Load() != 3 || acc.Refunded() != 9 {
			t.Fatalf("%d refunds succeeded totalling %d; want 3 totalling 9", ok.Load(), acc.Refunded())
		}
	})
}

// TestRetryAndTimeout: 1. a job dispatched to a node that goes silent times
// out after 5 minutes; 2. it is dispatched again to the other node;
// 3. failures use up its retries and the hold is released, never charged.
func TestRetryAndTimeout(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		e.mustNode(t, "node-a", 1, false)
		e.mustGrant(t, "u1", 10)
		job := e.mustSubmit(t, "u1", domain.JobRender)
		first := job.NodeID
		e.mustNode(t, "node-b", 1, false)
		r, stop := e.runReactor(t)
		defer stop()
		e.clock.Advance(domain.DispatchTimeout + time.Second)
		e.svc.Heartbeat(ctx, "node-a")
		e.svc.Heartbeat(ctx, "node-b")
		r.Sweep(ctx)
		j, _ := e.svc.Job(ctx, job.JobID)
		if j.Attempts() != 2 || j.Status() != domain.StatusDispatched || j.Node() == first {
			t.Fatalf("step 2: attempts %d status %s node %s (first %s); want a second dispatch elsewhere", j.Attempts(), j.Status(), j.Node(), first)
		}
		for range domain.AttemptsMax - 1 {
			j, _ = e.svc.Job(ctx, job.JobID)
			if _, err := e.svc.FailJob(ctx, system, j.Node(), job.JobID, "boom"); err != nil {
				t.Fatalf("step 3: fail: %v", err)
			}
			e.settle(t, r)
		}
		j, _ = e.svc.Job(ctx, job.JobID)
		acc, _ := e.svc.Account(ctx, "u1")
		if j.Status() != domain.StatusFailed || acc.Available() != 10 || acc.Deducted() != 0 {
			t.Fatalf("step 3: status %s available %d deducted %d; want FAILED, 10, 0", j.Status(), acc.Available(), acc.Deducted())
		}
	})
}

// TestPriorityDispatch: with every slot busy, waiting jobs are dispatched
// highest priority first when a slot frees.
func TestPriorityDispatch(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		e.mustNode(t, "node-a", 1, false)
		e.mustGrant(t, "u1", 100)
		busy := e.mustSubmit(t, "u1", domain.JobEcho)
		p, _ := domain.PayloadURI("s3://b/k")
		var ids []domain.JobID
		for _, pr := range []domain.Priority{domain.PriorityLow, domain.PriorityHigh, domain.PriorityNormal} {
			res, err := e.svc.SubmitJob(ctx, commands.Actor{}, commands.SubmitJob{Owner: "u1", Type: domain.JobEcho, Priority: pr, Payload: p})
			if err != nil || res.Status != domain.StatusQueued || res.NodeID != "" {
				t.Fatalf("submit %s: %+v, %v; want QUEUED without a node", pr, res, err)
			}
			ids = append(ids, res.JobID)
		}
		e.svc.StartJob(ctx, system, "node-a", busy.JobID)
		if _, err := e.svc.CompleteJob(ctx, system, "node-a", busy.JobID, sha, 1); err != nil {
			t.Fatal(err)
		}
		high, _ := e.svc.Job(ctx, ids[1])
		low, _ := e.svc.Job(ctx, ids[0])
		if high.Status() != domain.StatusDispatched || low.Status() != domain.StatusQueued {
			t.Fatalf("high %s low %s; want the high-priority job dispatched first", high.Status(), low.Status())
		}
	})
}

// TestOrphanedHoldReleased: a hold whose job never appeared is released
// after the grace period.
func TestOrphanedHoldReleased(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		e.mustGrant(t, "u1", 10)
		acc, _ := e.svc.Account(ctx, "u1")
		events, _ := acc.Hold("lost-job", 10, e.clock.Now()) // the submission crashed after its hold
		appendDomain(t, e, domain.AccountStream("u1"), acc.Version(), events...)
		r, stop := e.runReactor(t)
		defer stop()
		e.settle(t, r)
		e.clock.Advance(2 * time.Minute)
		r.Sweep(ctx)
		acc, _ = e.svc.Account(ctx, "u1")
		if acc.Available() != 10 || acc.Held() != 0 {
			t.Fatalf("available %d held %d; want the orphaned hold released", acc.Available(), acc.Held())
		}
	})
}

// TestIdempotentSubmit: concurrent submissions with one idempotency key
// (and no job id) create one job, whose id they all answer (the answers to
// the key are tested in package idempotency).
func TestIdempotentSubmit(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		e.mustNode(t, "node-a", 8, false)
		e.mustGrant(t, "u1", 100)
		p, _ := domain.PayloadURI("s3://b/k")
		keyed := commands.Actor{ID: "user:u1", IdempotencyKey: "key-1"}
		var wg sync.WaitGroup
		results := make([]commands.Submitted, 5)
		for i := range results {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := e.svc.SubmitJob(ctx, keyed, commands.SubmitJob{Owner: "u1", Type: domain.JobRender, Payload: p})
				if err != nil {
					t.Errorf("submit %d: %v", i, err)
				}
				results[i] = r
			}()
		}
		wg.Wait()
		for _, r := range results[1:] {
			if r.JobID != results[0].JobID {
				t.Fatalf("results differ: %+v vs %+v", r, results[0])
			}
		}
		if want := domain.JobID(commands.DeriveID("job", "u1", "key-1")); results[0].JobID != want {
			t.Errorf("job id = %s, want %s (derived from the key)", results[0].JobID, want)
		}
		acc, _ := e.svc.Account(ctx, "u1")
		if acc.Held() != 10 {
			t.Fatalf("held %d, want 10: one job", acc.Held())
		}
	})
}

// TestLostNodeJobRetried: 1. a job RUNNING on a node that falls silent is
// failed once the node has been silent for NodeLostAfter; 2. it is
// dispatched to the other node; 3. completed there, it is charged once.
func TestLostNodeJobRetried(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		e.mustNode(t, "node-a", 1, false)
		e.mustGrant(t, "u1", 10)
		job := e.mustSubmit(t, "u1", domain.JobRender)
		if _, err := e.svc.StartJob(ctx, system, "node-a", job.JobID); err != nil {
			t.Fatal(err)
		}
		e.mustNode(t, "node-b", 1, false)
		r, stop := e.runReactor(t)
		defer stop()
		e.clock.Advance(dispatch.NodeLostAfterDefault + time.Second)
		e.svc.Heartbeat(ctx, "node-b")
		r.Sweep(ctx)
		j, _ := e.svc.Job(ctx, job.JobID)
		if j.Status() != domain.StatusDispatched || j.Node() != "node-b" || j.LastError() == "" {
			t.Fatalf("step 2: status %s node %s error %q; want DISPATCHED to node-b after a lost-node failure", j.Status(), j.Node(), j.LastError())
		}
		e.svc.StartJob(ctx, system, "node-b", job.JobID)
		if _, err := e.svc.CompleteJob(ctx, system, "node-b", job.JobID, sha, 1); err != nil {
			t.Fatal(err)
		}
		e.settle(t, r)
		acc, _ := e.svc.Account(ctx, "u1")
		if acc.Deducted() != 10 || acc.Available() != 0 || acc.Held() != 0 {
			t.Fatalf("step 3: deducted %d available %d held %d; want charged once", acc.Deducted(), acc.Available(), acc.Held())
		}
	})
}

// TestRefundRestRetried: "refund everything" retried with the same refund
// id refunds once and succeeds (the retry computed the rest again, 0, and
// was refused as an idempotency conflict); a new id then has nothing left.
func TestRefundRestRetried(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		e.mustNode(t, "node-a", 4, false)
		e.mustGrant(t, "u1", 10)
		job := e.mustSubmit(t, "u1", domain.JobRender)
		e.svc.StartJob(ctx, system, "node-a", job.JobID)
		e.svc.CompleteJob(ctx, system, "node-a", job.JobID, sha, 1)
		r, stop := e.runReactor(t)
		e.settle(t, r)
		stop()
		if _, err := e.svc.Refund(ctx, admin, job.JobID, 1, "part", "dispute"); err != nil {
			t.Fatalf("partial refund: %v", err)
		}
		for try := 1; try <= 2; try++ {
			if _, err := e.svc.Refund(ctx, admin, job.JobID, 0, "rest", "dispute"); err != nil {
				t.Fatalf("refund of the rest, try %d: %v", try, err)
			}
		}
		acc, _ := e.svc.Account(ctx, "u1")
		h, _ := acc.JobHold(job.JobID)
		if acc.Refunded() != h.Deducted() || h.Refunded != h.Deducted() {
			t.Fatalf("refunded %d of a charge of %d (hold says %d)", acc.Refunded(), h.Deducted(), h.Refunded)
		}
		if _, err := e.svc.Refund(ctx, admin, job.JobID, 0, "rest-again", "dispute"); !errors.Is(err, domain.ErrInvalidAmount) {
			t.Fatalf("a new refund of the rest when nothing is left: %v, want ErrInvalidAmount", err)
		}
	})
}
