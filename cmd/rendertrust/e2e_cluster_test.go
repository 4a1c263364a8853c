package main

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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
	"github.com/rendertrust/rendertrust/eventstore/postgres"
	"github.com/rendertrust/rendertrust/internal/pgtest"
)

// The systemd units the cluster test starts, and the environment file they
// read (deploy/README.md).
const (
	clusterAPIUnit    = "../../deploy/systemd/rendertrust-api@.service"
	clusterWorkerUnit = "../../deploy/systemd/rendertrust-worker.service"
	clusterEnvFile    = "/etc/rendertrust/rendertrust.env"
)

// Sizes of the cluster test.
const (
	// clusterAPIProcesses is how many API processes the proxy spreads over.
	clusterAPIProcesses = 3
	// clusterBurst is how many renders are submitted at once on
	// clusterBurstCredits: exactly clusterBurstCredits/renderPrice fit.
	clusterBurst        = 50
	clusterBurstCredits = 100
	// clusterInFlight is how many jobs are in flight when the worker
	// leader is killed.
	clusterInFlight = 4
	// clusterGateWait bounds how long a gated job waits for its gate (a
	// job of a failed test must not run forever).
	clusterGateWait = 60 * time.Second
)

// The prices of the creator guide's cost table (generic: DESIGN.md).
var clusterPrices = map[client.JobType]int64{
	client.JobRender: 10, client.JobInference: 5, client.JobGeneric: 1, client.JobCPUBenchmark: 1, client.JobEcho: 0,
}

// clusterUnit is the part of a unit file the test checks and runs.
type clusterUnit struct {
	path     string
	env      string            // EnvironmentFile
	stateDir string            // StateDirectory
	flags    map[string]string // ExecStart's flags after `serve`, by name
	order    []string          // the flags' names in ExecStart's order
}

// readClusterUnit reads a unit's [Service] settings and splits its ExecStart
// line into `<binary> serve --flag value …`; anything else fails the test.
func readClusterUnit(t *testing.T, path string) clusterUnit {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := clusterUnit{path: path, flags: map[string]string{}}
	var exec string
	for sc := bufio.NewScanner(f); sc.Scan(); {
		key, value, _ := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		switch key {
		case "ExecStart":
			exec = value
		case "EnvironmentFile":
			u.env = value
		case "StateDirectory":
			u.stateDir = value
		}
	}
	args := strings.Fields(exec)
	if len(args) < 2 || filepath.Base(args[0]) != "rendertrust" || args[1] != "serve" || strings.ContainsAny(exec, `"'\`) {
		t.Fatalf("%s: ExecStart %q; want one unquoted line `…/rendertrust serve --flag value …`", path, exec)
	}
	for i := 2; i < len(args); i += 2 {
		name, ok := strings.CutPrefix(args[i], "--")
		if !ok || i+1 == len(args) || strings.HasPrefix(args[i+1], "--") {
			t.Fatalf("%s: ExecStart argument %q is not `--flag value`", path, args[i])
		}
		u.flags[name] = args[i+1]
		u.order = append(u.order, name)
	}
	return u
}

// args returns the unit's flags as the test passes them: roles as given
// (the unit's when ""), and without --addr and --data-dir, which the test
// replaces with a loopback address and a temp dir. A flag value with a
// specifier or variable left (% or $) fails the test: it would reach the
// binary unexpanded.
func (u clusterUnit) args(t *testing.T, roles string) []string {
	t.Helper()
	var out []string
	for _, name := range u.order {
		value := u.flags[name]
		switch name {
		case "addr", "data-dir":
			continue
		case "roles":
			value = cmp.Or(roles, value)
		}
		if strings.ContainsAny(value, "%$") {
			t.Fatalf("%s: --%s %s: the test cannot expand it", u.path, name, value)
		}
		out = append(out, "--"+name, value)
	}
	return out
}

// checkClusterUnits checks the layout the deploy README describes: the API
// template serves only the api role on the port of its instance, the
// worker runs every worker role, both keep their data in their own state
// directory (the rest of the file system is read-only to them) and read
// the shared environment file.
func checkClusterUnits(t *testing.T, api, worker clusterUnit) {
	t.Helper()
	for _, u := range []clusterUnit{api, worker} {
		if u.env != clusterEnvFile || u.stateDir == "" || u.flags["data-dir"] != "%S/"+u.stateDir {
			t.Errorf("%s: EnvironmentFile %q, StateDirectory %q, --data-dir %q; want %s and --data-dir %%S/<StateDirectory>",
				u.path, u.env, u.stateDir, u.flags["data-dir"], clusterEnvFile)
		}
	}
	if api.flags["roles"] != "api" || !strings.HasSuffix(api.flags["addr"], ":%i") {
		t.Errorf("%s: --roles %q --addr %q; want the api role alone, on the instance's port (:%%i)", api.path, api.flags["roles"], api.flags["addr"])
	}
	if worker.flags["roles"] != rolesWorkers {
		t.Errorf("%s: --roles %q, want %s", worker.path, worker.flags["roles"], rolesWorkers)
	}
}

// clusterResultBucket serves the results bucket every process shares (a
// node may upload through one API process and the creator ask another for
// the link) from an in-process S3 protocol server, and returns the flags
// of the environment file's result store settings. The processes sign
// with the AWS_* credentials e2eInputBucket put in the environment
// (gofakes3 checks no signature).
func clusterResultBucket(t *testing.T) []string {
	t.Helper()
	fake := httptest.NewServer(gofakes3.New(s3mem.New()).Server())
	t.Cleanup(fake.Close)
	ctx := context.Background()
	awsCfg, err := config.LoadDefaultConfig(ctx, config.WithRegion("us-east-1"))
	if err != nil {
		t.Fatal(err)
	}
	c := s3.NewFromConfig(awsCfg, func(o *s3.Options) { o.BaseEndpoint = aws.String(fake.URL); o.UsePathStyle = true })
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("results")}); err != nil {
		t.Fatal(err)
	}
	return []string{"--s3-bucket", "results", "--s3-endpoint", fake.URL, "--s3-region", "us-east-1", "--s3-path-style"}
}

// clusterProxy is a round-robin reverse proxy over the API processes: each
// request goes to the next one.
type clusterProxy struct {
	base   string
	served []atomic.Int64 // requests sent to each API process
}

func startClusterProxy(t *testing.T, apis []*rolesProcess) *clusterProxy {
	t.Helper()
	targets := make([]*url.URL, len(apis))
	for i, p := range apis {
		u, err := url.Parse(p.base)
		if err != nil {
			t.Fatal(err)
		}
		targets[i] = u
	}
	p := &clusterProxy{served: make([]atomic.Int64, len(apis))}
	var next atomic.Uint64
	srv := httptest.NewServer(&httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		i := (next.Add(1) - 1) % uint64(len(targets))
		p.served[i].Add(1)
		r.SetURL(targets[i])
		r.SetXForwarded()
	}})
	t.Cleanup(srv.Close)
	p.base = srv.URL
	return p
}

// checkSpread fails unless every API process served requests.
func (p *clusterProxy) checkSpread(t *testing.T) {
	t.Helper()
	var counts []int64
	for i := range p.served {
		counts = append(counts, p.served[i].Load())
	}
	for _, n := range counts {
		if n == 0 {
			t.Fatalf("requests per API process %v: the proxy did not spread them", counts)
		}
	}
	t.Logf("requests per API process through the proxy: %v", counts)
}

// clusterGateCmd is the node's generic command: it waits until the file
// named after the job exists in gates (the test opens a job's gate), at
// most clusterGateWait, then prints the job's inline payload. A job whose
// gate stays shut fails.
func clusterGateCmd(gates string) string {
	tries := int(clusterGateWait / (50 * time.Millisecond))
	return fmt.Sprintf(`sh -c 'i=0; until [ -e "$0" ] || [ $i -ge %d ]; do sleep 0.05; i=$((i+1)); done; [ -e "$0" ] && cat "$1"' %s/{job} {input}`,
		tries, gates)
}

// clusterNode is the node agent process, talking only to the proxy.
type clusterNode struct {
	*e2eNode
	id, gates string
}

// startClusterNode starts a node agent with rolesNodeSlots slots that runs
// every job type: render and inference print their payload URI, generic
// jobs wait for their gate. Its long poll is rolesPollWait, the longest
// the server allows.
func startClusterNode(t *testing.T, server, token string) *clusterNode {
	t.Helper()
	dir := t.TempDir()
	gates := filepath.Join(dir, "gates")
	if err := os.Mkdir(gates, 0o700); err != nil {
		t.Fatal(err)
	}
	n := &e2eNode{name: "node", state: filepath.Join(dir, "node.json"), logPath: filepath.Join(dir, "node.log")}
	n.args = []string{"--server", server, "--enroll", token, "--state", n.state, "--name", "node",
		"--slots", fmt.Sprint(rolesNodeSlots), "--render-cmd", "printf rendered:%s {ref}", "--inference-cmd", "printf inferred:%s {ref}",
		"--generic-cmd", clusterGateCmd(gates), "--benchmark-rounds", "20000", "--heartbeat-interval", "200ms",
		"--poll-wait", rolesPollWait.String(), "--drain-timeout", "5s", "--work-dir", filepath.Join(dir, "work"), "--log-level", "debug"}
	n.args = append(n.args, e2eNodeInputFlags...)
	n.launch(t)
	return &clusterNode{e2eNode: n, id: n.nodeID(t), gates: gates}
}

// open opens the gate of a generic job.
func (n *clusterNode) open(t *testing.T, job string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(n.gates, job), nil, 0o600); err != nil {
		t.Fatal(err)
	}
}

// stop SIGKILLs the node agent.
func (n *clusterNode) stop() {
	if n.cmd.ProcessState == nil {
		n.cmd.Process.Kill()
		<-n.exited
	}
}

// unitCluster is the installation of TestClusterBehindProxy: the processes the
// units start on one PostgreSQL database, the proxy before the API
// processes, and the node agent behind it.
type unitCluster struct {
	dsn, bin        string
	leader, standby *rolesProcess
	apis            []*rolesProcess
	proxy           *clusterProxy
	node            *clusterNode
	jobs            []string // every job accepted, to be completed or cancelled
}

// startCluster starts the worker unit twice (the leader, then the standby
// with every worker role but the anchor: under --dev each process has its
// own chain) and the API unit clusterAPIProcesses times, each with the
// settings of the environment file given as flags, then the proxy and the
// node (step 1).
func startCluster(t *testing.T) *unitCluster {
	t.Helper()
	api, worker := readClusterUnit(t, clusterAPIUnit), readClusterUnit(t, clusterWorkerUnit)
	checkClusterUnits(t, api, worker)
	e2eInputBucket(t)
	env := append([]string{"--jwt-key-file", rolesKeyFile(t), "--trusted-proxies", "127.0.0.1"}, clusterResultBucket(t)...)
	c := &unitCluster{dsn: pgtest.NewDatabase(t), bin: crashBinary(t)}
	c.leader = startRolesProcess(t, c.bin, c.dsn, "worker-leader", append(worker.args(t, ""), env...)...)
	c.leader.awaitLeading(t, rolesWorkers, rolesReadyTimeout)
	c.standby = startRolesProcess(t, c.bin, c.dsn, "worker-standby", append(worker.args(t, rolesStandbyWorkers), env...)...)
	for i := range clusterAPIProcesses {
		p := startRolesProcess(t, c.bin, c.dsn, fmt.Sprintf("api-%d", i+1), append(api.args(t, ""), env...)...)
		if got := p.readyz(); !strings.HasPrefix(got, "ok\n") || !strings.Contains(got, "roles: api\n") || p.leading() != "" {
			t.Fatalf("step 1: API process /readyz %q; want ok, roles: api, leading nothing", got)
		}
		c.apis = append(c.apis, p)
	}
	if got := c.standby.leading(); got != "" {
		t.Fatalf("step 1: the standby leads %q while the leader lives", got)
	}
	c.proxy = startClusterProxy(t, c.apis)
	c.node = startClusterNode(t, c.proxy.base, rolesEnrollmentToken(t, c.dsn))
	return c
}

// creator registers a creator through the proxy, checks the session works
// through every API process, and buys 100 credits: the balance read right
// after shows them, whichever process answers.
func (c *unitCluster) creator(t *testing.T, email string) (*client.Client, string) {
	t.Helper()
	ctx := context.Background()
	cl, err := client.New(c.proxy.base)
	if err != nil {
		t.Fatal(err)
	}
	u, err := cl.Register(ctx, email, "Creator", "creator password")
	if err != nil {
		t.Fatalf("register %s: %v", email, err)
	}
	if _, err := cl.Login(ctx, email, "creator password"); err != nil {
		t.Fatalf("log in %s: %v", email, err)
	}
	for range clusterAPIProcesses {
		if me, err := cl.Me(ctx); err != nil || me.ID != u.ID {
			t.Fatalf("me: %+v, %v; want %s", me, err, u.ID)
		}
	}
	if co, err := cl.Checkout(ctx, "credits_100"); err != nil || !co.Dev {
		t.Fatalf("checkout: %+v, %v", co, err)
	}
	c.wantBalance(t, "checkout of "+email, cl, client.Balance{Balance: 100, Held: 0, Available: 100})
	return cl, u.ID
}

// readYourWrite checks a creator's read right after their own write, once
// through each API process: the product promises the read shows the write
// whichever process answers. check returns what is stale ("" for
// nothing) or the read's error. A stale answer fails the test; the test
// then waits for the read to catch up, so that one run reports every miss
// and still checks the steps after it. A 503 is not a stale answer (the
// read models were still behind after the server's bounded wait, on a busy
// machine): it is logged and the read sent again.
func readYourWrite(t *testing.T, what string, check func() (string, error)) {
	t.Helper()
	for i := range clusterAPIProcesses {
		stale, err := check()
		for deadline := time.Now().Add(e2eWait); errors.Is(err, client.ErrUnavailable) && time.Now().Before(deadline); {
			t.Logf("%s: read %d right after the write answered %v; sent again", what, i+1, err)
			stale, err = check()
		}
		if err != nil {
			t.Fatalf("%s: read %d right after the write: %v", what, i+1, err)
		}
		if stale != "" {
			t.Errorf("%s: read %d right after the write: %s (read your writes through any API process)", what, i+1, stale)
			e2eEventually(t, what, func() string {
				stale, err := check()
				return cmp.Or(stale, errorString(err))
			})
			return
		}
	}
}

func errorString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// wantBalance checks the creator's balance right after their write.
func (c *unitCluster) wantBalance(t *testing.T, what string, cl *client.Client, want client.Balance) {
	t.Helper()
	readYourWrite(t, what, func() (string, error) {
		b, err := cl.Balance(context.Background())
		if err == nil && b != want {
			return fmt.Sprintf("balance %+v; want %+v", b, want), nil
		}
		return "", err
	})
}

// submit submits r with an idempotency key, retrying while no API process
// has heard a healthy node for the type yet (nothing is held then); the
// answer must be QUEUED or DISPATCHED at the guide's price.
func (c *unitCluster) submit(t *testing.T, cl *client.Client, r client.SubmitRequest) string {
	t.Helper()
	var sub client.Submitted
	e2eEventually(t, "submission of "+string(r.JobType)+" accepted", func() string {
		var err error
		if sub, err = cl.SubmitJob(context.Background(), r); errors.Is(err, client.ErrNoHealthyNodes) {
			return err.Error()
		} else if err != nil {
			t.Fatalf("submit %s: %v", r.JobType, err)
		}
		return ""
	})
	if (sub.Status != client.StatusQueued && sub.Status != client.StatusDispatched) || sub.Cost != clusterPrices[r.JobType] {
		t.Fatalf("submit %s: answered %+v; want QUEUED or DISPATCHED, cost %d", r.JobType, sub, clusterPrices[r.JobType])
	}
	c.jobs = append(c.jobs, sub.JobID)
	return sub.JobID
}

// TestClusterBehindProxy runs the systemd units of deploy/systemd as they
// would run — three API processes and two worker processes on one
// PostgreSQL — behind a round-robin reverse proxy; the creators and the
// node agent talk only to the proxy:
//
//  1. the units' ExecStart lines are read and started (the worker's twice:
//     a leader of every worker role and a standby); every API process
//     answers /readyz ok, roles: api, leading nothing;
//  2. the creator journey: register, buy credits, submit every job type,
//     list, get, cancel one, run them on the node, download and check the
//     results, transactions and usage; every read right after a write shows
//     it, whichever process answers;
//  3. 50 renders at once on 100 credits: exactly 10 accepted, the rest
//     refused 402 insufficient_credits; balance and holds exact at once;
//  4. the node's path: a job submitted while the node waits in its long
//     poll runs within rolesWakeMax (the poll was woken); a job is running
//     and others queued when the worker leader is SIGKILLed; the standby
//     leads every role it runs within rolesTakeoverMax of the kill;
//  5. every job ends, charged once; the log has no gap, no duplicate
//     effect, and no account's available credits below zero; no node held
//     more jobs than its slots; every API process served requests;
//     `rendertrust check` is clean.
func TestClusterBehindProxy(t *testing.T) {
	skipIfShort(t, "starts server and node processes")
	began := time.Now()
	c := startCluster(t)
	t.Logf("step 1: five processes, the proxy and the node up in %v", time.Since(began).Round(time.Millisecond))
	c.journey(t)
	c.burst(t)
	c.failover(t)
	c.finish(t)
	t.Logf("wall time %v", time.Since(began).Round(time.Millisecond))
}

// journey is step 2: the creator guide's journey through the proxy. A
// gated generic job holds the node's one slot while the others are
// submitted, listed and one cancelled, so they stay QUEUED until the gate
// opens.
func (c *unitCluster) journey(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	cl, _ := c.creator(t, "creator@example.com")
	gated := c.submit(t, cl, client.SubmitRequest{JobType: client.JobGeneric, Payload: json.RawMessage(`{"steps":[1,2,3]}`),
		Priority: client.PriorityHigh, IdempotencyKey: "journey-generic"})
	// Once the gated job runs, the node's slot is taken: the dispatcher's
	// leader cannot move the next jobs, so they read QUEUED.
	e2eJobReaches(t, cl, gated, client.StatusRunning)
	jobs := map[client.JobType]string{client.JobGeneric: gated}
	for _, r := range []client.SubmitRequest{
		{JobType: client.JobRender, PayloadRef: "s3://bucket/scene.blend"},
		{JobType: client.JobInference, Payload: map[string]string{"ref": "s3://bucket/scene.blend"}},
		{JobType: client.JobCPUBenchmark, Payload: json.RawMessage(`{"rounds":5000}`), Priority: client.PriorityLow},
		{JobType: client.JobEcho, Payload: json.RawMessage(`{"hello":"cluster"}`)},
	} {
		r.IdempotencyKey = "journey-" + string(r.JobType)
		jobs[r.JobType] = c.submit(t, cl, r)
	}
	c.listAndGet(t, cl, jobs)
	echo := jobs[client.JobEcho]
	if err := cl.CancelJob(ctx, echo); err != nil {
		t.Fatalf("step 2: cancel the echo job: %v", err)
	}
	readYourWrite(t, "step 2: cancel", func() (string, error) {
		j, err := cl.GetJob(ctx, echo)
		if err != nil || j.Status != client.StatusCancelled {
			return fmt.Sprintf("the echo job %s; want CANCELLED", j.Status), err
		}
		got, err := listIDs(cl, client.StatusCancelled)
		if err == nil && (len(got) != 1 || got[0] != echo) {
			return fmt.Sprintf("CANCELLED jobs %v, want [%s]", got, echo), nil
		}
		return "", err
	})
	if err := cl.CancelJob(ctx, echo); !errors.Is(err, client.ErrConflict) {
		t.Fatalf("step 2: second cancel: %v, want 409 conflict", err)
	}
	c.node.open(t, gated)
	c.results(t, cl, jobs)
	c.settled(t, cl, jobs)
}

// listAndGet checks that every job just submitted is listed and readable,
// at once, and that all but the gated one wait QUEUED.
func (c *unitCluster) listAndGet(t *testing.T, cl *client.Client, jobs map[client.JobType]string) {
	t.Helper()
	readYourWrite(t, "step 2: submissions", func() (string, error) {
		all, err := listIDs(cl, "")
		if err != nil {
			return "", err
		}
		queued, err := listIDs(cl, client.StatusQueued)
		if err != nil {
			return "", err
		}
		for typ, id := range jobs {
			j, err := cl.GetJob(context.Background(), id)
			if errors.Is(err, client.ErrNotFound) || (err == nil && (j.JobType != typ || j.Cost != clusterPrices[typ])) {
				return fmt.Sprintf("job %s: %+v, %v; want a %s job costing %d", id, j, err, typ, clusterPrices[typ]), nil
			} else if err != nil {
				return "", err
			}
			if !slices.Contains(all, id) || (typ != client.JobGeneric) != slices.Contains(queued, id) {
				return fmt.Sprintf("%s job %s: listed in %v, QUEUED ones %v; want it listed, QUEUED unless it holds the slot", typ, id, all, queued), nil
			}
		}
		if len(all) != len(jobs) || len(queued) != len(jobs)-1 {
			return fmt.Sprintf("%d jobs listed, %d QUEUED; want %d and %d", len(all), len(queued), len(jobs), len(jobs)-1), nil
		}
		return "", nil
	})
}

// listIDs lists the ids of the creator's jobs in status ("" for all).
func listIDs(cl *client.Client, status client.Status) ([]string, error) {
	var statuses []client.Status
	if status != "" {
		statuses = append(statuses, status)
	}
	jobs, err := cl.ListJobs(context.Background(), statuses...)
	var ids []string
	for _, j := range jobs {
		ids = append(ids, j.ID)
	}
	return ids, err
}

// results waits until every uncancelled job completed on the node and
// downloads each result through its link, checked against the completion
// event's SHA-256 and against what the node's command prints.
func (c *unitCluster) results(t *testing.T, cl *client.Client, jobs map[client.JobType]string) {
	t.Helper()
	store, err := postgres.Open(context.Background(), c.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	dir := t.TempDir()
	want := map[client.JobType]func(b []byte) bool{
		client.JobGeneric:      func(b []byte) bool { return jsonEqual(b, `{"steps":[1,2,3]}`) },
		client.JobRender:       func(b []byte) bool { return string(b) == "rendered:s3://bucket/scene.blend" },
		client.JobInference:    func(b []byte) bool { return string(b) == "inferred:s3://bucket/scene.blend" },
		client.JobCPUBenchmark: func(b []byte) bool { return strings.Contains(string(b), `"rounds":5000`) },
	}
	for typ, ok := range want {
		if j := e2eJobReaches(t, cl, jobs[typ], client.StatusCompleted); j.NodeID != c.node.id {
			t.Fatalf("step 2: %s job ran on %s, want the node %s", typ, j.NodeID, c.node.id)
		}
		if got, _ := downloadAndCheck(t, cl, store, jobs[typ], dir); !ok(got) {
			t.Fatalf("step 2: %s result %q", typ, got)
		}
	}
}

func jsonEqual(b []byte, want string) bool {
	var x, y any
	if json.Unmarshal(b, &x) != nil || json.Unmarshal([]byte(want), &y) != nil {
		return false
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return string(xb) == string(yb)
}

// settled waits until the completed jobs are charged and checks the
// transactions (one purchase; one hold and one deduction of its price per
// completed job, nothing deducted for the cancelled one) and the usage.
func (c *unitCluster) settled(t *testing.T, cl *client.Client, jobs map[client.JobType]string) {
	t.Helper()
	ctx := context.Background()
	var spent int64
	for typ := range jobs {
		if typ != client.JobEcho {
			spent += clusterPrices[typ]
		}
	}
	want := client.Balance{Balance: 100 - spent, Available: 100 - spent}
	e2eEventually(t, "step 2: the completed jobs charged", func() string {
		b, err := cl.Balance(ctx)
		if err != nil || b != want {
			return fmt.Sprintf("balance %+v, %v; want %+v", b, err, want)
		}
		return ""
	})
	moved := map[string]map[string]int64{} // job (or "" for the purchase) → type → credits
	for tx, err := range cl.AllTransactions(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		if moved[tx.JobID] == nil {
			moved[tx.JobID] = map[string]int64{}
		}
		moved[tx.JobID][tx.Type] += tx.Amount
	}
	if moved[""]["purchase"] != 100 {
		t.Fatalf("step 2: transactions %v; want a purchase of 100", moved)
	}
	for typ, id := range jobs {
		if typ == client.JobEcho {
			if moved[id]["deduction"] != 0 {
				t.Fatalf("step 2: the cancelled echo job moved %v", moved[id])
			}
			continue
		}
		if p := clusterPrices[typ]; moved[id]["hold"] != p || moved[id]["deduction"] != p {
			t.Fatalf("step 2: %s job's transactions %v; want a hold and a deduction of %d", typ, moved[id], p)
		}
	}
	if u, err := cl.Usage(ctx, client.UsageQuery{}); err != nil || len(u.Days) != 7 || u.Total != spent {
		t.Fatalf("step 2: usage %+v, %v; want 7 days totalling %d", u, err, spent)
	}
}

// burst is step 3: clusterBurst renders at once, through the proxy, on
// clusterBurstCredits credits.
func (c *unitCluster) burst(t *testing.T) {
	t.Helper()
	cl, _ := c.creator(t, "burst@example.com")
	price := clusterPrices[client.JobRender]
	fit := int(clusterBurstCredits / price)
	ids := make([]string, clusterBurst)
	errs := make([]error, clusterBurst)
	var wg sync.WaitGroup
	for i := range clusterBurst {
		wg.Go(func() {
			sub, err := cl.SubmitJob(context.Background(), client.SubmitRequest{JobType: client.JobRender, PayloadRef: "s3://bucket/scene.blend"})
			ids[i], errs[i] = sub.JobID, err
		})
	}
	wg.Wait()
	var accepted []string
	refused := 0
	for i, err := range errs {
		var apiErr *client.APIError
		switch {
		case err == nil:
			accepted = append(accepted, ids[i])
		case errors.As(err, &apiErr) && apiErr.Status == 402 && apiErr.Code == client.CodeInsufficientCredits:
			refused++
		default:
			t.Fatalf("step 3: submission %d: %v; want accepted or 402 insufficient_credits", i, err)
		}
	}
	if len(accepted) != fit || refused != clusterBurst-fit {
		t.Fatalf("step 3: %d accepted, %d refused; want %d and %d", len(accepted), refused, fit, clusterBurst-fit)
	}
	c.jobs = append(c.jobs, accepted...)
	readYourWrite(t, "step 3: burst", func() (string, error) {
		b, err := cl.Balance(context.Background())
		if err != nil {
			return "", err
		}
		if b.Available != 0 || b.Held%price != 0 || b.Held < 0 || b.Balance-b.Held != 0 {
			return fmt.Sprintf("balance %+v; want every credit held or deducted, none available", b), nil
		}
		return burstHolds(cl, accepted, price)
	})
	for _, id := range accepted {
		e2eJobReaches(t, cl, id, client.StatusCompleted)
	}
	e2eEventually(t, "step 3: every accepted render charged", func() string {
		b, err := cl.Balance(context.Background())
		if err != nil || b != (client.Balance{}) {
			return fmt.Sprintf("balance %+v, %v; want nothing left", b, err)
		}
		return ""
	})
}

// burstHolds checks the transactions show one hold of price for each
// accepted job and no other hold.
func burstHolds(cl *client.Client, accepted []string, price int64) (string, error) {
	holds := map[string]int64{}
	for tx, err := range cl.AllTransactions(context.Background()) {
		if err != nil {
			return "", err
		}
		if tx.Type == "hold" {
			holds[tx.JobID] += tx.Amount
		}
	}
	for _, id := range accepted {
		if holds[id] != price {
			return fmt.Sprintf("job %s held %d, want %d", id, holds[id], price), nil
		}
	}
	if len(holds) != len(accepted) {
		return fmt.Sprintf("%d jobs held credits, want the %d accepted", len(holds), len(accepted)), nil
	}
	return "", nil
}

// failover is step 4.
func (c *unitCluster) failover(t *testing.T) {
	t.Helper()
	cl, _ := c.creator(t, "failover@example.com")
	began := time.Now()
	woken := c.submit(t, cl, client.SubmitRequest{JobType: client.JobCPUBenchmark, IdempotencyKey: "woken"})
	e2eJobReaches(t, cl, woken, client.StatusCompleted)
	if took := time.Since(began); took > rolesWakeMax {
		t.Fatalf("step 4: job %s took %v to complete; the node's long poll (%v) was not woken", woken, took, rolesPollWait)
	} else {
		t.Logf("step 4: a job submitted while the node long-polled completed %v later", took.Round(time.Millisecond))
	}
	gated := c.submit(t, cl, client.SubmitRequest{JobType: client.JobGeneric, Payload: json.RawMessage(`{"in":"flight"}`), IdempotencyKey: "gated"})
	e2eJobReaches(t, cl, gated, client.StatusRunning)
	inFlight := []string{gated}
	for i := 1; i < clusterInFlight; i++ {
		inFlight = append(inFlight, c.submit(t, cl, client.SubmitRequest{JobType: client.JobCPUBenchmark, IdempotencyKey: fmt.Sprint("queued-", i)}))
	}
	killed := time.Now()
	c.leader.kill()
	c.standby.awaitLeading(t, rolesStandbyWorkers, rolesReadyTimeout)
	took := time.Since(killed)
	t.Logf("step 4: the standby led %s %v after the leader's SIGKILL", rolesStandbyWorkers, took.Round(time.Millisecond))
	if took > rolesTakeoverMax {
		t.Errorf("step 4: takeover took %v, want at most %v", took, rolesTakeoverMax)
	}
	c.node.open(t, gated)
	inFlight = append(inFlight, c.submit(t, cl, client.SubmitRequest{JobType: client.JobCPUBenchmark, IdempotencyKey: "after"}))
	for _, id := range inFlight {
		if j := e2eJobReaches(t, cl, id, client.StatusCompleted); j.NodeID != c.node.id {
			t.Fatalf("step 4: job %s ran on %s, want %s", id, j.NodeID, c.node.id)
		}
	}
	want := int64(100 - 1 - len(inFlight)) // cpu_benchmark and generic cost 1 each
	e2eEventually(t, "step 4: every job charged", func() string {
		b, err := cl.Balance(context.Background())
		if err != nil || b != (client.Balance{Balance: want, Available: want}) {
			return fmt.Sprintf("balance %+v, %v; want %d", b, err, want)
		}
		return ""
	})
}

// finish is step 5: it stops every process and reads the log back.
func (c *unitCluster) finish(t *testing.T) {
	t.Helper()
	c.proxy.checkSpread(t)
	c.node.stop()
	for _, p := range append(c.apis, c.standby) {
		p.kill()
	}
	l := readClusterLog(t, c.dsn)
	for _, id := range c.jobs {
		l.checkJob(t, domain.JobID(id))
	}
	rolesNoOverAssignment(t, c.dsn, rolesNodeSlots)
	rolesCheck(t, c.bin, c.dsn, c.leader.dir)
}

// clusterLog is the log read back: what happened to each job, and each
// account's available credits.
type clusterLog struct {
	submitted, completed, cancelled map[domain.JobID]int
	held, deducted, released        map[domain.JobID][]domain.Credits
	available                       map[domain.UserID]domain.Credits
}

// readClusterLog folds the whole log; it fails the test on a gap in the
// positions or an account whose available credits go below zero.
func readClusterLog(t *testing.T, dsn string) *clusterLog {
	t.Helper()
	store, err := postgres.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	l := &clusterLog{submitted: map[domain.JobID]int{}, completed: map[domain.JobID]int{}, cancelled: map[domain.JobID]int{},
		held: map[domain.JobID][]domain.Credits{}, deducted: map[domain.JobID][]domain.Credits{}, released: map[domain.JobID][]domain.Credits{},
		available: map[domain.UserID]domain.Credits{}}
	for from := uint64(1); ; {
		recs, err := store.ReadAll(context.Background(), from, eventstore.ReadEventsMax)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			return l
		}
		for _, rec := range recs {
			if rec.Position != from {
				t.Fatalf("the log skips from position %d to %d", from, rec.Position)
			}
			e, err := domain.DecodeEvent(rec.Type, rec.Data)
			if err != nil {
				t.Fatalf("position %d: %v", rec.Position, err)
			}
			l.apply(t, rec.Position, e)
			from++
		}
	}
}

func (l *clusterLog) apply(t *testing.T, pos uint64, e domain.Event) {
	switch e := e.(type) {
	case domain.JobSubmitted:
		l.submitted[e.JobID]++
	case domain.JobCompleted:
		l.completed[e.JobID]++
	case domain.JobCancelled:
		l.cancelled[e.JobID]++
	case domain.CreditsPurchased:
		l.credit(t, pos, e.UserID, e.Credits)
	case domain.CreditsGranted:
		l.credit(t, pos, e.UserID, e.Amount)
	case domain.CreditsRefunded:
		l.credit(t, pos, e.UserID, e.Amount)
	case domain.CreditsHeld:
		l.held[e.JobID] = append(l.held[e.JobID], e.Amount)
		l.credit(t, pos, e.UserID, -e.Amount)
	case domain.HoldReleased:
		l.released[e.JobID] = append(l.released[e.JobID], e.Amount)
		l.credit(t, pos, e.UserID, e.Amount)
	case domain.CreditsDeducted:
		// A deduction captures a hold: the available credits do not move.
		l.deducted[e.JobID] = append(l.deducted[e.JobID], e.Amount)
	}
}

// credit moves user's available credits by d.
func (l *clusterLog) credit(t *testing.T, pos uint64, user domain.UserID, d domain.Credits) {
	if l.available[user] += d; l.available[user] < 0 {
		t.Errorf("position %d: user %s has %d credits available", pos, user, l.available[user])
	}
}

// checkJob checks an accepted job is in the log once, with one hold, and
// either completed once and charged its hold once, or cancelled once and
// its hold released once.
func (l *clusterLog) checkJob(t *testing.T, id domain.JobID) {
	t.Helper()
	held := l.held[id]
	if l.submitted[id] != 1 || len(held) != 1 {
		t.Errorf("job %s: submitted %d times, holds %v; want once, one hold", id, l.submitted[id], held)
		return
	}
	effects := fmt.Sprintf("completed %d, cancelled %d, deducted %v, released %v", l.completed[id], l.cancelled[id], l.deducted[id], l.released[id])
	switch {
	case l.cancelled[id] == 1 && l.completed[id] == 0 && len(l.deducted[id]) == 0 && len(l.released[id]) <= 1:
	case l.completed[id] == 1 && l.cancelled[id] == 0 && len(l.released[id]) == 0 &&
		(len(l.deducted[id]) == 1 && l.deducted[id][0] == held[0] || held[0] == 0 && len(l.deducted[id]) == 0):
	default:
		t.Errorf("job %s (hold %d): %s; want completed and charged once, or cancelled and released", id, held[0], effects)
	}
}
