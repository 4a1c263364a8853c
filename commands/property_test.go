package commands_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/rendertrust/rendertrust/commands"
	"github.com/rendertrust/rendertrust/domain"
)

// history drives random interleavings of commands against one environment.
type history struct {
	t       *testing.T
	e       *env
	r       *rand.Rand
	users   []domain.UserID
	jobs    []domain.JobID
	stop    func()
	reactor *commands.Reactor
	step    int
}

// TestRandomHistories is the ledger's property test: random interleavings of
// purchases, grants, submissions, dispatches, starts, completions, failures,
// timeouts, cancels and refunds over several users and jobs, with reactor
// restarts at random points. Throughout, available credits never go below
// zero; at the end every event's postings sum to zero, no job is charged
// twice or without completing, every hold is captured or released, and
// replaying the log from scratch gives the same accounts.
func TestRandomHistories(t *testing.T) {
	seeds, steps := 4, 120
	if testing.Short() {
		seeds, steps = 1, 60
	}
	forEachBackend(t, func(t *testing.T, b backend) {
		for seed := range seeds {
			t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
				h := &history{t: t, e: newEnv(t, b), r: rand.New(rand.NewPCG(uint64(seed), 7))}
				h.run(steps)
				h.finish()
				h.checkLedger()
				h.checkReplay(b)
			})
		}
	})
}

func (h *history) run(steps int) {
	for i := range 4 {
		h.users = append(h.users, domain.UserID(fmt.Sprintf("user-%d", i)))
	}
	h.e.mustNode(h.t, "node-a", 2, true)
	h.e.mustNode(h.t, "node-b", 1, false)
	h.reactor, h.stop = h.e.runReactor(h.t)
	ops := []func(){h.purchase, h.grant, h.submit, h.submit, h.submit, h.start, h.start, h.start, h.complete, h.complete,
		h.complete, h.fail, h.cancel, h.refund, h.refund, h.restart}
	ops = append(ops, ops...)
	ops = append(ops, h.timeout) // rare: it ends every DISPATCHED attempt at once
	for h.step = 0; h.step < steps; h.step++ {
		ops[h.r.IntN(len(ops))]()
		h.checkAvailable()
	}
}

func (h *history) user() domain.UserID { return h.users[h.r.IntN(len(h.users))] }

func (h *history) job() (*domain.Job, bool) {
	if len(h.jobs) == 0 {
		return nil, false
	}
	j, err := h.e.svc.Job(ctx, h.jobs[h.r.IntN(len(h.jobs))])
	if err != nil {
		h.t.Fatalf("step %d: load job: %v", h.step, err)
	}
	return j, true
}

// allow fails the test unless err is nil or a domain refusal.
func (h *history) allow(op string, err error) {
	if err != nil && domain.ErrorCode(err) == domain.CodeInternal {
		h.t.Fatalf("step %d %s: %v", h.step, op, err)
	}
}

func (h *history) purchase() {
	pkg := domain.Packages()[h.r.IntN(3)]
	id := fmt.Sprintf("p-%d", h.r.IntN(1000)) // repeats exercise idempotency
	_, err := h.e.svc.FulfilPurchase(ctx, system, h.user(), pkg.Purchase(id, domain.ProviderDev, "cs_"+id))
	h.allow("purchase", err)
}

func (h *history) grant() {
	_, err := h.e.svc.Grant(ctx, admin, h.user(), fmt.Sprintf("g-%d", h.step), domain.Credits(1+h.r.IntN(20)), "promo")
	h.allow("grant", err)
}

func (h *history) submit() {
	types := domain.JobTypes()
	p, _ := domain.PayloadURI("s3://b/k")
	res, err := h.e.svc.SubmitJob(ctx, system, commands.SubmitJob{Owner: h.user(), Type: types[h.r.IntN(len(types))], GPU: h.r.IntN(5) == 0, Payload: p})
	h.allow("submit", err)
	if err == nil {
		h.jobs = append(h.jobs, res.JobID)
	}
}

func (h *history) start() {
	if j, ok := h.job(); ok {
		_, err := h.e.svc.StartJob(ctx, system, j.Node(), j.ID())
		h.allow("start", err)
	}
}

func (h *history) complete() {
	if j, ok := h.job(); ok {
		_, err := h.e.svc.CompleteJob(ctx, system, j.Node(), j.ID(), sha, 10)
		h.allow("complete", err)
	}
}

func (h *history) fail() {
	if j, ok := h.job(); ok {
		_, err := h.e.svc.FailJob(ctx, system, j.Node(), j.ID(), "exit 1")
		h.allow("fail", err)
	}
}

func (h *history) timeout() {
	h.e.clock.Advance(domain.DispatchTimeout + time.Second)
	h.e.svc.Heartbeat(ctx, "node-a")
	h.e.svc.Heartbeat(ctx, "node-b")
	h.reactor.Sweep(ctx)
}

func (h *history) cancel() {
	if j, ok := h.job(); ok {
		_, err := h.e.svc.CancelJob(ctx, system, j.Owner(), j.ID())
		h.allow("cancel", err)
	}
}

func (h *history) refund() {
	if j, ok := h.completedJob(); ok {
		_, err := h.e.svc.Refund(ctx, admin, j.ID(), domain.Credits(1+h.r.IntN(6)), fmt.Sprintf("r-%d", h.step), "dispute")
		h.allow("refund", err)
	}
}

// completedJob picks a completed job when there is one.
func (h *history) completedJob() (*domain.Job, bool) {
	for _, i := range h.r.Perm(len(h.jobs)) {
		if j, _ := h.e.svc.Job(ctx, h.jobs[i]); j.Status() == domain.StatusCompleted {
			return j, true
		}
	}
	return h.job()
}

func (h *history) restart() {
	h.stop()
	h.reactor, h.stop = h.e.runReactor(h.t)
}

func (h *history) checkAvailable() {
	for _, u := range h.users {
		acc, err := h.e.svc.Account(ctx, u)
		if err != nil {
			h.t.Fatal(err)
		}
		if acc.Available() < 0 {
			h.t.Fatalf("step %d: %s available %d < 0", h.step, u, acc.Available())
		}
	}
}

// finish ends every job still open (cancel what can be cancelled, complete
// what runs) and lets the reactor settle everything.
func (h *history) finish() {
	for _, id := range h.jobs {
		j, _ := h.e.svc.Job(ctx, id)
		switch j.Status() {
		case domain.StatusQueued, domain.StatusDispatched:
			h.allow("final cancel", func() error { _, err := h.e.svc.CancelJob(ctx, system, j.Owner(), id); return err }())
		case domain.StatusRunning:
			h.allow("final complete", func() error { _, err := h.e.svc.CompleteJob(ctx, system, j.Node(), id, sha, 1); return err }())
		}
	}
	h.e.settle(h.t, h.reactor)
	h.stop()
}

// checkLedger checks the whole log: balanced postings, charges only of
// completed jobs and at most once, and no hold left open.
func (h *history) checkLedger() {
	completed := map[domain.JobID]bool{}
	charged := map[domain.JobID]int{}
	kinds := map[string]int{}
	defer func() { h.t.Logf("events by type: %v", kinds) }()
	for _, ev := range h.e.allEvents(h.t) {
		kinds[ev.EventType()]++
		if err := domain.Balanced(domain.PostingsOf(ev)); err != nil {
			h.t.Fatalf("%T: postings do not balance: %v", ev, err)
		}
		switch ev := ev.(type) {
		case domain.JobCompleted:
			completed[ev.JobID] = true
		case domain.CreditsDeducted:
			charged[ev.JobID]++
			if !completed[ev.JobID] || charged[ev.JobID] > 1 {
				h.t.Fatalf("job %s charged %d times, completed %v", ev.JobID, charged[ev.JobID], completed[ev.JobID])
			}
		}
	}
	for _, u := range h.users {
		acc, _ := h.e.svc.Account(ctx, u)
		if acc.Held() != 0 {
			h.t.Errorf("%s still holds %d after every job ended", u, acc.Held())
		}
	}
}

// checkReplay loads every account with a fresh service (no cached
// snapshots) and compares it with the cached one.
func (h *history) checkReplay(b backend) {
	fresh, err := newService(ctx, h.e.store, h.e.db, h.e.clock.Now)
	if err != nil {
		h.t.Fatal(err)
	}
	for _, u := range h.users {
		live, _ := h.e.svc.Account(ctx, u)
		replayed, err := fresh.Account(ctx, u)
		if err != nil {
			h.t.Fatal(err)
		}
		got := [5]domain.Credits{replayed.Balance(), replayed.Held(), replayed.Deducted(), replayed.Refunded(), domain.Credits(replayed.Version())}
		want := [5]domain.Credits{live.Balance(), live.Held(), live.Deducted(), live.Refunded(), domain.Credits(live.Version())}
		if got != want {
			h.t.Errorf("%s replayed %v, live %v", u, got, want)
		}
	}
}
