package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/rendertrust/rendertrust/client"
	"github.com/rendertrust/rendertrust/cmd/rendertrust/internal/creator"
	"github.com/rendertrust/rendertrust/node"
)

// cliRun runs one client command line with stdin and returns its output.
func cliRun(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	root := &cobra.Command{Use: "rendertrust", SilenceUsage: true, SilenceErrors: true}
	root.AddCommand(creator.Commands()...)
	var out bytes.Buffer
	root.SetArgs(args)
	root.SetIn(strings.NewReader(stdin))
	root.SetOut(&out)
	root.SetErr(io.Discard)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

// mustCLI runs a command line that must succeed.
func mustCLI(t *testing.T, args ...string) string {
	t.Helper()
	out, err := cliRun(t, "", args...)
	if err != nil {
		t.Fatalf("rendertrust %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// startInProcessNode runs a node agent with the built-in executors in this
// process until the test ends.
func startInProcessNode(t *testing.T, s *e2eServer) {
	t.Helper()
	token, _, err := s.m.Identity.IssueEnrollmentToken(context.Background(), "admin:cli-test")
	if err != nil {
		t.Fatal(err)
	}
	a, err := node.New(node.Config{Server: s.base, EnrollToken: token, Name: "cli-test",
		Executors:         map[string]node.Executor{"echo": node.Echo{}, "cpu_benchmark": node.CPUBenchmark{Rounds: 1000}},
		HeartbeatInterval: 200 * time.Millisecond, PollWait: time.Second, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	e2eEventually(t, "the node enrolled", func() string {
		if a.NodeID() == "" {
			return "not yet"
		}
		return ""
	})
}

// TestCLI drives the client commands against the real server: 1. login
// --register saves the session owner-only; 2. buy lists packages and buys
// one (dev); 3. balance; 4. submit --wait runs an echo job on a node; 5.
// list --json and get; 6. result downloads the verified file; 7. usage
// charts a cpu_benchmark's credit; 8. history shows the purchase and the
// ledger proves and verifies it; 9. cancel of a completed job is refused;
// 10. logout forgets the session, after which commands ask to log in.
func TestCLI(t *testing.T) {
	config := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", config)
	t.Setenv("HOME", config)
	t.Setenv(creator.ServerEnv, "")
	s := startE2EServer(t, func(c *Config) { c.AnchorInterval = 300 * time.Millisecond })
	startInProcessNode(t, s)

	path := cliLoginStep(t, s.base)
	if out := mustCLI(t, "credits", "buy"); !strings.Contains(out, "credits_100") || !strings.Contains(out, "$0.100") {
		t.Fatalf("step 2: packages\n%s", out)
	}
	if out := mustCLI(t, "credits", "buy", "credits_100"); !strings.Contains(out, "development payment provider") {
		t.Fatalf("step 2: buy\n%s", out)
	}
	if out := mustCLI(t, "credits", "balance"); !strings.Contains(out, "100") {
		t.Fatalf("step 3: balance\n%s", out)
	}
	id := cliJobSteps(t)
	mustCLI(t, "jobs", "submit", "cpu_benchmark", "--payload", `{"rounds":100}`, "--wait")
	e2eEventually(t, "step 7: usage chart", func() string {
		if out := mustCLI(t, "credits", "usage"); !strings.Contains(out, "Total: 1") || !strings.Contains(out, "█") {
			return out
		}
		return ""
	})
	cliLedgerSteps(t)
	if _, err := cliRun(t, "", "jobs", "cancel", id); !errors.Is(err, client.ErrConflict) {
		t.Fatalf("step 9: cancel of a completed job: %v, want ErrConflict", err)
	}

	mustCLI(t, "logout")
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("step 10: credentials left behind: %v", err)
	}
	if _, err := cliRun(t, "", "credits", "balance", "--server", s.base); !errors.Is(err, client.ErrUnauthorized) || !strings.Contains(err.Error(), "rendertrust login") {
		t.Fatalf("step 10: balance after logout: %v, want ErrUnauthorized with a hint", err)
	}
}

// cliLoginStep registers through `login --register` and checks the saved
// credentials' permissions; it returns their path (step 1).
func cliLoginStep(t *testing.T, base string) string {
	t.Helper()
	if out, err := cliRun(t, "creator password\n", "login", "--server", base, "--register", "--email", "cli@example.com", "--password-stdin"); err != nil {
		t.Fatalf("step 1: %v\n%s", err, out)
	}
	path, _ := creator.CredentialsPath()
	fi, err := os.Stat(path)
	di, derr := os.Stat(filepath.Dir(path))
	if err != nil || derr != nil || fi.Mode().Perm() != 0o600 || di.Mode().Perm() != 0o700 {
		t.Fatalf("step 1: credentials %v %v, dir %v %v; want 0600 in 0700", fi, err, di, derr)
	}
	return path
}

// cliJobSteps submits an echo job and waits, lists, gets and downloads it;
// it returns the job's id (steps 4 to 6).
func cliJobSteps(t *testing.T) string {
	t.Helper()
	if out := mustCLI(t, "jobs", "submit", "echo", "--payload", `{"hello":"cli"}`, "--wait"); !strings.Contains(out, "COMPLETED") {
		t.Fatalf("step 4: submit --wait\n%s", out)
	}
	var jobs []client.Job
	if err := json.Unmarshal([]byte(mustCLI(t, "jobs", "list", "--json")), &jobs); err != nil || len(jobs) != 1 || jobs[0].Status != client.StatusCompleted {
		t.Fatalf("step 5: list --json: %+v, %v", jobs, err)
	}
	id := jobs[0].ID
	if out := mustCLI(t, "jobs", "get", id); !strings.Contains(out, "COMPLETED") || !strings.Contains(out, jobs[0].ResultSHA256) {
		t.Fatalf("step 5: get\n%s", out)
	}
	dst := filepath.Join(t.TempDir(), "out.json")
	mustCLI(t, "jobs", "result", id, "-o", dst)
	if b, err := os.ReadFile(dst); err != nil || string(b) != `{"hello":"cli"}` {
		t.Fatalf("step 6: result %q, %v", b, err)
	}
	return id
}

// cliLedgerSteps finds the purchase in the history, then proves and
// verifies it once anchored (step 8).
func cliLedgerSteps(t *testing.T) {
	t.Helper()
	var txs []client.Transaction
	json.Unmarshal([]byte(mustCLI(t, "credits", "history", "--json", "--limit", "0")), &txs)
	entry := ""
	for _, tx := range txs {
		if tx.Type == "purchase" {
			entry = tx.EntryID
		}
	}
	if out := mustCLI(t, "credits", "history"); entry == "" || !strings.Contains(out, "purchase (dev)") || !strings.Contains(out, "+100") {
		t.Fatalf("step 8: history\n%s", out)
	}
	e2eEventually(t, "step 8: ledger proof", func() string {
		out, err := cliRun(t, "", "ledger", "proof", entry)
		if err != nil {
			return err.Error()
		}
		if !strings.Contains(out, entry) {
			return out
		}
		return ""
	})
	if out := mustCLI(t, "ledger", "verify", entry); !strings.HasPrefix(out, "VERIFIED") {
		t.Fatalf("step 8: verify\n%s", out)
	}
}
