package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rendertrust/rendertrust/client"
	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/eventstore"
	"github.com/rendertrust/rendertrust/eventstore/postgres"
	rthttp "github.com/rendertrust/rendertrust/http"
	"github.com/rendertrust/rendertrust/internal/pgtest"
)

// Bounds of the multi-process tests.
const (
	// rolesTakeoverMax is how soon a standby must lead after the leader's
	// SIGKILL (issue 16).
	rolesTakeoverMax = 5 * time.Second
	// rolesReadyTimeout bounds a server's start, on a busy machine.
	rolesReadyTimeout = 60 * time.Second
	// rolesNodeSlots is the node's slots: few, so over-assignment would show.
	rolesNodeSlots = 1
	// rolesJobs is how many jobs each journey submits.
	rolesJobs = 4
	// rolesPollWait is the node's long poll, the longest the server allows;
	// rolesWakeMax bounds a job's run from submission to completion, well
	// under it: only a woken poll makes it.
	rolesPollWait = 30 * time.Second
	rolesWakeMax  = 15 * time.Second
)

// rolesWorkers is what /readyz says a process leading every worker role
// leads; rolesStandbyWorkers, one leading all but the anchor.
const (
	rolesWorkers        = "projections,reactor,dispatcher,anchor"
	rolesStandbyWorkers = "projections,reactor,dispatcher"
)

// rolesProcess is one `rendertrust serve` process of the built binary.
type rolesProcess struct {
	name, dir, base, logPath string
	cmd                      *exec.Cmd
	exited                   chan struct{}
}

// startRolesProcess starts `serve --dev` on dsn with its own data dir (and
// dev chain), the signing key and result directory of every process on dsn
// (rolesShared), and the extra args (a flag given again there wins), and
// waits until it answers /readyz. Its
// log's tail is shown when the test fails, or always with ROLES_TEST_LOGS
// set (to see the leadership changes).
func startRolesProcess(t *testing.T, bin, dsn, name string, args ...string) *rolesProcess {
	t.Helper()
	p := &rolesProcess{name: name, dir: t.TempDir()}
	p.logPath = filepath.Join(p.dir, "server.log")
	addr := freeAddr(t)
	logf, err := os.Create(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	all := append([]string{"serve", "--dev", "--no-local-node", "--addr", addr, "--data-dir", p.dir,
		"--database-url", dsn, "--node-lost-after", "3s", "--anchor-interval", "300ms", "--log-level", "info"}, append(rolesShared(t, dsn), args...)...)
	p.cmd = exec.Command(bin, all...)
	p.cmd.Env = crashServerEnv()
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.exited = make(chan struct{})
	go func() { p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() || os.Getenv("ROLES_TEST_LOGS") != "" {
			b, _ := os.ReadFile(p.logPath)
			t.Logf("%s log (last 6 kB):\n%s", name, b[max(0, len(b)-6000):])
		}
	})
	p.base = "http://" + addr
	p.await(t, "ready", func(ready string) bool { return ready != "" }, rolesReadyTimeout)
	return p
}

// readyz returns the body of a 200 /readyz answer, "" otherwise.
func (p *rolesProcess) readyz() string {
	resp, err := http.Get(p.base + "/readyz")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return ""
	}
	return string(b)
}

// leading returns the worker roles /readyz says the process leads.
func (p *rolesProcess) leading() string {
	for line := range strings.Lines(p.readyz()) {
		if l, ok := strings.CutPrefix(strings.TrimSpace(line), "leading:"); ok {
			return strings.TrimSpace(l)
		}
	}
	return ""
}

// await polls /readyz until ok holds of its body, for at most limit, and
// returns how long that took.
func (p *rolesProcess) await(t *testing.T, what string, ok func(readyz string) bool, limit time.Duration) time.Duration {
	t.Helper()
	began := time.Now()
	for !ok(p.readyz()) {
		select {
		case <-p.exited:
			t.Fatalf("%s exited while waiting for it to be %s: %v", p.name, what, p.cmd.ProcessState)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Since(began) > limit {
			t.Fatalf("%s not %s after %v: /readyz %q", p.name, what, limit, p.readyz())
		}
	}
	return time.Since(began)
}

// awaitLeading waits until the process leads exactly roles.
func (p *rolesProcess) awaitLeading(t *testing.T, roles string, limit time.Duration) time.Duration {
	t.Helper()
	return p.await(t, "leading "+roles, func(string) bool { return p.leading() == roles }, limit)
}

// kill SIGKILLs the process and waits until it is gone.
func (p *rolesProcess) kill() {
	if p.cmd.ProcessState == nil {
		p.cmd.Process.Signal(syscall.SIGKILL)
	}
	<-p.exited
}

// rolesEnrollmentToken issues a node enrollment token in the installation
// on dsn, as an operator's tool would.
func rolesEnrollmentToken(t *testing.T, dsn string) string {
	t.Helper()
	m := NewMain()
	m.Config = Config{DataDir: t.TempDir(), DatabaseURL: dsn, LogLevel: "warn"}
	if err := m.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	token, _, err := m.Identity.IssueEnrollmentToken(context.Background(), "admin:e2e")
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// startRolesNode starts a node agent process talking to server, with
// rolesNodeSlots slots, and waits until it enrolled.
func startRolesNode(t *testing.T, server, token string) string {
	t.Helper()
	dir := t.TempDir()
	n := &e2eNode{name: "node", state: filepath.Join(dir, "node.json"), logPath: filepath.Join(dir, "node.log")}
	n.args = []string{"--server", server, "--enroll", token, "--state", n.state, "--name", "node",
		"--slots", fmt.Sprint(rolesNodeSlots), "--benchmark-rounds", "20000", "--heartbeat-interval", "200ms",
		"--poll-wait", rolesPollWait.String(), "--drain-timeout", "5s", "--work-dir", filepath.Join(dir, "work"), "--log-level", "debug"}
	n.launch(t)
	return n.nodeID(t)
}

// rolesSubmit submits a cpu_benchmark job through c once a healthy node is
// known (a refusal for want of one writes nothing). The answer is QUEUED, or
// DISPATCHED when the leader's dispatch reached the api process's registry
// before it answered (or before a retry of the key): that the api process
// itself reserved nothing is checked in the log, by rolesNoOverAssignment.
func rolesSubmit(t *testing.T, c *client.Client, key string) string {
	t.Helper()
	var sub client.Submitted
	e2eEventually(t, "submission accepted", func() string {
		var err error
		sub, err = c.SubmitJob(context.Background(), client.SubmitRequest{JobType: client.JobCPUBenchmark, IdempotencyKey: key})
		if err != nil {
			return err.Error()
		}
		return ""
	})
	if sub.Status != client.StatusQueued && sub.Status != client.StatusDispatched {
		t.Fatalf("an api-only process answered %s; want QUEUED or DISPATCHED", sub.Status)
	}
	return sub.JobID
}

// rolesCheck runs `rendertrust check` on the installation (every server
// stopped; the dev chain is the anchor leader's, in dir).
func rolesCheck(t *testing.T, bin, dsn, dir string) {
	t.Helper()
	out, err := exec.Command(bin, "check", "--dev", "--data-dir", dir, "--database-url", dsn, "--log-level", "warn").CombinedOutput()
	if err != nil {
		t.Fatalf("rendertrust check: %v\n%s", err, out)
	}
}

// rolesNoOverAssignment folds the log and fails if any node ever held more
// jobs (DISPATCHED or RUNNING) than slots, or if a dispatch was written by
// anyone but the dispatcher's pass: a submission that reserves a slot for
// itself writes the dispatch with the submitter as its actor, and the roles
// tests submit only through api-only processes, which must never do that.
func rolesNoOverAssignment(t *testing.T, dsn string, slots int) {
	t.Helper()
	store, err := postgres.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	holder := map[domain.JobID]domain.NodeID{}
	load := map[domain.NodeID]int{}
	for from := uint64(1); ; {
		recs, err := store.ReadAll(context.Background(), from, eventstore.ReadEventsMax)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			return
		}
		for _, rec := range recs {
			rolesFoldLoad(t, rec, holder, load, slots)
			from = rec.Position + 1
		}
	}
}

// rolesDispatcherActor is the actor of the events a dispatch pass writes.
const rolesDispatcherActor = "system:dispatcher"

func rolesFoldLoad(t *testing.T, rec eventstore.RecordedEvent, holder map[domain.JobID]domain.NodeID, load map[domain.NodeID]int, slots int) {
	e, err := domain.DecodeEvent(rec.Type, rec.Data)
	if err != nil {
		return
	}
	switch e := e.(type) {
	case domain.JobDispatched:
		if rec.Metadata.Actor != rolesDispatcherActor {
			t.Errorf("position %d: job %s dispatched by %q; only the dispatcher's leader (%s) may dispatch", rec.Position, e.JobID, rec.Metadata.Actor, rolesDispatcherActor)
		}
		holder[e.JobID] = e.NodeID
		if load[e.NodeID]++; load[e.NodeID] > slots {
			t.Errorf("position %d: node %s holds %d jobs, has %d slots", rec.Position, e.NodeID, load[e.NodeID], slots)
		}
	case domain.JobFailed, domain.JobTimedOut, domain.JobCompleted, domain.JobCancelled:
		id, _ := domain.JobIDOf(e)
		if n, ok := holder[id]; ok {
			load[n]--
			delete(holder, id)
		}
	}
}

// rolesJourney submits rolesJobs cpu_benchmark jobs through c and returns
// jobs with theirs. The first one goes alone and must complete within
// rolesWakeMax: the node is then in a long poll of rolesPollWait on the api
// process, which must be woken when the worker process assigns it the job.
func rolesJourney(t *testing.T, c *client.Client, keyPrefix string, jobs []string) []string {
	t.Helper()
	began := time.Now()
	first := rolesSubmit(t, c, keyPrefix+"-0")
	e2eJobReaches(t, c, first, client.StatusCompleted)
	if took := time.Since(began); took > rolesWakeMax {
		t.Fatalf("job %s took %v to complete; the node's long poll (%v) was not woken", first, took, rolesPollWait)
	} else {
		t.Logf("a job submitted to the api process completed on the node %v later", took.Round(time.Millisecond))
	}
	jobs = append(jobs, first)
	for i := 1; i < rolesJobs; i++ {
		jobs = append(jobs, rolesSubmit(t, c, fmt.Sprintf("%s-%d", keyPrefix, i)))
	}
	return jobs
}

// rolesAllCharged waits until every job completed on node and checks each
// was charged once (one hold, one deduction of 1 credit) and the balance.
func rolesAllCharged(t *testing.T, c *client.Client, node string, jobs []string) {
	t.Helper()
	for _, id := range jobs {
		if j := e2eJobReaches(t, c, id, client.StatusCompleted); j.NodeID != node {
			t.Fatalf("job %s completed on %s, want %s", id, j.NodeID, node)
		}
	}
	want := int64(100 - len(jobs))
	e2eEventually(t, "every job charged once", func() string {
		counts := map[string]map[string]int{}
		for tx, err := range c.AllTransactions(context.Background()) {
			if err != nil {
				return err.Error()
			}
			if counts[tx.JobID] == nil {
				counts[tx.JobID] = map[string]int{}
			}
			counts[tx.JobID][tx.Type]++
		}
		for _, id := range jobs {
			if counts[id]["hold"] != 1 || counts[id]["deduction"] != 1 {
				return fmt.Sprintf("job %s: transactions %v, want one hold and one deduction", id, counts[id])
			}
		}
		b, err := c.Balance(context.Background())
		if err != nil {
			return err.Error()
		}
		if b.Available != want || b.Balance != want {
			return fmt.Sprintf("balance %+v, want %d available", b, want)
		}
		return ""
	})
}

// TestRolesAPIProcessAndWorkers runs three `serve` processes of the built
// binary on one PostgreSQL database, signing tokens with one key:
//
//  1. a worker process with every role leads every worker role; two
//     api-only processes, A and B, lead none (/readyz says so);
//  2. a creator registers and buys 100 credits through A; a node enrolls
//     and heartbeats (and long-polls) through A only;
//  3. the creator submits jobs through A: each is answered QUEUED (A
//     reserves no slot); the worker, which hears the node's heartbeats
//     through PostgreSQL, assigns them; the node's long poll on A is woken;
//  4. B, which the node never talks to, accepts a submission (it heard the
//     node through PostgreSQL); then rolesBurst jobs are submitted at once
//     through A and B, each answered QUEUED;
//  5. every job runs on the node and is charged once; the node never held
//     more jobs than its slots; `rendertrust check` is clean.
func TestRolesAPIProcessAndWorkers(t *testing.T) {
	skipIfShort(t, "starts server and node processes")
	dsn := pgtest.NewDatabase(t)
	bin := crashBinary(t)
	key := rolesKeyFile(t)
	worker := startRolesProcess(t, bin, dsn, "worker", "--jwt-key-file", key)
	worker.awaitLeading(t, rolesWorkers, rolesReadyTimeout)
	apiA := startRolesProcess(t, bin, dsn, "api-a", "--roles", "api", "--jwt-key-file", key)
	apiB := startRolesProcess(t, bin, dsn, "api-b", "--roles", "api", "--jwt-key-file", key)
	for _, api := range []*rolesProcess{apiA, apiB} {
		if got := api.readyz(); !strings.Contains(got, "roles: api\n") || api.leading() != "" {
			t.Fatalf("step 1: api-only /readyz %q", got)
		}
	}

	a := e2eCreatorWithCredits(t, apiA.base)
	node := startRolesNode(t, apiA.base, rolesEnrollmentToken(t, dsn))
	jobs := rolesJourney(t, a, "a", nil)

	b, err := client.New(apiB.base, client.WithTokens(a.Tokens()))
	if err != nil {
		t.Fatal(err)
	}
	jobs = append(jobs, rolesSubmit(t, b, "b-0"))
	jobs = append(jobs, rolesBurstSubmit(t, []*client.Client{a, b})...)
	rolesAllCharged(t, a, node, jobs)

	apiA.kill()
	apiB.kill()
	worker.kill()
	rolesNoOverAssignment(t, dsn, rolesNodeSlots)
	rolesCheck(t, bin, dsn, worker.dir)
}

// rolesBurst is how many jobs rolesBurstSubmit submits at once.
const rolesBurst = 8

// rolesBurstSubmit submits rolesBurst cpu_benchmark jobs at once, in turn
// through each client, and checks each is answered QUEUED with no node.
func rolesBurstSubmit(t *testing.T, clients []*client.Client) []string {
	t.Helper()
	ids := make([]string, rolesBurst)
	errs := make([]error, rolesBurst)
	var wg sync.WaitGroup
	for i := range rolesBurst {
		wg.Go(func() {
			sub, err := clients[i%len(clients)].SubmitJob(context.Background(),
				client.SubmitRequest{JobType: client.JobCPUBenchmark, IdempotencyKey: fmt.Sprintf("burst-%d", i)})
			switch {
			case err != nil:
				errs[i] = err
			case sub.Status != client.StatusQueued || sub.NodeID != "":
				errs[i] = fmt.Errorf("answered %s on node %q; want queued, no node", sub.Status, sub.NodeID)
			}
			ids[i] = sub.JobID
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("step 4: burst submission %d: %v", i, err)
		}
	}
	return ids
}

// rolesKeyFile writes the Ed25519 key every process signs tokens with.
func rolesKeyFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "jwt.key")
	if _, err := rthttp.LoadOrCreateKey(path, true); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestRolesTakeoverAfterSIGKILL runs a worker process with every role, a
// standby with the projections, reactor and dispatcher roles, and an
// api-only process, on one PostgreSQL database:
//
//  1. the worker leads every worker role, the standby none; the standby,
//     without the api role, serves health checks but not the API;
//  2. a creator and a node use the api process; a first round of jobs
//     completes and is charged once;
//  3. a second round is submitted and the worker is SIGKILLed at once,
//     with those jobs in flight;
//  4. the standby leads projections, reactor and dispatcher within
//     rolesTakeoverMax of the kill (the figure is logged);
//  5. every job completes and is charged exactly once; the node never held
//     more jobs than its slots; `rendertrust check` is clean.
func TestRolesTakeoverAfterSIGKILL(t *testing.T) {
	skipIfShort(t, "starts server and node processes")
	r := startRolesCluster(t)
	r.jobs = rolesJourney(t, r.c, "second", r.jobs)
	killed := time.Now()
	r.worker.kill()
	r.standby.awaitLeading(t, rolesStandbyWorkers, rolesReadyTimeout)
	took := time.Since(killed)
	t.Logf("takeover: the standby led %s %v after the leader's SIGKILL", rolesStandbyWorkers, took.Round(time.Millisecond))
	if took > rolesTakeoverMax {
		t.Errorf("step 4: takeover took %v, want at most %v", took, rolesTakeoverMax)
	}
	r.finish(t)
}

// TestRolesTakeoverAfterConnectionDrop is TestRolesTakeoverAfterSIGKILL
// with the worker alive but its lock connections cut (the server ends
// them, as a network failure would):
//
//	1.–2. as TestRolesTakeoverAfterSIGKILL;
//	3. a second round is submitted and the worker's lock connections are
//	   terminated, with those jobs in flight;
//	4. the standby leads projections, reactor and dispatcher within
//	   rolesTakeoverMax; the deposed worker stops acting for them and leads
//	   the anchor role again (no other process runs it);
//	5. as TestRolesTakeoverAfterSIGKILL: every job charged exactly once, no
//	   node over its slots, `check` clean.
func TestRolesTakeoverAfterConnectionDrop(t *testing.T) {
	skipIfShort(t, "starts server and node processes")
	r := startRolesCluster(t)
	r.jobs = rolesJourney(t, r.c, "second", r.jobs)
	dropped := time.Now()
	if n := terminateLeaders(t, r.dsn); n != 4 {
		t.Fatalf("step 3: terminated %d lock connections, want the worker's 4", n)
	}
	r.standby.awaitLeading(t, rolesStandbyWorkers, rolesReadyTimeout)
	took := time.Since(dropped)
	t.Logf("takeover: the standby led %s %v after the leader's lock connections dropped", rolesStandbyWorkers, took.Round(time.Millisecond))
	if took > rolesTakeoverMax {
		t.Errorf("step 4: takeover took %v, want at most %v", took, rolesTakeoverMax)
	}
	r.worker.awaitLeading(t, "anchor", rolesReadyTimeout)
	r.finish(t)
}

// rolesCluster is a worker process with every role, a standby without the
// api role, an api-only process, a creator and a node using the api one.
type rolesCluster struct {
	dsn, bin             string
	worker, standby, api *rolesProcess
	c                    *client.Client
	node                 string
	jobs                 []string
}

// startRolesCluster starts the processes, checks who leads (the worker,
// every worker role; the standby, none and it serves no API) and runs a
// first round of jobs (steps 1 and 2).
func startRolesCluster(t *testing.T) *rolesCluster {
	t.Helper()
	r := &rolesCluster{dsn: pgtest.NewDatabase(t), bin: crashBinary(t)}
	r.worker = startRolesProcess(t, r.bin, r.dsn, "worker")
	r.worker.awaitLeading(t, rolesWorkers, rolesReadyTimeout)
	r.standby = startRolesProcess(t, r.bin, r.dsn, "standby", "--roles", "projections,reactor,dispatcher")
	r.api = startRolesProcess(t, r.bin, r.dsn, "api", "--roles", "api")
	if got := r.standby.leading(); got != "" {
		t.Fatalf("step 1: the standby leads %q while the worker lives", got)
	}
	if resp, err := http.Get(r.standby.base + "/api/v1/ledger/chain"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("step 1: a process without the api role answered the API: %v, %v", resp, err)
	} else {
		resp.Body.Close()
	}
	r.c = e2eCreatorWithCredits(t, r.api.base)
	r.node = startRolesNode(t, r.api.base, rolesEnrollmentToken(t, r.dsn))
	r.jobs = rolesJourney(t, r.c, "first", nil)
	rolesAllCharged(t, r.c, r.node, r.jobs)
	// One job through the leader's own API, the node idle: the leader is
	// behind a fence that a submission's append does not run, so the job
	// must be assigned by a fenced pass (finish: every dispatch by the
	// pass's actor), not reserved by its submission.
	viaLeader, err := client.New(r.worker.base, client.WithTokens(r.c.Tokens()))
	if err != nil {
		t.Fatal(err)
	}
	r.jobs = append(r.jobs, rolesSubmit(t, viaLeader, "via-leader"))
	rolesAllCharged(t, r.c, r.node, r.jobs)
	return r
}

// finish checks step 5: every job completed and charged once, no node
// over its slots, and (every process stopped) `check` clean.
func (r *rolesCluster) finish(t *testing.T) {
	t.Helper()
	rolesAllCharged(t, r.c, r.node, r.jobs)
	r.api.kill()
	r.standby.kill()
	r.worker.kill()
	rolesNoOverAssignment(t, r.dsn, rolesNodeSlots)
	rolesCheck(t, r.bin, r.dsn, r.worker.dir)
}

// terminateLeaders ends the sessions that hold a role's lock and returns
// how many it ended.
func terminateLeaders(t *testing.T, dsn string) int {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	err = db.QueryRow(`SELECT count(pg_terminate_backend(l.pid)) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = 'rendertrust-leader' AND a.datname = current_database()`).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// rolesKillsEnv sizes TestRolesFailoverCampaign (rolesKillsDefault kills
// in make test).
const (
	rolesKillsEnv     = "ROLES_KILLS"
	rolesKillsDefault = 3
)

// TestRolesFailoverCampaign SIGKILLs the leader of the projections,
// reactor and dispatcher roles again and again while a creator and a node
// use an api-only process:
//
//  1. a worker process leads; an api-only process serves the creator and
//     the node;
//  2. each round starts a standby, submits a job and SIGKILLs the leader;
//     the standby must lead within rolesTakeoverMax (every figure logged,
//     with their percentiles at the end);
//  3. every job completes, charged once; no node over its slots; `check`
//     clean.
func TestRolesFailoverCampaign(t *testing.T) {
	skipIfShort(t, "starts server and node processes")
	kills := rolesKillsDefault
	if v := os.Getenv(rolesKillsEnv); v != "" {
		if _, err := fmt.Sscan(v, &kills); err != nil {
			t.Fatalf("%s=%q: %v", rolesKillsEnv, v, err)
		}
	}
	dsn, bin := pgtest.NewDatabase(t), crashBinary(t)
	workers := []string{"--roles", "projections,reactor,dispatcher"}
	leader := startRolesProcess(t, bin, dsn, "worker-0", workers...)
	leader.awaitLeading(t, rolesStandbyWorkers, rolesReadyTimeout)
	api := startRolesProcess(t, bin, dsn, "api", "--roles", "api")
	c := e2eCreatorWithCredits(t, api.base)
	node := startRolesNode(t, api.base, rolesEnrollmentToken(t, dsn))

	var jobs []string
	var took []time.Duration
	for i := range kills {
		standby := startRolesProcess(t, bin, dsn, fmt.Sprintf("worker-%d", i+1), workers...)
		jobs = append(jobs, rolesSubmit(t, c, fmt.Sprintf("kill-%d", i)))
		killed := time.Now()
		leader.kill()
		standby.awaitLeading(t, rolesStandbyWorkers, rolesReadyTimeout)
		took = append(took, time.Since(killed))
		t.Logf("kill %d: the standby led %v after the SIGKILL", i+1, took[i].Round(time.Millisecond))
		if took[i] > rolesTakeoverMax {
			t.Errorf("kill %d: takeover took %v, want at most %v", i+1, took[i], rolesTakeoverMax)
		}
		leader = standby
	}
	t.Logf("takeover over %d SIGKILLs: %s", kills, percentiles(took))
	rolesAllCharged(t, c, node, jobs)
	api.kill()
	leader.kill()
	rolesNoOverAssignment(t, dsn, rolesNodeSlots)
	rolesCheck(t, bin, dsn, api.dir)
}

// TestRolesValidation: `serve --roles` refuses a bad list before opening
// anything, with the stable code's message, and fewer than all roles
// without PostgreSQL.
func TestRolesValidation(t *testing.T) {
	bin := crashBinary(t)
	cases := []struct {
		name string
		args []string
		says string
	}{
		{"Empty", []string{"--roles", ""}, "--roles is empty"},
		{"EmptyEntry", []string{"--roles", "api,,anchor"}, "has an empty entry"},
		{"Unknown", []string{"--roles", "api,web"}, `unknown role "web"`},
		{"Duplicate", []string{"--roles", "api,anchor,api"}, `"api" is named twice`},
		{"ErrRolesNeedPostgres", []string{"--roles", "api"}, "--roles other than all needs PostgreSQL"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"serve", "--data-dir", t.TempDir(), "--addr", "127.0.0.1:0"}, tc.args...)
			cmd := exec.Command(bin, args...)
			cmd.Env = crashServerEnv()
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(string(out), tc.says) {
				t.Fatalf("serve %v: %v, output %q; want exit 1 saying %q", tc.args, err, out, tc.says)
			}
		})
	}
}
