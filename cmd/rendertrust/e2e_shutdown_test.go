package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rendertrust/rendertrust/client"
	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/eventstore"
	"github.com/rendertrust/rendertrust/eventstore/sqlite"
)

// serveProcessEnv marks a run of the test binary as a `rendertrust serve`
// process (the arguments after "--"), which a test can send signals to.
const serveProcessEnv = "RENDERTRUST_TEST_SERVE_PROCESS"

// shutdownPromptMax bounds a SIGTERM shutdown of serve --dev with a busy
// local node: its drain timeout plus the time to report and close (the dev chain
// flushes its state, slowly in a race-enabled binary on a busy machine).
const shutdownPromptMax = localNodeDrainTimeout + 30*time.Second

// runServeProcess runs `rendertrust serve` as main() does, with SIGTERM
// stopping it, and exits.
func runServeProcess() {
	args := os.Args[1:]
	for i, a := range args {
		if a == "--" {
			args = args[i+1:]
			break
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd := newServeCommand()
	cmd.SetArgs(args)
	if err := cmd.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "rendertrust serve:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// TestShutdownWithBusyLocalNode:
//  1. serve --dev runs as a process with its local node;
//  2. a creator submits cpu_benchmark jobs; the node starts the first;
//  3. SIGTERM: the process exits cleanly within shutdownPromptMax;
//  4. the log has no job left RUNNING or DISPATCHED to the stopped node:
//     what the node ran was completed (its result uploaded) or handed back,
//     and the node's state holds no unreported job.
func TestShutdownWithBusyLocalNode(t *testing.T) {
	skipIfShort(t, "starts a server process")
	dir := t.TempDir()
	// 1.
	cmd := exec.Command(os.Args[0], "--", "--dev", "--addr", "127.0.0.1:0", "--data-dir", dir, "--no-anchor", "--log-level", "debug")
	cmd.Env = append(crashServerEnv(), serveProcessEnv+"=1") // only flags configure it: no DATABASE_URL from make test
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	addr := make(chan string, 1)
	var logs lockedLog
	go scanServeLog(stderr, addr, &logs)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	var base string
	select {
	case a := <-addr:
		base = "http://" + a
	case err := <-exited:
		t.Fatalf("step 1: the server exited: %v", err)
	case <-time.After(2 * e2eWait):
		t.Fatal("step 1: the server did not start")
	}
	// 2.
	c := e2eCreatorWithCredits(t, base)
	e2eEventually(t, "step 2: the local node healthy", func() string {
		_, err := c.SubmitJob(context.Background(), client.SubmitRequest{JobType: client.JobCPUBenchmark, Payload: json.RawMessage(`{"rounds":2000000}`)})
		if err != nil {
			return err.Error()
		}
		return ""
	})
	for range 4 {
		e2eSubmit(t, c, client.SubmitRequest{JobType: client.JobCPUBenchmark, Payload: json.RawMessage(`{"rounds":2000000}`)})
	}
	e2eEventually(t, "step 2: a job running", func() string {
		running, err := c.ListJobs(context.Background(), client.StatusRunning)
		if err != nil {
			return err.Error()
		}
		if len(running) == 0 {
			return "none running yet"
		}
		return ""
	})
	// 3.
	start := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("step 3: the server after SIGTERM: %v", err)
		}
	case <-time.After(shutdownPromptMax):
		t.Fatalf("step 3: the server still ran %v after SIGTERM", shutdownPromptMax)
	}
	t.Logf("shutdown took %v:\n%s", time.Since(start).Round(time.Millisecond), grepLines(logs.String(), "shut"))
	// 4.
	checkNothingLeftRunning(t, dir)
}

// checkNothingLeftRunning reads the stopped server's log and the local
// node's state (step 4).
func checkNothingLeftRunning(t *testing.T, dir string) {
	t.Helper()
	store, err := sqlite.Open(context.Background(), filepath.Join(dir, "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	status := map[domain.JobID]string{}
	for from := uint64(1); ; {
		recs, err := store.ReadAll(context.Background(), from, eventstore.ReadEventsMax)
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range recs {
			e, err := domain.DecodeEvent(rec.Type, rec.Data)
			if err != nil {
				continue
			}
			switch e := e.(type) {
			case domain.JobDispatched:
				status[e.JobID] = "dispatched"
			case domain.JobStarted:
				status[e.JobID] = "running"
			case domain.JobCompleted:
				status[e.JobID] = "ended"
			case domain.JobFailed:
				status[e.JobID] = "handed back: " + e.Error
			case domain.JobTimedOut:
				status[e.JobID] = "timed out"
			}
		}
		if len(recs) < eventstore.ReadEventsMax {
			break
		}
		from = recs[len(recs)-1].Position + 1
	}
	completed := 0
	for job, st := range status {
		if st == "running" {
			t.Errorf("step 4: job %s left RUNNING: its result was lost", job)
		}
		if st == "ended" {
			completed++
		}
	}
	if completed == 0 {
		t.Errorf("step 4: no job ended: %v", status)
	}
	var state struct {
		Jobs []string `json:"jobs"`
	}
	b, _ := os.ReadFile(filepath.Join(dir, "node.json"))
	json.Unmarshal(b, &state)
	if len(state.Jobs) > 0 {
		t.Errorf("step 4: the local node stopped with unreported jobs %v", state.Jobs)
	}
}

var servingAddr = regexp.MustCompile(`msg=serving addr=(\S+)`)

// scanServeLog copies the server's log into logs and sends the address it
// serves on.
func scanServeLog(r io.Reader, addr chan<- string, logs *lockedLog) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		logs.add(sc.Text())
		if m := servingAddr.FindStringSubmatch(sc.Text()); m != nil {
			addr <- m[1]
		}
	}
}

// lockedLog collects lines from one goroutine for another.
type lockedLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *lockedLog) add(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, line)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}
