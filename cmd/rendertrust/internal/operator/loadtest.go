package operator

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/rendertrust/rendertrust/cmd/rendertrust/internal/creator"
	"github.com/rendertrust/rendertrust/internal/loadgen"
)

// Defaults and limits of `rendertrust loadtest`.
const (
	loadtestClientsDefault  = 64
	loadtestDurationDefault = 30 * time.Second
	// loadtestDurationMax stays inside an access token's lifetime: the
	// creators' tokens are not refreshed during the run.
	loadtestDurationMax  = 10 * time.Minute
	loadtestNodesDefault = 4
	loadtestIdleNodesMax = 100
	loadtestUsersMax     = 10_000
	loadtestNodeSlots    = 16 // the domain's SlotsMax
)

// loadtestFlags configure a load test.
type loadtestFlags struct {
	servers       []string
	clients       int
	duration      time.Duration
	workload      string
	users         int
	jobType       string
	dev           bool
	adminEmail    string
	adminPassword string
	nodes         int
	idleNodes     int
	packages      int
	allowRemote   bool
	json          bool
}

// The workloads a load test can run.
var loadtestWorkloads = []string{"submit", "read", "mixed", "cycle"}

func newLoadtestCommand() *cobra.Command {
	f := &loadtestFlags{}
	cmd := &cobra.Command{
		Use:   "loadtest --workload submit|read|mixed|cycle",
		Short: "Load a server with concurrent clients and report throughput, latency percentiles and errors",
		Long: `loadtest registers its own funded creators and drives the API with closed-loop clients,
like pgbench: each client sends its next request as soon as the last is answered.

  submit  paid job submissions (--job-type), spread over --users creators (1: one hot creator)
  read    balance, job list and usage queries
  mixed   one submission for every four reads
  cycle   submissions that --nodes protocol-level nodes (enrolled with the admin account)
          start and complete at once: submit → dispatch → start → complete → deduction

Creators are funded by the dev payment provider (--dev, a server started with serve --dev)
or by admin grants (--admin-email, password from $RENDERTRUST_ADMIN_PASSWORD or
--admin-password). Only loopback servers are loaded unless --allow-remote is given.

Several --server URLs (API processes of one installation, sharing one --jwt-key-file) share
the clients round robin: client i talks to server i mod n, without a proxy. Creators and
nodes are set up through the first.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runLoadtest(cmd, f) },
	}
	fs := cmd.Flags()
	fs.StringSliceVar(&f.servers, "server", []string{creator.ServerDefault},
		"API base URL; repeat it or list several, comma-separated, to spread the clients round robin over several API processes of one installation")
	fs.IntVar(&f.clients, "clients", loadtestClientsDefault, "concurrent clients")
	fs.DurationVar(&f.duration, "duration", loadtestDurationDefault, "how long to load the server")
	fs.StringVar(&f.workload, "workload", "submit", "submit, read, mixed or cycle")
	fs.IntVar(&f.users, "users", 0, "creators the clients act for, round robin (default: one per client; 1: one hot creator)")
	fs.StringVar(&f.jobType, "job-type", "cpu_benchmark", "the job type submitted")
	fs.BoolVar(&f.dev, "dev", false, "fund creators through the dev payment provider (serve --dev)")
	fs.StringVar(&f.adminEmail, "admin-email", "", "an admin account: fund creators with grants, enroll the cycle workload's nodes")
	fs.StringVar(&f.adminPassword, "admin-password", "", "the admin's password (default: $RENDERTRUST_ADMIN_PASSWORD)")
	fs.IntVar(&f.packages, "packages", 0, "credit packages of 1,000 each creator is funded with (default: 1,000,000 credits shared, 1 to 200 each)")
	fs.IntVar(&f.nodes, "nodes", loadtestNodesDefault, "protocol-level nodes for the cycle workload")
	fs.IntVar(&f.idleNodes, "idle-nodes", 0, "submit and mixed: enroll this many nodes that heartbeat and take no work, so jobs wait QUEUED without an executor on the cores (needs --admin-email)")
	fs.BoolVar(&f.allowRemote, "allow-remote", false, "allow a server that is not on a loopback address")
	fs.BoolVar(&f.json, "json", false, "print the result as JSON")
	return cmd
}

// check validates the flags before anything is sent.
func (f *loadtestFlags) check() error {
	if !slices.Contains(loadtestWorkloads, f.workload) {
		return fmt.Errorf("--workload %q: want one of %v", f.workload, loadtestWorkloads)
	}
	if f.duration <= 0 || f.duration > loadtestDurationMax {
		return fmt.Errorf("--duration %s outside (0, %s]", f.duration, loadtestDurationMax)
	}
	if f.users == 0 {
		f.users = f.clients
	}
	if f.users < 1 || f.users > loadtestUsersMax {
		return fmt.Errorf("--users %d outside [1, %d]", f.users, loadtestUsersMax)
	}
	if f.packages == 0 {
		f.packages = min(max(loadtestCreditsTotal/f.users/loadtestDevPackageCredits, 1), loadtestDevCheckoutsMax)
	}
	if f.packages < 1 || f.packages > loadtestDevCheckoutsMax {
		return fmt.Errorf("--packages %d outside [1, %d]", f.packages, loadtestDevCheckoutsMax)
	}
	if f.dev == (f.adminEmail != "") {
		return fmt.Errorf("fund creators with exactly one of --dev and --admin-email")
	}
	if f.workload == "cycle" && f.adminEmail == "" {
		return fmt.Errorf("--workload cycle enrolls nodes: it needs --admin-email")
	}
	if f.workload == "cycle" && f.nodes < 1 {
		return fmt.Errorf("--nodes %d: want at least 1", f.nodes)
	}
	if f.idleNodes < 0 || f.idleNodes > loadtestIdleNodesMax {
		return fmt.Errorf("--idle-nodes %d outside [0, %d]", f.idleNodes, loadtestIdleNodesMax)
	}
	if f.idleNodes > 0 && (f.adminEmail == "" || (f.workload != "submit" && f.workload != "mixed")) {
		return fmt.Errorf("--idle-nodes is for the submit and mixed workloads and needs --admin-email")
	}
	return f.checkServers()
}

// checkServers refuses an empty --server list, an empty or repeated
// entry, and a non-loopback server unless --allow-remote.
func (f *loadtestFlags) checkServers() error {
	if len(f.servers) == 0 {
		return fmt.Errorf("--server: want at least one API base URL")
	}
	for i, s := range f.servers {
		if s == "" {
			return fmt.Errorf("--server %q: entry %d is empty", strings.Join(f.servers, ","), i+1)
		}
		if slices.Contains(f.servers[:i], s) {
			return fmt.Errorf("--server %q: %s is named twice", strings.Join(f.servers, ","), s)
		}
		if err := loadgen.CheckServer(s, f.allowRemote); err != nil {
			return err
		}
	}
	return nil
}

// LoadtestReport is the final result of a load test.
type LoadtestReport struct {
	Servers    []string       `json:"servers"`
	Workload   string         `json:"workload"`
	Clients    int            `json:"clients"`
	Users      int            `json:"users"`
	Seconds    float64        `json:"seconds"`
	Requests   int            `json:"requests"`
	PerSecond  float64        `json:"per_second"`
	P50Millis  float64        `json:"p50_ms"`
	P90Millis  float64        `json:"p90_ms"`
	P99Millis  float64        `json:"p99_ms"`
	MaxMillis  float64        `json:"max_ms"`
	Failures   int            `json:"failures"`
	Errors     map[string]int `json:"errors"`
	Cycles     int64          `json:"cycles,omitempty"`
	CyclesPerS float64        `json:"cycles_per_second,omitempty"`
}

func runLoadtest(cmd *cobra.Command, f *loadtestFlags) error {
	if err := f.check(); err != nil {
		return err
	}
	ctx := cmd.Context()
	errOut := cmd.ErrOrStderr()
	env, err := prepareLoadtest(ctx, f, errOut)
	if err != nil {
		return err
	}
	var cycles atomic.Int64
	stopNodes := func() {}
	switch {
	case f.workload == "cycle":
		stopNodes, err = env.runNodes(ctx, f, &cycles)
	case f.idleNodes > 0:
		stopNodes, err = env.runIdleNodes(ctx, f.jobType, f.idleNodes)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(errOut, "loadtest: %s workload, %d clients for %s against %s\n", f.workload, f.clients, f.duration, strings.Join(f.servers, ", "))
	res, err := loadgen.RunConfig(ctx, loadgen.Config{
		Bases: f.servers, Clients: f.clients, Duration: f.duration, AllowRemote: f.allowRemote,
		Next: env.workload(f),
		Progress: func(p loadgen.Progress) {
			fmt.Fprintf(errOut, "%5.0fs  %8d ok  %6d failed\n", p.Elapsed.Seconds(), p.Done, p.Failures)
		},
	})
	stopNodes()
	if err != nil {
		return err
	}
	rep := newLoadtestReport(f, res, cycles.Load())
	if f.json {
		enc := json.NewEncoder(cmd.OutOrStdout())
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return rep.print(cmd.OutOrStdout())
}

func newLoadtestReport(f *loadtestFlags, res loadgen.Result, cycles int64) LoadtestReport {
	rep := LoadtestReport{
		Servers: f.servers, Workload: f.workload, Clients: f.clients, Users: f.users,
		Seconds: res.Elapsed.Seconds(), Requests: res.Requests, PerSecond: res.PerSecond,
		P50Millis: millis(res.P50), P90Millis: millis(res.P90), P99Millis: millis(res.P99), MaxMillis: millis(res.Max),
		Failures: res.Failures, Errors: res.Errors,
	}
	if rep.Errors == nil {
		rep.Errors = map[string]int{}
	}
	if f.workload == "cycle" {
		rep.Cycles, rep.CyclesPerS = cycles, float64(cycles)/res.Elapsed.Seconds()
	}
	return rep
}

func (r LoadtestReport) print(w io.Writer) error {
	t := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(t, "WORKLOAD\tCLIENTS\tUSERS\tREQUESTS\tPER SECOND\tP50 ms\tP90 ms\tP99 ms\tMAX ms\tFAILED")
	fmt.Fprintf(t, "%s\t%d\t%d\t%d\t%.0f\t%.2f\t%.2f\t%.2f\t%.2f\t%d\n", r.Workload, r.Clients, r.Users, r.Requests, r.PerSecond,
		r.P50Millis, r.P90Millis, r.P99Millis, r.MaxMillis, r.Failures)
	if err := t.Flush(); err != nil {
		return err
	}
	if r.Workload == "cycle" {
		fmt.Fprintf(w, "\ncompleted cycles: %d (%.0f/s)\n", r.Cycles, r.CyclesPerS)
	}
	if len(r.Errors) > 0 {
		fmt.Fprintln(w, "\nerrors by code:")
		for _, code := range slices.Sorted(maps.Keys(r.Errors)) {
			fmt.Fprintf(w, "  %-24s %d\n", code, r.Errors[code])
		}
	}
	return nil
}

func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// workload returns the request generator of f's workload.
func (e *loadtestEnv) workload(f *loadtestFlags) func(client, n int) loadgen.Request {
	submit := func(client, n int) loadgen.Request {
		body, _ := json.Marshal(map[string]any{"job_type": f.jobType, "payload": map[string]any{"client": client, "n": n}})
		return loadgen.Request{Method: "POST", Path: "/api/v1/jobs/dispatch", Token: e.tokenOf(client, n), Body: body, Want: 201}
	}
	reads := []string{"/api/v1/credits/balance", "/api/v1/jobs?limit=20", "/api/v1/credits/usage"}
	read := func(client, n int) loadgen.Request {
		return loadgen.Request{Method: "GET", Path: reads[n%len(reads)], Token: e.tokenOf(client, n), Want: 200}
	}
	switch f.workload {
	case "read":
		return read
	case "mixed":
		return func(client, n int) loadgen.Request {
			if n%5 == 0 {
				return submit(client, n)
			}
			return read(client, n)
		}
	default: // submit, cycle
		return submit
	}
}

// tokenOf returns the access token of the creator client acts for in its
// n-th request: the clients take the creators in turn, so every creator is
// used however many clients there are (client i's n-th request is creator
// i + n·clients, modulo the creators).
func (e *loadtestEnv) tokenOf(client, n int) string {
	return e.tokens[(client+n*e.clients)%len(e.tokens)]
}
