package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeServer is a hand-written stand-in for the node endpoints of the API.
// Like the server, it hands out the jobs dispatched to the node until they
// are reported started or failed (or refused as moved on); it records
// every report, and answers a report with the statuses queued in faults
// (then success).
type fakeServer struct {
	mu      sync.Mutex
	enrolls int
	queue   []assignment
	reports []string          // "started j", "result j <sha>", "failed j <message>"
	results map[string][]byte // uploaded results
	faults  map[string][]int  // report kind+job ("result j") → statuses to answer first
	revoked bool              // answer 401 to everything
	wake    chan struct{}
}

// hangUp is a fault that closes the connection without an answer, as if
// the network failed after the request arrived.
const hangUp = -1

func startFakeServer(t *testing.T) (*fakeServer, string) {
	f := &fakeServer{results: map[string][]byte{}, faults: map[string][]int{}, wake: make(chan struct{}, 1)}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/nodes/enroll", f.enroll)
	mux.HandleFunc("POST /api/v1/nodes/heartbeat", f.authed(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{}`)) }))
	mux.HandleFunc("GET /api/v1/nodes/assignments", f.authed(f.assignments))
	mux.HandleFunc("POST /api/v1/nodes/jobs/{id}/started", f.authed(f.report("started")))
	mux.HandleFunc("PUT /api/v1/nodes/jobs/{id}/result", f.authed(f.report("result")))
	mux.HandleFunc("POST /api/v1/nodes/jobs/{id}/failed", f.authed(f.report("failed")))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return f, srv.URL
}

func fakeError(w http.ResponseWriter, status int) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"error":{"code":%q,"message":"fake"}}`, strings.ToLower(strings.ReplaceAll(http.StatusText(status), " ", "_")))
}

func (f *fakeServer) enroll(w http.ResponseWriter, r *http.Request) {
	var e enrollment
	json.NewDecoder(r.Body).Decode(&e)
	f.mu.Lock()
	defer f.mu.Unlock()
	if e.Token != "rte_good" || f.enrolls > 0 {
		fakeError(w, http.StatusUnauthorized)
		return
	}
	f.enrolls++
	w.WriteHeader(http.StatusCreated)
	json.NewEncoder(w).Encode(map[string]string{"node_id": "node-1", "credential": "rtn_secret"})
}

func (f *fakeServer) authed(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		revoked := f.revoked
		f.mu.Unlock()
		if revoked || r.Header.Get("Authorization") != "Bearer rtn_secret" {
			fakeError(w, http.StatusUnauthorized)
			return
		}
		h(w, r)
	}
}

// push queues assignments and wakes a waiting poll.
func (f *fakeServer) push(as ...assignment) {
	f.mu.Lock()
	f.queue = append(f.queue, as...)
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

func (f *fakeServer) assignments(w http.ResponseWriter, r *http.Request) {
	for {
		f.mu.Lock()
		jobs := slices.Clone(f.queue)
		f.mu.Unlock()
		if len(jobs) > 0 {
			json.NewEncoder(w).Encode(map[string]any{"jobs": jobs})
			return
		}
		select {
		case <-f.wake:
		case <-r.Context().Done():
			return
		case <-time.After(time.Second):
			w.Write([]byte(`{"jobs":[]}`))
			return
		}
	}
}

func (f *fakeServer) report(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		defer f.mu.Unlock()
		key := kind + " " + id
		if kind != "result" {
			f.queue = slices.DeleteFunc(f.queue, func(a assignment) bool { return a.JobID == id }) // no longer DISPATCHED
		}
		if q := f.faults[key]; len(q) > 0 {
			f.faults[key] = q[1:]
			if q[0] == hangUp {
				conn, _, _ := w.(http.Hijacker).Hijack()
				conn.Close()
				return
			}
			fakeError(w, q[0])
			return
		}
		entry := key
		switch kind {
		case "result":
			sum := sha256.Sum256(body)
			if got := hex.EncodeToString(sum[:]); got != r.Header.Get("X-Result-Sha256") {
				fakeError(w, http.StatusBadRequest)
				return
			}
			f.results[id] = body
			entry += " " + r.Header.Get("X-Result-Sha256")
		case "failed":
			var m struct{ Error string }
			json.Unmarshal(body, &m)
			entry += " " + m.Error
		}
		f.reports = append(f.reports, entry)
		w.Write([]byte(`{}`))
	}
}

// waitReports waits until n reports arrived and returns them.
func (f *fakeServer) waitReports(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		f.mu.Lock()
		got := append([]string(nil), f.reports...)
		f.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("reports %q, want %d", got, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// blocker is an executor that runs until released or its context ends.
type blocker struct {
	started chan string
	release chan struct{}
}

func newBlocker() *blocker {
	return &blocker{started: make(chan string, 8), release: make(chan struct{})}
}

func (b *blocker) Run(ctx context.Context, job Job, out io.Writer) error {
	b.started <- job.ID
	select {
	case <-b.release:
		_, err := io.WriteString(out, "done "+job.ID)
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// failing is an executor that always fails.
type failing struct{}

func (failing) Run(context.Context, Job, io.Writer) error { return errors.New("scene file is corrupt") }

// panicking is an executor with a bug.
type panicking struct{}

func (panicking) Run(context.Context, Job, io.Writer) error { panic("nil scene") }

type agentRun struct {
	agent *Agent
	stop  context.CancelFunc
	done  chan error
}

// startAgent runs an agent against url until the test ends or stop.
func startAgent(t *testing.T, url string, change func(*Config)) *agentRun {
	t.Helper()
	cfg := Config{
		Server: url, EnrollToken: "rte_good", StatePath: filepath.Join(t.TempDir(), "node.json"),
		Executors:         map[string]Executor{"echo": Echo{}, "render": failing{}, "generic": panicking{}},
		HeartbeatInterval: 50 * time.Millisecond, PollWait: time.Second, DrainTimeout: 5 * time.Second,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if change != nil {
		change(&cfg)
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &agentRun{agent: a, stop: cancel, done: make(chan error, 1)}
	go func() { r.done <- a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-r.done })
	return r
}

// wait stops the agent and returns Run's error.
func (r *agentRun) wait(t *testing.T) error {
	t.Helper()
	r.stop()
	select {
	case err := <-r.done:
		r.done <- err // for the cleanup
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("the agent did not stop")
		return nil
	}
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// TestAgentReports checks what the agent reports for each outcome of a job.
func TestAgentReports(t *testing.T) {
	for _, tc := range []struct {
		name   string
		job    assignment
		faults map[string][]int
		want   []string
	}{
		{"Result", assignment{JobID: "j1", JobType: "echo", Payload: `{"n":1}`},
			nil, []string{"started j1", "result j1 " + sha(`{"n":1}`)}},
		{"ExecutorFails", assignment{JobID: "j1", JobType: "render", PayloadRef: "s3://b/k"},
			nil, []string{"started j1", "failed j1 scene file is corrupt"}},
		{"ExecutorPanics", assignment{JobID: "j1", JobType: "generic", Payload: `{}`},
			nil, []string{"started j1", "failed j1 executor panicked: nil scene"}},
		{"TypeNotConfigured", assignment{JobID: "j1", JobType: "inference", PayloadRef: "s3://b/k"},
			nil, []string{"started j1", `failed j1 job type "inference" is not configured on this node`}},
		{"UploadRetriedThroughOutage", assignment{JobID: "j1", JobType: "echo", PayloadRef: "s3://b/k"},
			map[string][]int{"result j1": {503, 502, 429}}, []string{"started j1", "result j1 " + sha("s3://b/k")}},
		{"StartedAnswerLost", assignment{JobID: "j1", JobType: "echo", PayloadRef: "s3://b/k"},
			map[string][]int{"started j1": {hangUp, 409}}, []string{"result j1 " + sha("s3://b/k")}},
		{"ResultAnswerLost", assignment{JobID: "j1", JobType: "echo", PayloadRef: "s3://b/k"},
			map[string][]int{"result j1": {hangUp, 409}}, []string{"started j1"}},
		{"UploadRefusedReportsFailure", assignment{JobID: "j1", JobType: "echo", PayloadRef: "s3://b/k"},
			map[string][]int{"result j1": {413}}, []string{"started j1", "failed j1 result refused: rendertrust: 413 request_entity_too_large: fake"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, url := startFakeServer(t)
			f.faults = tc.faults
			r := startAgent(t, url, nil)
			f.push(tc.job)
			f.waitReports(t, len(tc.want))
			time.Sleep(100 * time.Millisecond) // time for a wrong extra report
			if err := r.wait(t); err != nil {
				t.Fatal(err)
			}
			got := f.waitReports(t, 0)
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("reports\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			if st := r.agent.state.get(); len(st.Jobs) != 0 {
				t.Fatalf("state still holds jobs %v", st.Jobs)
			}
		})
	}
}

// TestAgentDropsJobTheServerMovedOn: a job cancelled before it started
// (started answers 409) is not run.
func TestAgentDropsJobTheServerMovedOn(t *testing.T) {
	f, url := startFakeServer(t)
	f.faults = map[string][]int{"started j1": {409}}
	b := newBlocker()
	startAgent(t, url, func(c *Config) { c.Executors["echo"] = b })
	f.push(assignment{JobID: "j1", JobType: "echo", Payload: `{}`}, assignment{JobID: "j2", JobType: "echo", Payload: `{}`})
	if id := <-b.started; id != "j2" {
		t.Fatalf("ran %s, want only j2", id)
	}
	close(b.release)
	if got := f.waitReports(t, 2); got[0] != "started j2" || !strings.HasPrefix(got[1], "result j2") {
		t.Fatalf("reports %q", got)
	}
}

// TestAgentEnrollsOnce: 1. the first run enrolls and saves the credential
// owner-only; 2. a restart with the same state does not enroll again (the
// token is spent) and still works.
func TestAgentEnrollsOnce(t *testing.T) {
	f, url := startFakeServer(t)
	state := filepath.Join(t.TempDir(), "state", "node.json")
	r := startAgent(t, url, func(c *Config) { c.StatePath = state })
	f.push(assignment{JobID: "j1", JobType: "echo", Payload: `1`})
	f.waitReports(t, 2)
	if err := r.wait(t); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(state)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("step 1: state %v, %v; want mode 0600", fi, err)
	}
	r = startAgent(t, url, func(c *Config) { c.StatePath = state })
	f.push(assignment{JobID: "j2", JobType: "echo", Payload: `2`})
	f.waitReports(t, 4)
	if err := r.wait(t); err != nil || f.enrolls != 1 || r.agent.NodeID() != "node-1" {
		t.Fatalf("step 2: err %v, %d enrollments, node %q", err, f.enrolls, r.agent.NodeID())
	}
}

// TestAgentJobTimeout: a job that outlives JobTimeout is reported failed.
func TestAgentJobTimeout(t *testing.T) {
	f, url := startFakeServer(t)
	startAgent(t, url, func(c *Config) { c.Executors["echo"] = newBlocker(); c.JobTimeout = 100 * time.Millisecond })
	f.push(assignment{JobID: "j1", JobType: "echo"})
	if got := f.waitReports(t, 2); got[1] != "failed j1 job timed out after 100ms" {
		t.Fatalf("reports %q", got)
	}
}

func TestAgentNotEnrolled(t *testing.T) {
	_, url := startFakeServer(t)
	r := startAgent(t, url, func(c *Config) { c.EnrollToken = "" })
	if err := r.wait(t); !errors.Is(err, ErrNotEnrolled) {
		t.Fatalf("err %v, want ErrNotEnrolled", err)
	}
}

// TestAgentCredentialRejected: a revoked credential stops the agent.
func TestAgentCredentialRejected(t *testing.T) {
	f, url := startFakeServer(t)
	f.revoked = true
	r := startAgent(t, url, func(c *Config) { c.StatePath = "" })
	select {
	case err := <-r.done:
		r.done <- err
		if !errors.Is(err, ErrCredentialRejected) {
			t.Fatalf("err %v, want ErrCredentialRejected", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the agent kept running")
	}
}

// TestAgentReportsLeftoversAfterCrash: jobs in the state of a run that
// died are reported failed by the next run, before it takes work.
func TestAgentReportsLeftoversAfterCrash(t *testing.T) {
	f, url := startFakeServer(t)
	state := filepath.Join(t.TempDir(), "node.json")
	crashed := `{"server":"` + url + `","node_id":"node-1","credential":"rtn_secret","jobs":["j9"]}`
	if err := os.WriteFile(state, []byte(crashed), 0o600); err != nil {
		t.Fatal(err)
	}
	r := startAgent(t, url, func(c *Config) { c.StatePath = state; c.EnrollToken = "" })
	got := f.waitReports(t, 1)
	if !strings.HasPrefix(got[0], "failed j9 the node lost this attempt") {
		t.Fatalf("reports %q", got)
	}
	r.wait(t)
	if st := r.agent.state.get(); len(st.Jobs) != 0 || f.enrolls != 0 {
		t.Fatalf("state jobs %v, %d enrollments", st.Jobs, f.enrolls)
	}
}

// TestAgentGracefulShutdown: 1. a stop lets the running job finish and
// report its result; 2. past DrainTimeout the job is interrupted and
// reported failed, never completed.
func TestAgentGracefulShutdown(t *testing.T) {
	t.Run("Finishes", func(t *testing.T) {
		f, url := startFakeServer(t)
		b := newBlocker()
		r := startAgent(t, url, func(c *Config) { c.Executors["echo"] = b })
		f.push(assignment{JobID: "j1", JobType: "echo", Payload: `{}`})
		<-b.started
		r.stop()
		time.Sleep(100 * time.Millisecond)
		close(b.release)
		if err := r.wait(t); err != nil {
			t.Fatal(err)
		}
		if got := f.waitReports(t, 2); got[1] != "result j1 "+sha("done j1") {
			t.Fatalf("step 1: reports %q", got)
		}
	})
	t.Run("Interrupted", func(t *testing.T) {
		f, url := startFakeServer(t)
		b := newBlocker()
		r := startAgent(t, url, func(c *Config) { c.Executors["echo"] = b; c.DrainTimeout = 100 * time.Millisecond })
		f.push(assignment{JobID: "j1", JobType: "echo", Payload: `{}`})
		<-b.started
		if err := r.wait(t); err != nil {
			t.Fatal(err)
		}
		if got := f.waitReports(t, 2); !strings.HasPrefix(got[1], "failed j1 interrupted: the node is shutting down") {
			t.Fatalf("step 2: reports %q", got)
		}
	})
}

// TestAgentSlots: no more than Slots jobs run at once; the rest wait for
// a later poll.
func TestAgentSlots(t *testing.T) {
	f, url := startFakeServer(t)
	b := newBlocker()
	startAgent(t, url, func(c *Config) { c.Executors["echo"] = b; c.Slots = 2 })
	defer close(b.release)
	f.push(assignment{JobID: "j1", JobType: "echo"}, assignment{JobID: "j2", JobType: "echo"}, assignment{JobID: "j3", JobType: "echo"})
	<-b.started
	<-b.started
	select {
	case id := <-b.started:
		t.Fatalf("%s started with both slots busy", id)
	case <-time.After(200 * time.Millisecond):
	}
	f.mu.Lock()
	started := len(f.reports)
	f.mu.Unlock()
	if started != 2 {
		t.Fatalf("%d jobs reported started, want 2", started)
	}
}

func TestConfigInvalid(t *testing.T) {
	ok := Config{Server: "http://127.0.0.1:1", Executors: map[string]Executor{"echo": Echo{}}}
	for _, tc := range []struct {
		name   string
		change func(*Config)
	}{
		{"NoServer", func(c *Config) { c.Server = "" }},
		{"BadServer", func(c *Config) { c.Server = "127.0.0.1:8080" }},
		{"NoExecutors", func(c *Config) { c.Executors = nil }},
		{"TooManySlots", func(c *Config) { c.Slots = 257 }},
		{"PollTooLong", func(c *Config) { c.PollWait = time.Minute }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.change(&c)
			if _, err := New(c); err == nil {
				t.Fatal("New accepted it")
			}
		})
	}
}
