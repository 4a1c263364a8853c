package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rendertrust/rendertrust/client"
	"github.com/rendertrust/rendertrust/eventstore"
	"github.com/rendertrust/rendertrust/eventstore/postgres"
	"github.com/rendertrust/rendertrust/eventstore/sqlite"
	"github.com/rendertrust/rendertrust/internal/pgtest"
)

// The concurrent clients test's sizes and bounds.
const (
	manyClients        = 1000             // clients at once, each on its own connection
	manyCreators       = 8                // accounts they share (registering costs a bcrypt each)
	manyRequestBound   = 60 * time.Second // no single request may take longer
	manyRunBound       = 3 * time.Minute  // for every client to finish: beyond it, a deadlock
	manyFilesPerClient = 2                // descriptors per client connection: ours and, for a margin, one more
	manyFilesSpare     = 512              // descriptors beyond the clients' (the test binary's own, the stores)
)

// clientOps are what each client does, in order: the creator's requests.
var clientOps = []string{"submit", "list", "read", "balance"}

// manyResult is one request's outcome.
type manyResult struct {
	op     string
	status int // 0: no answer (a transport error)
	code   string
	took   time.Duration
	err    error
}

// TestManyClients starts the real server binary (serve --dev, its local
// node running the jobs) and sends it manyClients clients at once, each on
// its own connection, each submitting a job (a free echo or a charged
// cpu_benchmark), listing its jobs, reading the job and its balance, on
// SQLite and on PostgreSQL. Every request answers within a bound, and only
// with 2xx or, by design, 429 or 503; all clients finish within
// manyRunBound (no deadlock); the latency percentiles are logged. Then,
// the server stopped, every acknowledged submission is in the log, nobody
// is charged twice, and `rendertrust check` is clean.
func TestManyClients(t *testing.T) {
	ensureFiles(t, manyClients*manyFilesPerClient+manyFilesSpare)
	bin := crashBinary(t)
	t.Run("SQLite", func(t *testing.T) {
		dir := t.TempDir()
		r := newCrashRun(t, bin, dir, []string{"--data-dir", dir})
		path := filepath.Join(dir, "events.db")
		r.openLog = func() (eventstore.Store, error) { return sqlite.Open(context.Background(), path) }
		manyClientsOn(t, r)
	})
	t.Run("PostgreSQL", func(t *testing.T) {
		dsn := pgtest.NewDatabase(t)
		dir := t.TempDir()
		r := newCrashRun(t, bin, dir, []string{"--data-dir", dir, "--database-url", dsn})
		r.openLog = func() (eventstore.Store, error) { return postgres.Open(context.Background(), dsn) }
		manyClientsOn(t, r)
	})
}

func manyClientsOn(t *testing.T, r *crashRun) {
	t.Cleanup(r.kill)
	r.start()
	sessions := manySessions(t, r)
	began := time.Now()
	results := runClients(t, r, sessions)
	elapsed := time.Since(began)
	for _, res := range results {
		if res.op == "submit" && res.status == http.StatusCreated {
			r.ack(res.code) // a submission's code is its job id
		}
	}
	reportClients(t, results, elapsed)
	if len(r.acked) == 0 {
		t.Fatal("no submission was acknowledged")
	}
	r.kill()
	r.checkLog(0)
	r.checkInstallation(0)
}

// manySessions registers manyCreators creators with credits and returns
// their tokens.
func manySessions(t *testing.T, r *crashRun) []client.Tokens {
	var out []client.Tokens
	for i := range manyCreators {
		c := r.client()
		ctx := context.Background()
		if _, err := c.Register(ctx, fmt.Sprintf("many%d@example.com", i), "Many", "many password"); err != nil {
			t.Fatalf("register creator %d: %v", i, err)
		}
		if _, err := c.Checkout(ctx, "credits_1000"); err != nil {
			t.Fatalf("checkout of creator %d: %v", i, err)
		}
		out = append(out, c.Tokens())
	}
	return out
}

// runClients runs the clients at once and returns every request's result.
// It fails the test if they do not all finish within manyRunBound.
func runClients(t *testing.T, r *crashRun, sessions []client.Tokens) []manyResult {
	start := make(chan struct{})
	out := make(chan []manyResult, manyClients)
	var wg sync.WaitGroup
	for i := range manyClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			transport := &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}
			defer transport.CloseIdleConnections()
			c, err := client.New(r.base, client.WithHTTPClient(&http.Client{Transport: transport, Timeout: manyRequestBound}),
				client.WithTokens(sessions[i%len(sessions)]))
			if err != nil {
				t.Error(err)
				return
			}
			<-start
			out <- oneClient(c, i)
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	close(start)
	select {
	case <-done:
	case <-time.After(manyRunBound):
		r.dumpLog()
		t.Fatalf("%d of %d clients still waiting after %v: a deadlock", manyClients-len(out), manyClients, manyRunBound)
	}
	close(out)
	var all []manyResult
	for rs := range out {
		all = append(all, rs...)
	}
	return all
}

// oneClient is client i's requests; a submission's result carries the job
// id in code when acknowledged.
func oneClient(c *client.Client, i int) []manyResult {
	ctx := context.Background()
	var out []manyResult
	var job string
	for _, op := range clientOps {
		began := time.Now()
		var err error
		res := manyResult{op: op, status: http.StatusOK}
		switch op {
		case "submit":
			req := client.SubmitRequest{JobType: "echo", Payload: map[string]any{"client": i}}
			if i%2 == 1 { // charged (1 credit)
				req = client.SubmitRequest{JobType: "cpu_benchmark", Payload: map[string]any{"rounds": crashBenchmarkRounds}}
			}
			var s client.Submitted
			if s, err = c.SubmitJob(ctx, req); err == nil {
				job, res.status, res.code = s.JobID, http.StatusCreated, s.JobID
			}
		case "list":
			_, err = c.ListJobs(ctx)
		case "read":
			if job == "" {
				continue // its submission was refused
			}
			_, err = c.GetJob(ctx, job)
		case "balance":
			_, err = c.Balance(ctx)
		}
		res.took = time.Since(began)
		if err != nil {
			res.status, res.err = 0, err
			var apiErr *client.APIError
			if errors.As(err, &apiErr) {
				res.status, res.code = apiErr.Status, apiErr.Code
			}
		}
		out = append(out, res)
	}
	return out
}

// reportClients counts the answers by status, fails on any not allowed,
// and logs the latency percentiles.
func reportClients(t *testing.T, results []manyResult, elapsed time.Duration) {
	t.Helper()
	byStatus := map[string]int{}
	var took []time.Duration
	byOp := map[string][]time.Duration{}
	for _, res := range results {
		switch {
		case res.status >= 200 && res.status < 300:
			byStatus[fmt.Sprint(res.status)]++
		case res.status == http.StatusTooManyRequests || res.status == http.StatusServiceUnavailable:
			byStatus[fmt.Sprintf("%d %s", res.status, res.code)]++
		default:
			byStatus[fmt.Sprintf("%d %s", res.status, res.code)]++
			t.Errorf("%s answered %d %q (after %v): %v", res.op, res.status, res.code, res.took, res.err)
		}
		took = append(took, res.took)
		byOp[res.op] = append(byOp[res.op], res.took)
	}
	var lines []string
	for _, op := range clientOps {
		lines = append(lines, fmt.Sprintf("%s p50 %v p99 %v", op, percentile(byOp[op], 0.5), percentile(byOp[op], 0.99)))
	}
	t.Logf("%d clients, %d requests in %v (%.0f/s); answers %v; all requests p50 %v p99 %v max %v; %s",
		manyClients, len(results), elapsed.Round(time.Millisecond), float64(len(results))/elapsed.Seconds(), byStatus,
		percentile(took, 0.5), percentile(took, 0.99), percentile(took, 1), strings.Join(lines, "; "))
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	d = slices.Clone(d)
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[min(len(d)-1, int(p*float64(len(d))))].Round(time.Millisecond)
}

// ensureFiles raises this process's open-file limit to at least n (up to
// the hard limit), or fails: each client holds a connection.
func ensureFiles(t *testing.T, n uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatalf("getrlimit: %v", err)
	}
	if lim.Cur >= n {
		return
	}
	if lim.Max < n {
		t.Fatalf("the open-file limit is %d (hard %d); %d clients need %d", lim.Cur, lim.Max, manyClients, n)
	}
	lim.Cur = n
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatalf("setrlimit: %v", err)
	}
}
