package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/rendertrust/rendertrust/internal/pgtest"
)

// runLoadtestCLI runs `rendertrust loadtest args…` and returns its output.
func runLoadtestCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := &cobra.Command{Use: "rendertrust", SilenceUsage: true, SilenceErrors: true}
	root.AddCommand(newLoadtestCommand())
	var out bytes.Buffer
	root.SetArgs(append([]string{"loadtest"}, args...))
	root.SetOut(&out)
	root.SetErr(io.Discard)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

// TestLoadtest: 1. an operator account and one node exist; 2. each workload
// runs for a second against the real server, creators funded by admin
// grants or by the dev provider, spread or on one hot creator; 3. each
// answered requests and none failed (a hot creator's contention is never an
// error); 4. the cycle workload's own nodes completed jobs.
func TestLoadtest(t *testing.T) {
	s := startServer(t, nil)
	admin := s.admin(t)
	keepAlive(t, s, s.enrollNode(t, admin, 16))
	adminFlags := []string{"--admin-email", "ops@example.com", "--admin-password", "operator password"}
	cases := []struct {
		name  string
		flags []string
	}{
		{"SubmitSpread", append([]string{"--workload", "submit", "--users", "4"}, adminFlags...)},
		// One creator's 2,000 credits last 2,000 holds (the node never
		// runs its jobs): a fast machine spent them within the 2 s. The
		// last --packages wins.
		{"SubmitHotCreator", []string{"--workload", "submit", "--users", "1", "--dev", "--packages", "20"}},
		{"Read", []string{"--workload", "read", "--users", "2", "--dev"}},
		{"Mixed", []string{"--workload", "mixed", "--users", "2", "--dev"}},
		// A cycle is four durable appends and two waits for the read
		// models: under -race on a busy machine a 2 s run completed none
		// once (0.5 cycles/s measured), so it runs for 10 s.
		{"Cycle", append([]string{"--workload", "cycle", "--users", "2", "--nodes", "2", "--duration", "10s"}, adminFlags...)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runLoadtestCLI(t, append([]string{"--server", s.base, "--clients", "8", "--duration", "2s", "--packages", "2", "--json"}, tc.flags...)...)
			if err != nil {
				t.Fatalf("step 2: loadtest: %v\n%s", err, out)
			}
			var rep loadtestReport
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatalf("step 2: --json output %q: %v", out, err)
			}
			t.Logf("%+v", rep)
			if rep.Requests == 0 || rep.Failures != 0 || len(rep.Errors) != 0 || rep.P99Millis < rep.P50Millis || rep.MaxMillis < rep.P99Millis {
				t.Fatalf("step 3: report %+v; want requests, no failures, ordered percentiles", rep)
			}
			if tc.name == "Cycle" && rep.Cycles == 0 {
				t.Fatalf("step 4: report %+v; want completed cycles", rep)
			}
		})
	}
}

// TestLoadtestIdleNodes: on a server with no node, submissions are refused
// 503; with --idle-nodes the loadtest's own idle node keeps the job type
// available, so every submission is accepted and waits QUEUED.
func TestLoadtestIdleNodes(t *testing.T) {
	s := startServer(t, nil)
	s.admin(t)
	flags := []string{"--server", s.base, "--clients", "4", "--duration", "2s", "--users", "2", "--packages", "2", "--json",
		"--admin-email", "ops@example.com", "--admin-password", "operator password", "--workload", "submit"}
	out, err := runLoadtestCLI(t, flags...)
	var rep loadtestReport
	if err != nil || json.Unmarshal([]byte(out), &rep) != nil || rep.Errors["no_healthy_nodes"] == 0 {
		t.Fatalf("without a node: %v %+v; want no_healthy_nodes refusals", err, rep)
	}
	out, err = runLoadtestCLI(t, append(flags, "--idle-nodes", "1")...)
	rep = loadtestReport{}
	if err != nil || json.Unmarshal([]byte(out), &rep) != nil {
		t.Fatalf("loadtest --idle-nodes 1: %v\n%s", err, out)
	}
	if rep.Requests == 0 || rep.Failures != 0 {
		t.Fatalf("with an idle node: %+v; want every submission accepted", rep)
	}
}

// keepAlive heartbeats for the node with credential until the test ends,
// so it stays healthy however slow the setup is.
func keepAlive(t *testing.T, s *server, credential string) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			req, _ := http.NewRequestWithContext(ctx, "POST", s.base+"/api/v1/nodes/heartbeat", nil)
			req.Header.Set("Authorization", "Bearer "+credential)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
}

// TestLoadtestFlags: bad flags are refused before anything is sent.
func TestLoadtestFlags(t *testing.T) {
	for name, args := range map[string][]string{
		"unknown workload":     {"--workload", "write", "--dev"},
		"no funding":           {"--workload", "read"},
		"two fundings":         {"--dev", "--admin-email", "ops@example.com"},
		"cycle without admin":  {"--workload", "cycle", "--dev"},
		"too long":             {"--dev", "--duration", "11m"},
		"too many users":       {"--dev", "--users", "10001"},
		"too many packages":    {"--dev", "--packages", "201"},
		"idle nodes for reads": {"--workload", "read", "--admin-email", "ops@example.com", "--idle-nodes", "1"},
		"idle nodes with dev":  {"--dev", "--idle-nodes", "1"},
		"too many idle nodes":  {"--admin-email", "ops@example.com", "--idle-nodes", "101"},
		"remote not permitted": {"--dev", "--server", "http://192.0.2.1:8080", "--duration", "1s"},
		"remote in a list":     {"--dev", "--server", "http://127.0.0.1:8080,http://192.0.2.1:8080", "--duration", "1s"},
		"empty server entry":   {"--dev", "--server", "http://127.0.0.1:8080,", "--duration", "1s"},
		"server named twice":   {"--dev", "--server", "http://127.0.0.1:8080", "--server", "http://127.0.0.1:8080"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := runLoadtestCLI(t, args...)
			if err == nil {
				t.Fatalf("loadtest %s: no error", strings.Join(args, " "))
			}
		})
	}
}

// TestLoadtestSeveralServers runs loadtest against two api-only processes
// of one installation:
//
//  1. a worker process and two api-only processes share one PostgreSQL
//     database and one JWT key;
//  2. loadtest reads for 2 s with --server naming both (one repeated flag,
//     one comma list), 8 clients;
//  3. no request failed, and each process answered job lists (which only
//     the load sends), together at least as many reads as loadtest counted;
//  4. an api-only process with a key of its own is refused before the
//     load starts, with an error naming --jwt-key-file. It serves another
//     database: on the same one the server itself refuses to start beside
//     processes that would refuse its tokens (TestRolesConfigChecked).
func TestLoadtestSeveralServers(t *testing.T) {
	skipIfShort(t, "starts server processes")
	dsn, bin, key := pgtest.NewDatabase(t), crashBinary(t), rolesKeyFile(t)
	startRolesProcess(t, bin, dsn, "worker", "--roles", "projections,reactor,dispatcher,anchor", "--jwt-key-file", key)
	apiA := startRolesProcess(t, bin, dsn, "api-a", "--roles", "api", "--jwt-key-file", key)
	apiB := startRolesProcess(t, bin, dsn, "api-b", "--roles", "api", "--jwt-key-file", key)
	flags := []string{"--clients", "8", "--duration", "2s", "--users", "4", "--packages", "1", "--dev", "--workload", "read", "--json"}
	for name, servers := range map[string][]string{
		"Repeated":  {"--server", apiA.base, "--server", apiB.base},
		"CommaList": {"--server", apiA.base + "," + apiB.base},
	} {
		t.Run(name, func(t *testing.T) {
			readsBefore := loadtestReads(t, apiA.base) + loadtestReads(t, apiB.base)
			listsA, listsB := loadtestJobLists(t, apiA.base), loadtestJobLists(t, apiB.base)
			out, err := runLoadtestCLI(t, append(servers, flags...)...)
			var rep loadtestReport
			if err != nil || json.Unmarshal([]byte(out), &rep) != nil {
				t.Fatalf("step 2: loadtest: %v\n%s", err, out)
			}
			if rep.Requests == 0 || rep.Failures != 0 || len(rep.Servers) != 2 {
				t.Fatalf("step 3: report %+v; want requests, no failures, two servers", rep)
			}
			gotA, gotB := loadtestJobLists(t, apiA.base)-listsA, loadtestJobLists(t, apiB.base)-listsB
			reads := loadtestReads(t, apiA.base) + loadtestReads(t, apiB.base) - readsBefore
			t.Logf("job lists answered: api-a %d, api-b %d; reads %d, loadtest counted %d", gotA, gotB, reads, rep.Requests)
			if gotA == 0 || gotB == 0 || reads < rep.Requests {
				t.Fatalf("step 3: api-a listed jobs %d times, api-b %d, %d reads in all; want both > 0 and at least loadtest's %d", gotA, gotB, reads, rep.Requests)
			}
		})
	}
	other := startRolesProcess(t, bin, pgtest.NewDatabase(t), "api-other-key", "--roles", "api")
	out, err := runLoadtestCLI(t, append([]string{"--server", apiA.base + "," + other.base}, flags...)...)
	if err == nil || !strings.Contains(err.Error(), "--jwt-key-file") {
		t.Fatalf("step 4: loadtest against a process with another key: %v\n%s; want a refusal naming --jwt-key-file", err, out)
	}
}

// loadtestJobLists returns how many GET /api/v1/jobs the server at base has
// answered, by its /metrics.
func loadtestJobLists(t *testing.T, base string) int {
	return loadtestRequestsAnswered(t, base, `method="GET",route="/api/v1/jobs"`)
}

// loadtestReads returns how many requests of the read workload (balance,
// job list, usage) the server at base has answered.
func loadtestReads(t *testing.T, base string) int {
	n := 0
	for _, route := range []string{"/api/v1/credits/balance", "/api/v1/jobs", "/api/v1/credits/usage"} {
		n += loadtestRequestsAnswered(t, base, `method="GET",route="`+route+`"`)
	}
	return n
}

// loadtestRequestsAnswered sums the request counts of the server's
// rendertrust_http_request_seconds series whose labels are labels.
func loadtestRequestsAnswered(t *testing.T, base, labels string) int {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	n := 0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "rendertrust_http_request_seconds_count{"+labels+"} ") {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		n += int(v)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}
