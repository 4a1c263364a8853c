package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rendertrust/rendertrust/audit/replay"
	"github.com/rendertrust/rendertrust/client"
	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/eventstore"
	"github.com/rendertrust/rendertrust/eventstore/postgres"
	"github.com/rendertrust/rendertrust/eventstore/sqlite"
	"github.com/rendertrust/rendertrust/internal/pgtest"
)

// The crash campaign's sizes. make crash sets CRASH_ITERATIONS=1000; make
// test runs crashDefaultIterations on each backend.
const (
	crashDefaultIterations = 20
	crashLoaders           = 4  // goroutines submitting while the server is killed
	crashAcksMax           = 12 // the kill comes after 1..crashAcksMax acknowledged submissions
	crashProgressEvery     = 50 // SIGKILLs between two progress lines
	// crashCheckEvery is how many SIGKILLs pass between two full
	// `rendertrust check` runs (and one runs after the last kill): a
	// full check reads the whole log, so one per kill made the campaign
	// quadratic. Every kill's own events are checked as they are read.
	crashCheckEvery      = 50
	crashReadyTimeout    = 60 * time.Second // for the server to answer /readyz after a start
	crashBinEnv          = "CRASH_BIN"      // the binary to kill (default: bin/rendertrust, built when missing)
	crashIterationsEnv   = "CRASH_ITERATIONS"
	crashKeepEnv         = "CRASH_KEEP_DIR" // keep each backend's data dir under it, to inspect after the run
	crashLogTail         = 8000             // bytes of the server's log a failure shows
	crashBenchmarkRounds = 1000             // a cpu_benchmark job the local node finishes at once
	// crashOpenMax is how many of the creator's jobs may wait or run when
	// the next load begins: the campaign waits (up to crashDrainTimeout)
	// until the local node has worked the rest off. Its one slot runs fewer
	// jobs in a life between two kills than the loaders submit, so without
	// this bound the backlog grew by ~5 jobs a kill, each job waited behind
	// thousands, and how many completed measured the machine's load, not
	// whether jobs still complete after crashes.
	crashOpenMax      = 2 * crashAcksMax
	crashDrainTimeout = 60 * time.Second
)

// crashRun is one backend's campaign: a data dir (and database) that the
// real server binary is started on, loaded and SIGKILLed again and again.
type crashRun struct {
	t       *testing.T
	bin     string
	args    []string                         // serve's and check's store flags
	openLog func() (eventstore.Store, error) // a fresh reader of the log (a store sees only what it knows was appended)
	cmd     *exec.Cmd
	exited  chan struct{}
	addr    string // the same at every start: the local node's enrollment names it
	base    string
	logPath string

	acked    []string // job ids the API acknowledged (201), all iterations
	served   int      // how many of acked a restarted server was seen serving
	ackedSet map[string]bool
	restarts []time.Duration
	checks   []time.Duration // how long each full check took

	// the log as folded so far
	read      uint64
	inLog     map[string]bool // submitted jobs
	completed map[domain.JobID]bool
	charged   map[domain.JobID]int
	jobs      map[domain.JobID]crashJob            // every job's status, and since which kill
	ledger    map[domain.AccountRef]domain.Credits // every ledger account's balance from the postings
}

// TestCrashCampaign kills the real server binary (serve --dev, with its
// local node running the jobs) with SIGKILL while clients submit jobs, on
// SQLite and on PostgreSQL, CRASH_ITERATIONS times each. After every kill,
// with the server down, the events it added are read: their positions
// follow on without a gap, each decodes and is in its stream, its postings
// balance, no account's available or held credits go below zero, every
// submission the API acknowledged is in the log, and no job is charged
// twice or without completing. Every crashCheckEvery kills and after the
// last, `rendertrust check` checks the whole installation (hashes, Merkle
// tree, audit log, read models, and the anchored roots against the dev
// chain, which must keep every anchor the log records as mined).
// After every restart the server serves every acknowledged job. It prints
// the iterations, the acknowledged submissions and the restart and check
// time percentiles.
func TestCrashCampaign(t *testing.T) {
	n := crashDefaultIterations
	if v, err := strconv.Atoi(os.Getenv(crashIterationsEnv)); err == nil && v > 0 {
		n = v
	}
	bin := crashBinary(t)
	t.Run("SQLite", func(t *testing.T) {
		dir := crashDataDir(t)
		r := newCrashRun(t, bin, dir, []string{"--data-dir", dir})
		path := filepath.Join(dir, "events.db")
		r.openLog = func() (eventstore.Store, error) { return sqlite.Open(context.Background(), path) }
		r.campaign(n)
	})
	t.Run("PostgreSQL", func(t *testing.T) {
		dsn := pgtest.NewDatabase(t)
		dir := crashDataDir(t)
		r := newCrashRun(t, bin, dir, []string{"--data-dir", dir, "--database-url", dsn})
		r.openLog = func() (eventstore.Store, error) { return postgres.Open(context.Background(), dsn) }
		r.campaign(n)
	})
}

// crashDataDir returns a new data dir: under CRASH_KEEP_DIR, kept after the
// test for a post-mortem (rendertrust jobs, check, replay), or else removed.
func crashDataDir(t *testing.T) string {
	keep := os.Getenv(crashKeepEnv)
	if keep == "" {
		return t.TempDir()
	}
	dir, err := os.MkdirTemp(keep, strings.ReplaceAll(t.Name(), "/", "-")+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("data dir kept in %s", dir)
	return dir
}

// crashBinary returns the server binary: CRASH_BIN, bin/rendertrust as make
// build leaves it, or a fresh build.
func crashBinary(t *testing.T) string {
	if b := os.Getenv(crashBinEnv); b != "" {
		return b
	}
	if b, err := filepath.Abs("../../bin/rendertrust"); err == nil {
		if _, err := os.Stat(b); err == nil {
			return b
		}
	}
	b := filepath.Join(t.TempDir(), "rendertrust")
	out, err := exec.Command("go", "build", "-o", b, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("build the server: %v\n%s", err, out)
	}
	return b
}

func newCrashRun(t *testing.T, bin, dir string, args []string) *crashRun {
	return &crashRun{t: t, bin: bin, args: args, logPath: filepath.Join(dir, "server.log"),
		ackedSet: map[string]bool{}, inLog: map[string]bool{}, completed: map[domain.JobID]bool{}, charged: map[domain.JobID]int{},
		jobs:   map[domain.JobID]crashJob{},
		ledger: map[domain.AccountRef]domain.Credits{}}
}

func (r *crashRun) campaign(iterations int) {
	t := r.t
	t.Cleanup(r.kill)
	r.start()
	c := r.client()
	if _, err := c.Register(context.Background(), "crash@example.com", "Crash", "crash password"); err != nil {
		t.Fatalf("register: %v", err)
	}
	begun := time.Now()
	for i := range iterations {
		if i > 0 {
			r.start()
			c = r.client()
			if _, err := c.Login(context.Background(), "crash@example.com", "crash password"); err != nil {
				t.Fatalf("iteration %d: login: %v", i, err)
			}
			r.checkServed(i, c)
		}
		if _, err := c.Checkout(context.Background(), "credits_1000"); err != nil {
			t.Fatalf("iteration %d: checkout: %v", i, err)
		}
		if !r.awaitOpenAtMost(i, c, crashOpenMax) {
			return
		}
		r.loadAndKill(c, 1+rand.IntN(crashAcksMax))
		r.checkLog(i)
		if (i+1)%crashCheckEvery == 0 || i == iterations-1 {
			r.checkInstallation(i)
		}
		if t.Failed() {
			return
		}
		if (i+1)%crashProgressEvery == 0 { // a long campaign shows how far it got
			t.Logf("%d of %d SIGKILLs checked, %d acknowledged submissions all in the log, %d jobs charged once, %d events, %s; jobs %s",
				i+1, iterations, len(r.acked), len(r.charged), r.read, time.Since(begun).Round(time.Second), r.jobSummary(i))
		}
	}
	r.start()
	c = r.client()
	if _, err := c.Login(context.Background(), "crash@example.com", "crash password"); err != nil {
		t.Fatalf("login after the last restart: %v", err)
	}
	r.checkServed(iterations, c)
	if !r.awaitOpenAtMost(iterations, c, 0) { // every job ends: none is left behind by a kill
		return
	}
	r.kill()
	r.checkLog(iterations) // the last jobs' ends and charges
	r.report(iterations)
}

// start starts the server on a free port and waits until it is ready.
func (r *crashRun) start() {
	t := r.t
	if r.addr == "" {
		r.addr = freeAddr(t)
	}
	addr := r.addr
	logf, err := os.OpenFile(r.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	began := time.Now()
	r.cmd = exec.Command(r.bin, append([]string{"serve", "--dev", "--addr", addr, "--log-level", "info"}, r.args...)...)
	r.cmd.Env = crashServerEnv()
	r.cmd.Stdout, r.cmd.Stderr = logf, logf
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.exited = make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) { cmd.Wait(); close(exited) }(r.cmd, r.exited)
	r.base = "http://" + addr
	deadline := time.Now().Add(crashReadyTimeout)
	for {
		resp, err := http.Get(r.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-r.exited:
			r.dumpLog()
			t.Fatalf("the server exited while starting: %v", r.cmd.ProcessState)
		default:
		}
		if time.Now().After(deadline) {
			r.dumpLog()
			t.Fatalf("the server was not ready after %v", crashReadyTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.restarts = append(r.restarts, time.Since(began))
}

// kill SIGKILLs the server and waits until it is gone.
func (r *crashRun) kill() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	r.cmd.Process.Signal(syscall.SIGKILL)
	<-r.exited
}

// dumpLog shows the server's log without its request lines, the last
// crashLogTail bytes of it.
func (r *crashRun) dumpLog() {
	b, _ := os.ReadFile(r.logPath)
	var keep []byte
	for _, line := range bytes.SplitAfter(b, []byte("\n")) {
		if !bytes.Contains(line, []byte("msg=http ")) {
			keep = append(keep, line...)
		}
	}
	if len(keep) > crashLogTail {
		keep = keep[len(keep)-crashLogTail:]
	}
	r.t.Logf("server log (tail, without requests):\n%s", keep)
}

func (r *crashRun) client() *client.Client {
	c, err := client.New(r.base)
	if err != nil {
		r.t.Fatal(err)
	}
	return c
}

// loadAndKill submits jobs from crashLoaders goroutines and SIGKILLs the
// server once acks submissions were acknowledged, while the others are in
// flight. Only 201 answers count as acknowledged.
func (r *crashRun) loadAndKill(c *client.Client, acks int) {
	var mu sync.Mutex
	got := 0
	var lastErr error
	enough := make(chan struct{})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range crashLoaders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				req := client.SubmitRequest{JobType: "echo", Payload: map[string]any{"n": rand.IntN(1000)}}
				if rand.IntN(2) == 0 { // charged (1 credit), run by the local node
					req = client.SubmitRequest{JobType: "cpu_benchmark", Payload: map[string]any{"rounds": crashBenchmarkRounds}}
				}
				s, err := c.SubmitJob(context.Background(), req)
				if err != nil {
					var apiErr *client.APIError
					if errors.As(err, &apiErr) && apiErr.Status == http.StatusInternalServerError {
						r.t.Errorf("submission answered 500: %v", err)
					}
					mu.Lock()
					lastErr = err
					mu.Unlock()
					continue // refused, rate limited or cut by the kill: not acknowledged
				}
				mu.Lock()
				r.ack(s.JobID)
				if got++; got == acks {
					close(enough)
				}
				mu.Unlock()
			}
		}()
	}
	select {
	case <-enough:
	case <-time.After(crashReadyTimeout):
		mu.Lock()
		r.t.Errorf("only %d of %d submissions acknowledged in %v; the last refusal: %v", got, acks, crashReadyTimeout, lastErr)
		mu.Unlock()
		r.dumpLog()
	}
	r.kill()
	close(stop)
	wg.Wait()
}

func (r *crashRun) ack(id string) {
	if !r.ackedSet[id] {
		r.ackedSet[id] = true
		r.acked = append(r.acked, id)
	}
}

// awaitOpenAtMost waits until at most n of the creator's jobs are QUEUED,
// DISPATCHED or RUNNING: the local node goes on completing jobs after a
// restart, whatever the kills left behind. It fails the campaign, naming
// the jobs left open, if it waits crashDrainTimeout in vain.
func (r *crashRun) awaitOpenAtMost(iteration int, c *client.Client, n int) bool {
	deadline := time.Now().Add(crashDrainTimeout)
	for {
		open, err := c.ListJobs(context.Background(), client.StatusQueued, client.StatusDispatched, client.StatusRunning)
		if err == nil && len(open) <= n {
			return true
		}
		if time.Now().After(deadline) {
			r.t.Errorf("iteration %d: jobs stopped completing: after %v, %d jobs are open (want at most %d): %s (list error: %v)",
				iteration, crashDrainTimeout, len(open), n, describeJobs(open), err)
			r.dumpLog()
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// describeJobs names the oldest few jobs with their status, node and attempts.
func describeJobs(jobs []client.Job) string {
	const shown = 5
	var b strings.Builder
	for i := len(jobs) - 1; i >= 0 && len(jobs)-i <= shown; i-- { // newest first: the oldest are last
		j := jobs[i]
		fmt.Fprintf(&b, "%s %s on %q, attempt %d, updated %s; ", j.ID, j.Status, j.NodeID, j.Attempts, j.UpdatedAt.Format(time.RFC3339Nano))
	}
	return b.String()
}

// checkLog reads the log from where it stopped, while the server is down:
// every acknowledged job is submitted in it, and no job is charged twice or
// before it completed.
func (r *crashRun) checkLog(iteration int) {
	ctx := context.Background()
	store, err := r.openLog()
	if err != nil {
		r.t.Fatalf("iteration %d: open the log: %v", iteration, err)
	}
	defer store.Close()
	for {
		recs, err := store.ReadAll(ctx, r.read+1, eventstore.ReadEventsMax)
		if err != nil {
			r.t.Fatalf("iteration %d: read the log: %v", iteration, err)
		}
		if len(recs) == 0 {
			break
		}
		for _, rec := range recs {
			r.fold(iteration, rec)
		}
	}
	for _, id := range r.acked {
		if !r.inLog[id] {
			r.t.Errorf("iteration %d: acknowledged job %s is not in the log (%d events read)", iteration, id, r.read)
		}
	}
}

// checkServed waits until the restarted server serves every job
// acknowledged before the last kill (its read models catch up after the
// start).
func (r *crashRun) checkServed(iteration int, c *client.Client) {
	deadline := time.Now().Add(crashReadyTimeout)
	for _, id := range r.acked[r.served:] {
		for {
			_, err := c.GetJob(context.Background(), id)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				r.t.Fatalf("iteration %d: the restarted server does not serve acknowledged job %s: %v", iteration, id, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	r.served = len(r.acked)
}

// fold checks one event the last kill left and adds it to what the
// campaign knows: its position follows the last one read, it decodes and is
// in its stream, its postings balance and leave no account's available or
// held credits below zero, and a charge comes once, after the completion.
func (r *crashRun) fold(iteration int, rec eventstore.RecordedEvent) {
	if rec.Position != r.read+1 {
		r.t.Errorf("iteration %d: position %d follows %d", iteration, rec.Position, r.read)
	}
	r.read = rec.Position
	ev, err := domain.DecodeEvent(rec.Type, rec.Data)
	if err != nil {
		r.t.Errorf("iteration %d: decode %s at %d: %v", iteration, rec.Type, rec.Position, err)
		return
	}
	if want, ok := replay.ExpectedStream(ev); ok && want != rec.Stream {
		r.t.Errorf("iteration %d: a %s at %d is in stream %s, not %s", iteration, rec.Type, rec.Position, rec.Stream, want)
	}
	r.post(iteration, rec, ev)
	r.track(iteration, ev)
	switch ev := ev.(type) {
	case domain.JobSubmitted:
		r.inLog[string(ev.JobID)] = true
	case domain.JobCompleted:
		r.completed[ev.JobID] = true
	case domain.CreditsDeducted:
		r.charged[ev.JobID]++
		if r.charged[ev.JobID] > 1 || !r.completed[ev.JobID] {
			r.t.Errorf("iteration %d: job %s charged %d times, completed %v (position %d)", iteration, ev.JobID, r.charged[ev.JobID], r.completed[ev.JobID], rec.Position)
		}
	}
}

// crashJob is what the campaign knows of a job: its status, and the kill
// during which it got there.
type crashJob struct {
	status domain.Status
	since  int
}

// track follows a job's status through its events.
func (r *crashRun) track(iteration int, ev domain.Event) {
	id, ok := domain.JobIDOf(ev)
	if !ok {
		return
	}
	st := r.jobs[id].status
	switch ev := ev.(type) {
	case domain.JobSubmitted:
		st = domain.StatusQueued
	case domain.JobDispatched:
		st = domain.StatusDispatched
	case domain.JobStarted:
		st = domain.StatusRunning
	case domain.JobCompleted:
		st = domain.StatusCompleted
	case domain.JobCancelled:
		st = domain.StatusCancelled
	case domain.JobFailed:
		st = retryOr(ev.WillRetry)
	case domain.JobTimedOut:
		st = retryOr(ev.WillRetry)
	}
	if st != r.jobs[id].status {
		r.jobs[id] = crashJob{st, iteration}
	}
}

// retryOr returns the status a failed or timed-out attempt leads to.
func retryOr(retry bool) domain.Status {
	if retry {
		return domain.StatusQueued
	}
	return domain.StatusFailed
}

// jobSummary counts the jobs by status, and says for how many kills the
// oldest DISPATCHED or RUNNING job has been so.
func (r *crashRun) jobSummary(iteration int) string {
	n := map[domain.Status]int{}
	oldest := -1
	for _, j := range r.jobs {
		n[j.status]++
		if j.status == domain.StatusDispatched || j.status == domain.StatusRunning {
			oldest = max(oldest, iteration-j.since)
		}
	}
	if oldest < 0 {
		return fmt.Sprintf("%v, none on a node", n)
	}
	return fmt.Sprintf("%v, on a node for %d kills at most", n, oldest)
}

// post books a money event's postings: they must balance, and the user's
// available and held accounts must not go below zero.
func (r *crashRun) post(iteration int, rec eventstore.RecordedEvent, ev domain.Event) {
	u, ok := domain.AccountOf(ev)
	if !ok {
		return
	}
	ps := domain.PostingsOf(ev)
	if err := domain.Balanced(ps); err != nil {
		r.t.Errorf("iteration %d: %s at %d: postings do not balance: %v", iteration, rec.Type, rec.Position, err)
	}
	for _, p := range ps {
		r.ledger[p.Credit] += p.Amount
		r.ledger[p.Debit] -= p.Amount
	}
	if avail, held := r.ledger[domain.UserAccount(u)], r.ledger[domain.UserHeldAccount(u)]; avail < 0 || held < 0 {
		r.t.Errorf("iteration %d: after the %s at %d, %s has %d available, %d held", iteration, rec.Type, rec.Position, u, avail, held)
	}
}

// checkInstallation runs `rendertrust check` on the whole installation
// while the server is down (with --dev, the dev chain is the server's).
func (r *crashRun) checkInstallation(iteration int) {
	began := time.Now()
	args := []string{"check", "--dev", "--log-level", "info"}
	out, err := exec.Command(r.bin, append(args, r.args...)...).CombinedOutput()
	if err != nil {
		r.t.Errorf("iteration %d: rendertrust check: %v\n%s", iteration, err, out)
	}
	r.checks = append(r.checks, time.Since(began))
}

func (r *crashRun) report(iterations int) {
	failed := 0
	for _, j := range r.jobs {
		if j.status == domain.StatusFailed {
			failed++
		}
	}
	line := fmt.Sprintf("crash campaign (%s): %d SIGKILLs, %d acknowledged submissions all in the log, %d jobs charged once, %d failed after their retries, %d events; restart to ready %s; %d full checks %s",
		r.t.Name(), iterations, len(r.acked), len(r.charged), failed, r.read, percentiles(r.restarts), len(r.checks), percentiles(r.checks))
	r.t.Log(line)
	fmt.Println(line)
}

// percentiles describes durations by their p50, p90, p99 and maximum.
func percentiles(ds []time.Duration) string {
	d := slices.Clone(ds)
	slices.Sort(d)
	pct := func(p float64) time.Duration { return d[min(len(d)-1, int(p*float64(len(d))))].Round(time.Millisecond) }
	return fmt.Sprintf("p50 %v p90 %v p99 %v max %v", pct(0.5), pct(0.9), pct(0.99), pct(1))
}

// crashServerEnv is the test's environment without the variables the server
// reads (DATABASE_URL from make test's PostgreSQL would otherwise turn the
// SQLite campaign into a second PostgreSQL one): only flags configure it.
func crashServerEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(slices.Collect(maps.Values(envNames)), name) {
			env = append(env, kv)
		}
	}
	return env
}

// freeAddr returns a loopback address nobody listens on right now.
func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
