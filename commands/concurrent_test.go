package commands_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rendertrust/rendertrust/commands"
	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/projections"
)

// The concurrent model test's sizes. make soak sets SOAK_OPS (or the test
// flag -soak.ops) to run a million operations; make test runs the short
// default.
const (
	concurrentWorkers  = 8   // goroutines issuing commands at once
	concurrentUsers    = 6   // accounts the workers share
	concurrentShortOps = 600 // operations per backend in make test
	// soakRoundOps is the operations per fresh environment in a soak. A
	// round's cost per operation grows with its length: every reactor
	// restart replays the round's whole log and the queue of waiting jobs
	// grows. 20,000-operation rounds ran at 34 ops/s on PostgreSQL.
	soakRoundOps        = 2000
	concurrentStartFund = 500 // credits each user is granted before a round
	quiesceStallsMax    = 10  // passes in a row that end no job before quiesce gives up
	// catchUpMax bounds a fresh projection runner's replay of a round (a
	// 20,000-operation PostgreSQL round took minutes on a loaded machine).
	catchUpMax = 15 * time.Minute
)

var soakOps = flag.Int("soak.ops", envInt("SOAK_OPS", concurrentShortOps), "operations per backend for TestConcurrentModel (make soak: 1000000)")

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// The operation kinds the model counts when they succeed.
const (
	opSubmit   = "submit"
	opCancel   = "cancel"
	opStart    = "start"
	opComplete = "complete"
	opFail     = "fail"
	opRefund   = "refund"
	opPurchase = "purchase"
	opGrant    = "grant"
	opRestart  = "restart"
	opTimeout  = "timeout"
)

// minActivityKinds must each succeed at least once per round: a run that
// never refunds proves nothing about refunds.
var minActivityKinds = []string{opSubmit, opCancel, opStart, opComplete, opFail, opRefund, opPurchase, opRestart}

// model is one round of the concurrent test: workers share an environment,
// a reactor that is restarted at random and a projection runner.
type model struct {
	t     *testing.T
	e     *env
	users []domain.UserID
	round int

	jobsMu    sync.Mutex
	jobs      []domain.JobID // every job submitted
	open      []domain.JobID // jobs not seen ended yet: most picks go here
	completed []domain.JobID // jobs completed: refunds pick from these

	reactorMu sync.Mutex
	reactor   *commands.Reactor
	stop      func()

	counts sync.Map // kind → *atomic.Int64
}

// TestConcurrentModel is the concurrent model-based test of the money and
// job rules: concurrentWorkers goroutines issue random submissions,
// cancels, node starts, completions and failures, refunds, purchases,
// grants, timeouts and reactor restarts at the same time on one backend,
// while the projections follow. After each round (once quiet) it checks,
// from the log: every event's postings balance and the whole log sums to
// zero; no account's available credits are below zero after any event;
// jobs are charged at most once and only when completed; every hold is
// captured or released exactly once; and a fresh replay of every account
// equals the live aggregate and the balances read model. It also requires
// that every kind of operation succeeded at least once.
func TestConcurrentModel(t *testing.T) {
	total := *soakOps
	forEachBackend(t, func(t *testing.T, b backend) {
		done := 0
		start := time.Now()
		for round := 0; done < total && !t.Failed(); round++ {
			n := min(soakRoundOps, total-done)
			// A subtest per round closes its databases when it ends: a
			// soak's hundred rounds would otherwise keep every round's
			// connections open until the end.
			t.Run(fmt.Sprintf("round%d", round), func(t *testing.T) {
				began := time.Now()
				m := &model{t: t, e: newEnv(t, b), round: round}
				m.run(n, uint64(round))
				ran := time.Now()
				m.quiesce()
				quiet := time.Now()
				m.checkLog()
				m.checkAggregates()
				m.checkActivity(n)
				t.Logf("%d operations in %s, quiesced in %s, checked in %s; succeeded %v", n, ran.Sub(began).Round(time.Millisecond),
					quiet.Sub(ran).Round(time.Millisecond), time.Since(quiet).Round(time.Millisecond), m.countMap())
			})
			done += n
			elapsed := time.Since(start)
			t.Logf("%d of %d operations done in %s (%.0f ops/s)", done, total, elapsed.Round(time.Second), float64(done)/elapsed.Seconds())
		}
	})
}

func (m *model) run(ops int, seed uint64) {
	for i := range concurrentUsers {
		u := domain.UserID(fmt.Sprintf("user-%d-%d", m.round, i))
		m.users = append(m.users, u)
		m.e.mustGrant(m.t, u, concurrentStartFund)
	}
	m.e.mustNode(m.t, "node-a", 16, true)
	m.e.mustNode(m.t, "node-b", 8, false)
	m.reactor, m.stop = m.e.runReactor(m.t)
	runner := m.startProjections()
	defer runner.Stop()

	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range concurrentWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed, uint64(w)))
			for next.Add(1) <= int64(ops) {
				m.step(r)
			}
		}()
	}
	wg.Wait()
}

func (m *model) startProjections() *projections.Runner {
	runner, err := projections.NewRunner(projections.Config{DB: m.e.db, Store: m.e.store})
	if err != nil {
		m.t.Fatal(err)
	}
	if err := runner.Start(ctx); err != nil {
		m.t.Fatal(err)
	}
	m.t.Cleanup(func() { runner.Stop() })
	return runner
}

// step runs one random operation. Weights favour the job cycle; timeouts
// are rare because one ends every dispatched attempt at once.
func (m *model) step(r *rand.Rand) {
	switch k := r.IntN(100); {
	case k < 22:
		m.submit(r)
	case k < 42:
		m.start(r)
	case k < 62:
		m.complete(r)
	case k < 68:
		m.fail(r)
	case k < 72:
		m.cancel(r)
	case k < 80:
		m.refund(r)
	case k < 88:
		m.purchase(r)
	case k < 94:
		m.grant(r)
	case k < 99:
		m.restart()
	default:
		m.timeout()
	}
}

// did counts a successful operation and fails the test on an internal
// error; a domain refusal (conflict, insufficient credits, wrong status)
// is part of the model.
func (m *model) did(kind string, err error) {
	if err != nil {
		if domain.ErrorCode(err) == domain.CodeInternal {
			m.t.Errorf("%s: %v", kind, err)
		}
		return
	}
	c, _ := m.counts.LoadOrStore(kind, new(atomic.Int64))
	c.(*atomic.Int64).Add(1)
}

func (m *model) count(kind string) int64 {
	if c, ok := m.counts.Load(kind); ok {
		return c.(*atomic.Int64).Load()
	}
	return 0
}

func (m *model) countMap() map[string]int64 {
	out := map[string]int64{}
	m.counts.Range(func(k, v any) bool { out[k.(string)] = v.(*atomic.Int64).Load(); return true })
	return out
}

func (m *model) user(r *rand.Rand) domain.UserID { return m.users[r.IntN(len(m.users))] }

// job loads a random job: mostly one not seen ended yet, sometimes any
// (commands on ended jobs must be refused).
func (m *model) job(r *rand.Rand) (*domain.Job, bool) {
	m.jobsMu.Lock()
	from := m.open
	if len(from) == 0 || r.IntN(10) == 0 {
		from = m.jobs
	}
	if len(from) == 0 {
		m.jobsMu.Unlock()
		return nil, false
	}
	id := from[r.IntN(len(from))]
	m.jobsMu.Unlock()
	j, err := m.e.svc.Job(ctx, id)
	if err != nil {
		m.t.Errorf("load job %s: %v", id, err)
		return nil, false
	}
	if j.Status().Terminal() {
		m.ended(id)
	}
	return j, true
}

// ended takes id off the open list.
func (m *model) ended(id domain.JobID) {
	m.jobsMu.Lock()
	defer m.jobsMu.Unlock()
	for i, o := range m.open {
		if o == id {
			m.open[i] = m.open[len(m.open)-1]
			m.open = m.open[:len(m.open)-1]
			return
		}
	}
}

func (m *model) submit(r *rand.Rand) {
	types := domain.JobTypes()
	p, _ := domain.PayloadURI("s3://b/k")
	res, err := m.e.svc.SubmitJob(ctx, system, commands.SubmitJob{Owner: m.user(r), Type: types[r.IntN(len(types))], GPU: r.IntN(5) == 0, Payload: p})
	m.did(opSubmit, err)
	if err == nil {
		m.jobsMu.Lock()
		m.jobs = append(m.jobs, res.JobID)
		m.open = append(m.open, res.JobID)
		m.jobsMu.Unlock()
	}
}

func (m *model) start(r *rand.Rand) {
	if j, ok := m.job(r); ok {
		_, err := m.e.svc.StartJob(ctx, system, j.Node(), j.ID())
		m.did(opStart, err)
	}
}

func (m *model) complete(r *rand.Rand) {
	if j, ok := m.job(r); ok {
		_, err := m.e.svc.CompleteJob(ctx, system, j.Node(), j.ID(), sha, 10)
		m.did(opComplete, err)
		if err == nil {
			m.jobsMu.Lock()
			m.completed = append(m.completed, j.ID())
			m.jobsMu.Unlock()
		}
	}
}

func (m *model) fail(r *rand.Rand) {
	if j, ok := m.job(r); ok {
		_, err := m.e.svc.FailJob(ctx, system, j.Node(), j.ID(), "exit 1")
		m.did(opFail, err)
	}
}

func (m *model) cancel(r *rand.Rand) {
	if j, ok := m.job(r); ok {
		_, err := m.e.svc.CancelJob(ctx, system, j.Owner(), j.ID())
		m.did(opCancel, err)
	}
}

// refund refunds part of a random job's charge; refunds of jobs that were
// never charged, or beyond the charge, must be refused.
func (m *model) refund(r *rand.Rand) {
	m.jobsMu.Lock()
	var id domain.JobID
	if len(m.completed) > 0 && r.IntN(5) > 0 {
		id = m.completed[r.IntN(len(m.completed))]
	} else if len(m.jobs) > 0 {
		id = m.jobs[r.IntN(len(m.jobs))]
	}
	m.jobsMu.Unlock()
	if id == "" {
		return
	}
	refundID := fmt.Sprintf("r-%d-%d", r.IntN(1<<20), r.IntN(1<<20))
	_, err := m.e.svc.Refund(ctx, admin, id, domain.Credits(1+r.IntN(6)), refundID, "dispute")
	m.did(opRefund, err)
}

func (m *model) purchase(r *rand.Rand) {
	pkg := domain.Packages()[r.IntN(len(domain.Packages()))]
	id := fmt.Sprintf("p-%d-%d", m.round, r.IntN(1<<16)) // repeats exercise idempotency
	_, err := m.e.svc.FulfilPurchase(ctx, system, m.user(r), pkg.Purchase(id, domain.ProviderDev, "cs_"+id))
	m.did(opPurchase, err)
}

func (m *model) grant(r *rand.Rand) {
	id := fmt.Sprintf("g-%d-%d", r.IntN(1<<20), r.IntN(1<<20))
	_, err := m.e.svc.Grant(ctx, admin, m.user(r), id, domain.Credits(1+r.IntN(20)), "promo")
	m.did(opGrant, err)
}

// restart stops the reactor and starts a new one while the workers go on.
func (m *model) restart() {
	m.reactorMu.Lock()
	defer m.reactorMu.Unlock()
	m.stop()
	m.reactor, m.stop = m.e.runReactor(m.t)
	m.did(opRestart, nil)
}

// timeout moves the clock past the dispatch timeout; the nodes heartbeat
// so that only the dispatched attempts, not the nodes, time out.
func (m *model) timeout() {
	m.reactorMu.Lock()
	defer m.reactorMu.Unlock()
	m.e.clock.Advance(domain.DispatchTimeout + time.Second)
	m.did(opTimeout, m.e.svc.Heartbeat(ctx, "node-a"))
	m.e.svc.Heartbeat(ctx, "node-b")
	m.reactor.Sweep(ctx)
}

// quiesce ends every open job (cancel what waits, complete what runs)
// until every job has ended, then lets the reactor settle every hold. Each
// pass reads only the jobs not yet seen ended, concurrentWorkers at a time,
// and it fails only after quiesceStallsMax passes in a row ended none: a
// wall-clock bound failed a PostgreSQL round of thousands of jobs on a
// loaded machine.
func (m *model) quiesce() {
	m.reactorMu.Lock()
	defer m.reactorMu.Unlock()
	pending := append([]domain.JobID(nil), m.jobs...)
	for stalls := 0; len(pending) > 0; {
		if stalls > quiesceStallsMax {
			m.t.Fatalf("%d jobs still open after %d passes that ended none", len(pending), stalls)
		}
		m.e.settle(m.t, m.reactor)
		open := m.endAll(pending)
		if m.t.Failed() {
			m.t.FailNow()
		}
		if stalls++; len(open) < len(pending) {
			stalls = 0
		}
		pending = open
	}
	m.e.settle(m.t, m.reactor)
	m.stop()
}

// endAll moves each of jobs towards its end from concurrentWorkers
// goroutines and returns those not seen ended.
func (m *model) endAll(jobs []domain.JobID) []domain.JobID {
	var mu sync.Mutex
	var open []domain.JobID
	var next atomic.Int64
	var wg sync.WaitGroup
	for range concurrentWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(len(jobs)); i = next.Add(1) - 1 {
				if m.end(jobs[i]) {
					mu.Lock()
					open = append(open, jobs[i])
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return open
}

// end cancels a waiting job or completes a running one, and reports
// whether the job was still open (an error counts as open: the caller
// stops the test).
func (m *model) end(id domain.JobID) bool {
	j, err := m.e.svc.Job(ctx, id)
	if err != nil {
		m.t.Errorf("load job %s: %v", id, err)
		return true
	}
	switch j.Status() {
	case domain.StatusQueued, domain.StatusDispatched:
		_, err := m.e.svc.CancelJob(ctx, system, j.Owner(), id)
		m.did("final cancel", err)
		return true
	case domain.StatusRunning:
		_, err := m.e.svc.CompleteJob(ctx, system, j.Node(), id, sha, 1)
		m.did("final complete", err)
		return true
	}
	return false
}

// checkLog folds the whole log once: postings, available credits after
// every event, charges and holds.
func (m *model) checkLog() {
	type account struct{ balance, held domain.Credits }
	accounts := map[domain.UserID]*account{}
	ledger := map[domain.AccountRef]domain.Credits{} // every ledger account's balance from the postings
	completed := map[domain.JobID]bool{}
	charged := map[domain.JobID]int{}
	held := map[domain.JobID]int{}    // holds taken
	settled := map[domain.JobID]int{} // holds captured or released
	for i, ev := range m.e.allEvents(m.t) {
		ps := domain.PostingsOf(ev)
		if err := domain.Balanced(ps); err != nil {
			m.t.Fatalf("event %d %T: postings do not balance: %v", i+1, ev, err)
		}
		for _, p := range ps {
			ledger[p.Credit] += p.Amount
			ledger[p.Debit] -= p.Amount
		}
		u, ok := domain.AccountOf(ev)
		if !ok {
			if e, ok := ev.(domain.JobCompleted); ok {
				completed[e.JobID] = true
			}
			continue
		}
		a := accounts[u]
		if a == nil {
			a = &account{}
			accounts[u] = a
		}
		switch ev := ev.(type) {
		case domain.CreditsPurchased:
			a.balance += ev.Credits
		case domain.CreditsGranted:
			a.balance += ev.Amount
		case domain.CreditsRefunded:
			a.balance += ev.Amount
		case domain.CreditsHeld:
			a.held += ev.Amount
			held[ev.JobID]++
		case domain.CreditsDeducted:
			a.held -= ev.Amount
			a.balance -= ev.Amount
			charged[ev.JobID]++
			settled[ev.JobID]++
			if !completed[ev.JobID] || charged[ev.JobID] > 1 {
				m.t.Errorf("event %d: job %s charged %d times, completed %v", i+1, ev.JobID, charged[ev.JobID], completed[ev.JobID])
			}
		case domain.HoldReleased:
			a.held -= ev.Amount
			settled[ev.JobID]++
		}
		if a.balance-a.held < 0 || a.held < 0 {
			m.t.Errorf("event %d %T: %s has balance %d, held %d", i+1, ev, u, a.balance, a.held)
		}
		if ledger[domain.UserAccount(u)] != a.balance-a.held || ledger[domain.UserHeldAccount(u)] != a.held {
			m.t.Errorf("event %d %T: %s's postings say available %d, held %d; its events say %d, %d", i+1, ev, u,
				ledger[domain.UserAccount(u)], ledger[domain.UserHeldAccount(u)], a.balance-a.held, a.held)
		}
	}
	var sum domain.Credits
	for _, c := range ledger {
		sum += c
	}
	if sum != 0 {
		m.t.Errorf("the log's postings sum to %d over all ledger accounts, not 0", sum)
	}
	for job, n := range held {
		if n != 1 || settled[job] != 1 {
			m.t.Errorf("job %s: %d holds, %d settlements", job, n, settled[job])
		}
	}
	for job := range settled {
		if held[job] == 0 {
			m.t.Errorf("job %s settled without a hold", job)
		}
	}
}

// checkAggregates compares, for every user, a replay by a fresh service
// (no cached snapshots), the live service's aggregate and the balances
// read model once it has caught up with the log.
func (m *model) checkAggregates() {
	fresh, err := newService(ctx, m.e.store, m.e.db, m.e.clock.Now)
	if err != nil {
		m.t.Fatal(err)
	}
	runner := m.startProjections()
	// A fresh runner replays the whole round; WaitFor gives up after
	// projections.WaitMax, so wait again while the overall bound allows.
	wctx, cancel := context.WithTimeout(ctx, catchUpMax)
	defer cancel()
	head := m.e.head(m.t)
	for err := runner.WaitFor(wctx, head); err != nil; err = runner.WaitFor(wctx, head) {
		if !errors.Is(err, projections.ErrWaitTimeout) {
			m.t.Fatalf("projections did not catch up: %v", err)
		}
	}
	runner.Stop()
	reader := projections.NewReader(m.e.db)
	for _, u := range m.users {
		live, err := m.e.svc.Account(ctx, u)
		if err != nil {
			m.t.Fatal(err)
		}
		replayed, err := fresh.Account(ctx, u)
		if err != nil {
			m.t.Fatal(err)
		}
		view, err := reader.Balance(ctx, u)
		if err != nil {
			m.t.Fatal(err)
		}
		want := [3]int64{int64(live.Balance()), int64(live.Held()), int64(live.Available())}
		if got := [3]int64{int64(replayed.Balance()), int64(replayed.Held()), int64(replayed.Available())}; got != want || replayed.Version() != live.Version() {
			m.t.Errorf("%s: replayed %v v%d, live %v v%d", u, got, replayed.Version(), want, live.Version())
		}
		if got := [3]int64{view.Balance, view.Held, view.Available}; got != want {
			m.t.Errorf("%s: read model %v, aggregate %v", u, got, want)
		}
		if live.Held() != 0 {
			m.t.Errorf("%s still holds %d after every job ended", u, live.Held())
		}
	}
}

// checkActivity requires every operation kind to have succeeded at least
// once per round (and once per 1,000 operations in longer rounds).
func (m *model) checkActivity(ops int) {
	floor := max(1, int64(ops/1000))
	for _, k := range minActivityKinds {
		if n := m.count(k); n < floor {
			m.t.Errorf("only %d successful %s operations of %d (want at least %d): the model exercised too little", n, k, ops, floor)
		}
	}
}
