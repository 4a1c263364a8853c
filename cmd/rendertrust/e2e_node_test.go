package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/rendertrust/rendertrust/client"
	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/eventstore"
	"github.com/rendertrust/rendertrust/projections"
)

// nodeProcessEnv marks a run of the test binary as a node agent process.
const nodeProcessEnv = "RENDERTRUST_TEST_NODE_PROCESS"

// Timing of the end-to-end test.
const (
	// e2eNodeLostAfter is the server's silence limit in the test: a killed
	// node's job is retried after it (1 min in production).
	e2eNodeLostAfter = 3 * time.Second
	// e2eWait bounds each wait for the system to reach a state.
	e2eWait = 30 * time.Second
)

// TestMain runs the package's tests, or — when TestNodeAgentsEndToEnd
// starts the test binary again with nodeProcessEnv set — a real
// `rendertrust node` process with the arguments after "--", one that the
// test can kill.
func TestMain(m *testing.M) {
	if os.Getenv(serveProcessEnv) == "1" {
		runServeProcess()
	}
	if os.Getenv(nodeProcessEnv) != "1" {
		os.Exit(m.Run())
	}
	args := os.Args[1:]
	for i, a := range args {
		if a == "--" {
			args = args[i+1:]
			break
		}
	}
	cmd := newNodeCommand()
	cmd.SetArgs(args)
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "rendertrust node:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// e2eServer is the real Main on a loopback port with a temporary data dir,
// under --dev (dev payments, the embedded chain).
type e2eServer struct {
	m    *Main
	base string
}

func startE2EServer(t *testing.T, configure func(*Config)) *e2eServer {
	t.Helper()
	m := NewMain()
	m.Config = Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(), Dev: true, NoLocalNode: true, LogLevel: "warn"}
	if configure != nil {
		configure(&m.Config)
	}
	if err := m.Run(context.Background()); err != nil {
		t.Fatalf("run the server: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	return &e2eServer{m: m, base: "http://" + m.Addr()}
}

// e2eNode is a node agent process.
type e2eNode struct {
	name, state, logPath string
	args                 []string
	cmd                  *exec.Cmd
	exited               chan error
}

// e2eNodeInputFlags are extra flags of the node processes: where their
// s3:// inputs are (see e2eInputBucket).
var e2eNodeInputFlags []string

// e2eInputBucket serves s3://bucket/scene.blend from an in-process S3
// protocol server (gofakes3) and points the node processes at it, with
// their own credentials in the environment they inherit.
func e2eInputBucket(t *testing.T) {
	t.Helper()
	fake := httptest.NewServer(gofakes3.New(s3mem.New()).Server())
	t.Cleanup(fake.Close)
	t.Setenv("AWS_ACCESS_KEY_ID", "node-key")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "node-secret")
	ctx := context.Background()
	awsCfg, err := config.LoadDefaultConfig(ctx, config.WithRegion("us-east-1"))
	if err != nil {
		t.Fatal(err)
	}
	c := s3.NewFromConfig(awsCfg, func(o *s3.Options) { o.BaseEndpoint = aws.String(fake.URL); o.UsePathStyle = true })
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("bucket")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bucket"), Key: aws.String("scene.blend"), Body: strings.NewReader("scene")}); err != nil {
		t.Fatal(err)
	}
	e2eNodeInputFlags = []string{"--s3-endpoint", fake.URL, "--s3-path-style", "--s3-region", "us-east-1"}
	t.Cleanup(func() { e2eNodeInputFlags = nil })
}

// startE2ENode starts `rendertrust node` as a process of its own.
func startE2ENode(t *testing.T, dir, name, server, token, renderCmd string) *e2eNode {
	t.Helper()
	n := &e2eNode{name: name, state: filepath.Join(dir, name+".json"), logPath: filepath.Join(dir, name+".log")}
	n.args = []string{"--server", server, "--enroll", token, "--state", n.state, "--name", name,
		"--render-cmd", renderCmd, "--benchmark-rounds", "20000", "--heartbeat-interval", "200ms",
		"--poll-wait", "1s", "--drain-timeout", "5s", "--work-dir", filepath.Join(dir, name+"-work"), "--log-level", "debug"}
	n.args = append(n.args, e2eNodeInputFlags...)
	n.launch(t)
	return n
}

// launch starts n and, when the test ends, kills it if it still runs and
// shows its log if the test failed.
func (n *e2eNode) launch(t *testing.T) {
	t.Helper()
	n.start(t)
	t.Cleanup(func() {
		if n.cmd.ProcessState == nil {
			n.cmd.Process.Kill()
			<-n.exited
		}
		if t.Failed() {
			b, _ := os.ReadFile(n.logPath)
			t.Logf("%s log (last 4 kB):\n%s", n.name, b[max(0, len(b)-4000):])
		}
	})
}

// skipIfShort skips a test that starts processes under -short, except
// under CI=true, where nothing may skip.
func skipIfShort(t *testing.T, why string) {
	t.Helper()
	if testing.Short() && os.Getenv("CI") != "true" {
		t.Skip(why)
	}
}

func (n *e2eNode) start(t *testing.T) {
	t.Helper()
	logf, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	n.cmd = exec.Command(os.Args[0], append([]string{"--"}, n.args...)...)
	n.cmd.Env = append(os.Environ(), nodeProcessEnv+"=1")
	n.cmd.Stdout, n.cmd.Stderr = logf, logf
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n.exited = make(chan error, 1)
	go func() { n.exited <- n.cmd.Wait() }()
}

// nodeID waits for the node to have enrolled and returns its id.
func (n *e2eNode) nodeID(t *testing.T) string {
	t.Helper()
	var id string
	e2eEventually(t, n.name+" enrolled", func() string {
		var s struct {
			NodeID string   `json:"node_id"`
			Jobs   []string `json:"jobs"`
		}
		b, err := os.ReadFile(n.state)
		if err != nil || json.Unmarshal(b, &s) != nil || s.NodeID == "" {
			return fmt.Sprintf("no node id in %s yet (%v)", n.state, err)
		}
		id = s.NodeID
		return ""
	})
	return id
}

// jobsInState returns the jobs the node's state file holds.
func (n *e2eNode) jobsInState(t *testing.T) []string {
	t.Helper()
	var s struct {
		Jobs []string `json:"jobs"`
	}
	b, err := os.ReadFile(n.state)
	if err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(b, &s)
	return s.Jobs
}

// e2eEventually retries check until it returns "" or e2eWait passes.
func e2eEventually(t *testing.T, what string, check func() string) {
	t.Helper()
	deadline := time.Now().Add(e2eWait)
	for {
		msg := check()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s", what, msg)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// e2eJobReaches waits until the job is in status and returns it.
func e2eJobReaches(t *testing.T, c *client.Client, id string, status client.Status) client.Job {
	t.Helper()
	var j client.Job
	e2eEventually(t, "job "+id+" "+string(status), func() string {
		var err error
		if j, err = c.GetJob(context.Background(), id); err != nil {
			return err.Error()
		}
		if j.Status != status {
			return fmt.Sprintf("status %s (node %s, attempts %d, last error %q)", j.Status, j.NodeID, j.Attempts, j.LastError)
		}
		return ""
	})
	return j
}

// completionEvent reads the log for the job's JobCompleted event and returns
// it with its ledger entry id.
func completionEvent(t *testing.T, store eventstore.Store, job string) (domain.JobCompleted, string) {
	t.Helper()
	ctx := context.Background()
	for from := uint64(1); ; {
		recs, err := store.ReadAll(ctx, from, eventstore.ReadEventsMax)
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range recs {
			e, err := domain.DecodeEvent(rec.Type, rec.Data)
			if c, ok := e.(domain.JobCompleted); err == nil && ok && string(c.JobID) == job {
				return c, rec.ID
			}
		}
		if len(recs) < eventstore.ReadEventsMax {
			t.Fatalf("no JobCompleted event for job %s", job)
		}
		from = recs[len(recs)-1].Position + 1
	}
}

// downloadAndCheck downloads a completed job's result with the SDK and
// checks the file's SHA-256 against the job's completion event.
func downloadAndCheck(t *testing.T, c *client.Client, store eventstore.Store, job, dir string) ([]byte, string) {
	t.Helper()
	d, err := c.DownloadResult(context.Background(), job, dir)
	if err != nil {
		t.Fatalf("download %s: %v", job, err)
	}
	b, err := os.ReadFile(d.Path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	ev, entry := completionEvent(t, store, job)
	if got := hex.EncodeToString(sum[:]); got != ev.ResultSHA256 || ev.ResultBytes != int64(len(b)) {
		t.Fatalf("job %s: downloaded sha256 %s (%d bytes), completion event records %s (%d bytes)", job, got, len(b), ev.ResultSHA256, ev.ResultBytes)
	}
	return b, entry
}

// TestNodeAgentsEndToEnd runs the real server, two real node agent
// processes and the SDK:
//
//  1. a creator registers and buys 100 credits;
//  2. node A enrolls; its render command is slow (sleep 30);
//  3. an echo and a cpu_benchmark job run on A and complete; their
//     downloaded results hash to the SHA-256 of their completion events;
//  4. a render job starts on A; node B (fast render) enrolls;
//  5. A is killed (SIGKILL) mid-job;
//  6. once A has been silent for NodeLostAfter, the server fails A's
//     attempt and B runs the job to completion; the download matches B's
//     completion event, and that event is anchored on the dev chain;
//  7. the render job is charged once: one hold, one deduction of 10, and
//     the balance is 100 − 1 − 10 with nothing held;
//  8. A restarts from its state and reports its lost attempt, which the
//     server refuses as moved on: nothing changes; SIGTERM stops A cleanly.
func TestNodeAgentsEndToEnd(t *testing.T) {
	skipIfShort(t, "starts the server and node processes")
	s := startE2EServer(t, func(c *Config) { c.NodeLostAfter = e2eNodeLostAfter; c.AnchorInterval = 300 * time.Millisecond })
	dir := t.TempDir()
	c := e2eCreatorWithCredits(t, s.base)
	e2eInputBucket(t)
	nodeA, idA := s.startNode(t, dir, "node-a", "sleep 30")
	e2eBuiltinJobsRun(t, c, s, dir, idA)

	render := e2eSubmit(t, c, client.SubmitRequest{JobType: client.JobRender, PayloadRef: "s3://bucket/scene.blend"})
	if j := e2eJobReaches(t, c, render, client.StatusRunning); j.NodeID != idA {
		t.Fatalf("step 4: render running on %s, want node A %s", j.NodeID, idA)
	}
	_, idB := s.startNode(t, dir, "node-b", "printf rendered-by-b:%s {ref}")
	e2eEventually(t, "step 4: node B heard from", func() string {
		if seen, _ := s.m.Commands.Registry().NodeStatus(domain.NodeID(idB)); seen.IsZero() {
			return "no heartbeat yet"
		}
		return ""
	})

	if err := nodeA.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("step 5: %v", err)
	}
	<-nodeA.exited

	j := e2eJobReaches(t, c, render, client.StatusCompleted)
	if j.NodeID != idB || j.Attempts != 2 {
		t.Fatalf("step 6: render completed on %s after %d attempts; want node B %s, 2 attempts", j.NodeID, j.Attempts, idB)
	}
	got, entry := downloadAndCheck(t, c, s.m.Store, render, dir)
	if string(got) != "rendered-by-b:s3://bucket/scene.blend" {
		t.Fatalf("step 6: render result %q", got)
	}
	e2eAnchored(t, c, entry, j.ResultSHA256)
	e2eChargedOnce(t, c, render, 100-1-10)
	e2eRestartReportsLost(t, c, nodeA, render, idB)
}

// e2eCreatorWithCredits registers a creator through the SDK and buys 100
// credits from the dev payment provider (step 1).
func e2eCreatorWithCredits(t *testing.T, base string) *client.Client {
	t.Helper()
	ctx := context.Background()
	c, err := client.New(base)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Register(ctx, "creator@example.com", "Creator", "creator password"); err != nil {
		t.Fatalf("step 1: %v", err)
	}
	if co, err := c.Checkout(ctx, "credits_100"); err != nil || !co.Dev {
		t.Fatalf("step 1: checkout %+v, %v", co, err)
	}
	return c
}

// startNode issues an enrollment token and starts a node process with it;
// it returns the node once it is healthy, with its id: a submission before
// the server has heard the node's first heartbeat is refused (503).
func (s *e2eServer) startNode(t *testing.T, dir, name, renderCmd string) (*e2eNode, string) {
	t.Helper()
	token, _, err := s.m.Identity.IssueEnrollmentToken(context.Background(), "admin:e2e")
	if err != nil {
		t.Fatal(err)
	}
	n := startE2ENode(t, dir, name, s.base, token, renderCmd)
	id := n.nodeID(t)
	s.waitHealthy(t, id)
	return n, id
}

// waitHealthy waits until GET admin/nodes shows the node healthy and the
// dispatcher accepts submissions of every type it runs.
func (s *e2eServer) waitHealthy(t *testing.T, id string) {
	t.Helper()
	e2eEventually(t, "node "+id+" healthy", func() string {
		now := time.Now()
		nodes, err := s.m.Reader.Nodes(context.Background(), s.m.Commands.Registry(), now)
		if err != nil {
			return err.Error()
		}
		i := slices.IndexFunc(nodes, func(n projections.Node) bool { return n.ID == id })
		if i < 0 || !nodes[i].Healthy {
			return "not listed healthy by admin/nodes yet"
		}
		for _, typ := range nodes[i].JobTypes {
			if !s.m.Commands.Registry().HealthyFor(typ, false, now) {
				return "the dispatcher has no healthy node for " + string(typ) + " yet"
			}
		}
		return ""
	})
}

// e2eBuiltinJobsRun runs an echo and a cpu_benchmark job, which only node
// can take, and checks their downloaded results (step 3).
func e2eBuiltinJobsRun(t *testing.T, c *client.Client, s *e2eServer, dir, node string) {
	t.Helper()
	echo := e2eSubmit(t, c, client.SubmitRequest{JobType: client.JobEcho, Payload: json.RawMessage(`{"hello":"nodes"}`)})
	bench := e2eSubmit(t, c, client.SubmitRequest{JobType: client.JobCPUBenchmark, Payload: json.RawMessage(`{"rounds":5000}`)})
	for _, id := range []string{echo, bench} {
		if j := e2eJobReaches(t, c, id, client.StatusCompleted); j.NodeID != node {
			t.Fatalf("step 3: job %s ran on %s, want %s", id, j.NodeID, node)
		}
	}
	if got, _ := downloadAndCheck(t, c, s.m.Store, echo, dir); string(got) != `{"hello":"nodes"}` {
		t.Fatalf("step 3: echo result %q", got)
	}
	if got, _ := downloadAndCheck(t, c, s.m.Store, bench, dir); !bytes.Contains(got, []byte(`"rounds":5000`)) {
		t.Fatalf("step 3: cpu_benchmark result %q", got)
	}
}

// e2eRestartReportsLost restarts the killed node from its state: it
// reports its lost attempt, the server refuses it as moved on, nothing
// changes, and SIGTERM stops the node cleanly (step 8).
func e2eRestartReportsLost(t *testing.T, c *client.Client, n *e2eNode, job, ranOn string) {
	t.Helper()
	if jobs := n.jobsInState(t); !slices.Contains(jobs, job) {
		t.Fatalf("step 8: the killed node's state holds %v, not its job %s", jobs, job)
	}
	n.start(t)
	e2eEventually(t, "step 8: the restarted node reported its lost attempt", func() string {
		if jobs := n.jobsInState(t); len(jobs) > 0 {
			return fmt.Sprintf("its state still holds %v", jobs)
		}
		return ""
	})
	if j := e2eJobReaches(t, c, job, client.StatusCompleted); j.Attempts != 2 || j.NodeID != ranOn {
		t.Fatalf("step 8: job now %+v", j)
	}
	e2eChargedOnce(t, c, job, 100-1-10)
	n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-n.exited:
		if err != nil {
			t.Fatalf("step 8: the node after SIGTERM: %v", err)
		}
	case <-time.After(e2eWait):
		t.Fatal("step 8: the node did not stop after SIGTERM")
	}
}

func e2eSubmit(t *testing.T, c *client.Client, r client.SubmitRequest) string {
	t.Helper()
	sub, err := c.SubmitJob(context.Background(), r)
	if err != nil {
		t.Fatalf("submit %s: %v", r.JobType, err)
	}
	return sub.JobID
}

// e2eAnchored waits until the completion entry's proof is served (it is
// anchored) and checks it names the result's hash and verifies on chain.
func e2eAnchored(t *testing.T, c *client.Client, entry, resultSHA256 string) {
	t.Helper()
	var p client.Proof
	e2eEventually(t, "step 6: completion event anchored", func() string {
		var err error
		if p, err = c.Proof(context.Background(), entry); err != nil {
			return err.Error()
		}
		return ""
	})
	if !bytes.Contains(p.Entry, []byte(resultSHA256)) {
		t.Fatalf("step 6: the anchored entry %s does not hold the result's sha256 %s", p.Entry, resultSHA256)
	}
	if v, err := c.Verify(context.Background(), entry); err != nil || !v.Verified {
		t.Fatalf("step 6: verify %+v, %v", v, err)
	}
}

// e2eChargedOnce waits for the settlement reactor and the read models to
// show the job settled, then checks it has one hold and one deduction of
// 10 (render's price), and the balance is want with nothing held.
func e2eChargedOnce(t *testing.T, c *client.Client, job string, want int64) {
	t.Helper()
	ctx := context.Background()
	var count map[string]int
	var deducted int64
	var b client.Balance
	var j client.Job
	e2eEventually(t, "step 7: render settled", func() string {
		count, deducted = map[string]int{}, 0
		for tx, err := range c.AllTransactions(ctx) {
			if err != nil {
				return err.Error()
			}
			if tx.JobID == job {
				count[tx.Type]++
				if tx.Type == "deduction" {
					deducted += tx.Amount
				}
			}
		}
		var err error
		if b, err = c.Balance(ctx); err != nil {
			return err.Error()
		}
		if j, err = c.GetJob(ctx, job); err != nil {
			return err.Error()
		}
		if count["deduction"] == 0 || j.Charged == 0 || b.Held != 0 {
			return fmt.Sprintf("transactions %v, job charged %d, balance %+v", count, j.Charged, b)
		}
		return ""
	})
	if count["hold"] != 1 || count["deduction"] != 1 || deducted != 10 || count["release"] != 0 || j.Charged != 10 {
		t.Fatalf("step 7: job %s transactions %v, deducted %d, charged %d; want one hold and one deduction of 10", job, count, deducted, j.Charged)
	}
	if b.Balance != want || b.Available != want {
		t.Fatalf("step 7: balance %+v; want %d, nothing held", b, want)
	}
}
