package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/rendertrust/rendertrust/client"
	"github.com/rendertrust/rendertrust/eventstore"
	"github.com/rendertrust/rendertrust/eventstore/postgres"
	"github.com/rendertrust/rendertrust/internal/pgtest"
)

// The PostgreSQL restart test's sizes and bounds.
const (
	pgRestartLoaders      = 4                     // goroutines submitting all along
	pgRestartAcksBefore   = 20                    // acknowledged submissions before PostgreSQL stops
	pgRestartAnswersDown  = 20                    // answers seen while it is down
	pgRestartAcksAfter    = 20                    // acknowledged submissions after it is back
	pgRestartRequestBound = 15 * time.Second      // no request may take longer, even while the database is down
	pgRestartPhaseBound   = 90 * time.Second      // for each phase to see what it waits for
	pgRestartBackoff      = 10 * time.Millisecond // a loader's pause after a 503
)

// The phases of the restart test, by when a request started.
const (
	pgUp         = iota // before PostgreSQL stopped
	pgDown              // after it stopped, before the restart began
	pgRestarting        // while pg_ctl starts it
	pgBack              // after it is back
	pgPhases
)

// pgLoad submits jobs from pgRestartLoaders goroutines until stopped and
// sorts every answer by the phase its request started in.
type pgLoad struct {
	t        *testing.T
	r        *crashRun
	c        *client.Client
	stop     chan struct{}
	haltOnce sync.Once
	wg       sync.WaitGroup

	mu        sync.Mutex
	phase     int
	acks      [pgPhases]int
	downCodes map[string]int // the answers of requests started while it was down, by status and code
	downSeen  int
	changed   chan struct{} // signalled on each answer
}

// TestPostgresRestartUnderLoad runs the real server binary on a PostgreSQL
// cluster of the test's own, submits jobs from several clients, stops
// PostgreSQL (fast shutdown) under that load and starts it again on the
// same port: while it is down every request started then answers 503
// "unavailable" within a bound (never 500, never a hang) and /readyz says
// 503; once it is back the server takes submissions again by itself; then
// every acknowledged submission is in the log, every hold is settled (the
// reactor outlived the outage), nobody is charged twice and `rendertrust
// check` is clean.
func TestPostgresRestartUnderLoad(t *testing.T) {
	cluster := pgtest.NewCluster(t)
	dsn := cluster.URL()
	dir := t.TempDir()
	r := newCrashRun(t, crashBinary(t), dir, []string{"--data-dir", dir, "--database-url", dsn})
	r.openLog = func() (eventstore.Store, error) { return postgres.Open(context.Background(), dsn) }
	t.Cleanup(r.kill)
	r.start()
	c := r.client()
	ctx := context.Background()
	if _, err := c.Register(ctx, "restart@example.com", "Restart", "restart password"); err != nil {
		t.Fatalf("register: %v", err)
	}
	if _, err := c.Checkout(ctx, "credits_1000"); err != nil {
		t.Fatalf("checkout: %v", err)
	}

	l := &pgLoad{t: t, r: r, c: c, stop: make(chan struct{}), downCodes: map[string]int{}, changed: make(chan struct{}, 1)}
	l.run()
	t.Cleanup(l.halt)
	l.await("acknowledged submissions before the stop", func() bool { return l.acks[pgUp] >= pgRestartAcksBefore })

	began := time.Now()
	cluster.Stop()
	l.setPhase(pgDown)
	t.Logf("PostgreSQL stopped (fast) in %v after %d acknowledged submissions", time.Since(began).Round(time.Millisecond), l.acked(pgUp))
	l.await("answers while PostgreSQL is down", func() bool { return l.downSeen >= pgRestartAnswersDown })
	l.readyzDown()

	began = time.Now()
	l.setPhase(pgRestarting)
	cluster.Start()
	l.setPhase(pgBack)
	l.await("acknowledged submissions after the restart", func() bool { return l.acks[pgBack] >= pgRestartAcksAfter })
	t.Logf("PostgreSQL restarted; the server took %d submissions again within %v", l.acked(pgBack), time.Since(began).Round(time.Millisecond))
	l.halt()

	l.mu.Lock()
	t.Logf("answers to requests started while PostgreSQL was down: %v; acknowledged up/down/restarting/back: %v", l.downCodes, l.acks)
	if l.acks[pgDown] != 0 {
		t.Errorf("%d submissions acknowledged while PostgreSQL was down", l.acks[pgDown])
	}
	for k := range l.downCodes {
		if k != "503 unavailable" {
			t.Errorf("while PostgreSQL was down a request answered %s, want only 503 unavailable", k)
		}
	}
	l.mu.Unlock()
	r.checkServed(1, c)
	settled(t, r, c)
	r.kill() // the check opens the dev chain, which the server holds
	r.checkLog(1)
	r.checkInstallation(1)
}

// settled waits until no credits are held any more: every job ended and
// the reactor (which must have outlived the outage) captured or released
// each hold.
func settled(t *testing.T, r *crashRun, c *client.Client) {
	t.Helper()
	deadline := time.Now().Add(pgRestartPhaseBound)
	for {
		b, err := c.Balance(context.Background())
		if err == nil && b.Held == 0 {
			t.Logf("every hold settled: balance %d, available %d", b.Balance, b.Available)
			return
		}
		if time.Now().After(deadline) {
			r.dumpLog()
			t.Fatalf("holds not settled within %v: %+v %v", pgRestartPhaseBound, b, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// halt stops the loaders and waits for them; a second call does nothing.
func (l *pgLoad) halt() {
	l.haltOnce.Do(func() { close(l.stop) })
	l.wg.Wait()
}

func (l *pgLoad) run() {
	for range pgRestartLoaders {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				select {
				case <-l.stop:
					return
				case <-l.r.exited:
					l.t.Errorf("the server exited under load: %v", l.r.cmd.ProcessState)
					return
				default:
				}
				if l.t.Failed() {
					return
				}
				if l.submitOnce() == http.StatusServiceUnavailable {
					time.Sleep(pgRestartBackoff) // as a client backs off on 503
				}
			}
		}()
	}
}

// submitOnce submits one job (echo, or a charged cpu_benchmark) and files
// its answer under the phase its request started in; it returns the
// answer's status (0 without one).
func (l *pgLoad) submitOnce() int {
	l.mu.Lock()
	phase := l.phase
	l.mu.Unlock()
	req := client.SubmitRequest{JobType: "echo", Payload: map[string]any{"n": rand.IntN(1000)}}
	if rand.IntN(2) == 0 {
		req = client.SubmitRequest{JobType: "cpu_benchmark", Payload: map[string]any{"rounds": crashBenchmarkRounds}}
	}
	ctx, cancel := context.WithTimeout(context.Background(), pgRestartRequestBound)
	defer cancel()
	began := time.Now()
	s, err := l.c.SubmitJob(ctx, req)
	took := time.Since(began)
	l.mu.Lock()
	defer l.mu.Unlock()
	defer l.signal()
	var apiErr *client.APIError
	status := 0
	switch {
	case err == nil:
		status = http.StatusCreated
		l.r.ack(s.JobID)
		l.acks[phase]++
	case errors.As(err, &apiErr):
		status = apiErr.Status
		if apiErr.Status == http.StatusInternalServerError {
			l.t.Errorf("phase %d: a submission answered 500: %v", phase, err)
		}
		if phase == pgDown {
			l.downCodes[statusCode(apiErr)]++
			l.downSeen++
		}
	default:
		l.t.Errorf("phase %d: a submission failed after %v without an answer: %v", phase, took.Round(time.Millisecond), err)
	}
	if took > pgRestartRequestBound {
		l.t.Errorf("phase %d: a submission took %v", phase, took)
	}
	return status
}

// statusCode names an error answer by its status and stable code.
func statusCode(e *client.APIError) string { return fmt.Sprintf("%d %s", e.Status, e.Code) }

func (l *pgLoad) signal() {
	select {
	case l.changed <- struct{}{}:
	default:
	}
}

func (l *pgLoad) setPhase(p int) {
	l.mu.Lock()
	l.phase = p
	l.mu.Unlock()
}

// acked returns how many submissions were acknowledged in phase so far
// (the load's clients keep counting).
func (l *pgLoad) acked(phase int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.acks[phase]
}

// await waits until cond (called with l.mu held) holds, at most
// pgRestartPhaseBound.
func (l *pgLoad) await(what string, cond func() bool) {
	l.t.Helper()
	deadline := time.After(pgRestartPhaseBound)
	for {
		l.mu.Lock()
		ok := cond()
		l.mu.Unlock()
		if ok {
			return
		}
		if l.t.Failed() {
			l.r.dumpLog()
			l.t.FailNow()
		}
		select {
		case <-l.changed:
		case <-deadline:
			l.r.dumpLog()
			l.mu.Lock()
			l.t.Fatalf("%s: not seen within %v (acknowledged %v, answers while down %v)", what, pgRestartPhaseBound, l.acks, l.downCodes)
		}
	}
}

// readyzDown checks that /readyz answers 503 while the database is down.
func (l *pgLoad) readyzDown() {
	l.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), pgRestartRequestBound)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", l.r.base+"/readyz", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		l.t.Fatalf("readyz while PostgreSQL is down: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		l.t.Errorf("readyz while PostgreSQL is down: %d, want 503", resp.StatusCode)
	}
}
