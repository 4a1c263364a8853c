package main

import (
	"context"
	"fmt"
	"testing"

	"github.com/rendertrust/rendertrust/client"
	"github.com/rendertrust/rendertrust/node"
)

// TestLocalNodeAttemptAfterSIGKILL kills the real server binary (serve
// --dev, SQLite) while its in-process local node runs a job, and checks the
// attempt the kill cut short is not left RUNNING:
//
//  1. a creator registers and buys credits; a cpu_benchmark job of
//     BenchmarkRoundsMax rounds (minutes of work) starts on the local node;
//  2. the server is SIGKILLed, its local node with it;
//  3. after the restart, within e2eWait, the job's first attempt has ended
//     and the job is retried (a second attempt), nothing charged for it.
//
// The restarted local node keeps its identity (node.json in the data dir)
// and heartbeats at once, so the node-lost sweep never fires: only the node
// telling the server what it lost ends the attempt.
func TestLocalNodeAttemptAfterSIGKILL(t *testing.T) {
	skipIfShort(t, "starts and kills the server binary")
	dir := t.TempDir()
	r := newCrashRun(t, crashBinary(t), dir, []string{"--data-dir", dir})
	t.Cleanup(r.kill)
	r.start()
	c := r.client()
	ctx := context.Background()
	if _, err := c.Register(ctx, "local-node@example.com", "Local", "local node password"); err != nil {
		t.Fatalf("step 1: register: %v", err)
	}
	if _, err := c.Checkout(ctx, "credits_100"); err != nil {
		t.Fatalf("step 1: checkout: %v", err)
	}
	// The local node may not have sent its first heartbeat yet: a refusal
	// for want of a healthy node writes nothing, so the submission is sent
	// again (with one idempotency key) until it is accepted.
	var long string
	e2eEventually(t, "step 1: the submission accepted", func() string {
		sub, err := c.SubmitJob(ctx, client.SubmitRequest{JobType: client.JobCPUBenchmark, IdempotencyKey: "long",
			Payload: map[string]any{"rounds": node.BenchmarkRoundsMax}})
		if err != nil {
			return err.Error()
		}
		long = sub.JobID
		return ""
	})
	e2eEventually(t, "step 1: the job runs on the local node", func() string {
		return jobState(ctx, c, long, func(j client.Job) bool { return j.Status == client.StatusRunning })
	})

	r.kill() // step 2
	r.start()
	c = r.client()
	if _, err := c.Login(ctx, "local-node@example.com", "local node password"); err != nil {
		t.Fatalf("step 3: login: %v", err)
	}
	e2eEventually(t, "step 3: the killed attempt ended and the job is retried", func() string {
		return jobState(ctx, c, long, func(j client.Job) bool { return j.Attempts >= 2 && j.Charged == 0 })
	})
}

// jobState returns "" when job satisfies ok, else what it is now.
func jobState(ctx context.Context, c *client.Client, id string, ok func(client.Job) bool) string {
	j, err := c.GetJob(ctx, id)
	if err != nil {
		return err.Error()
	}
	if ok(j) {
		return ""
	}
	return fmt.Sprintf("job %s is %s, attempt %d, last error %q", id, j.Status, j.Attempts, j.LastError)
}
