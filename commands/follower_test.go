package commands_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/rendertrust/rendertrust/commands"
	"github.com/rendertrust/rendertrust/dispatch"
	"github.com/rendertrust/rendertrust/domain"
)

// TestFollowerOfAssignmentsOnly: a second service, as an API process
// without the dispatcher role (dispatch.Dispatcher.FollowAssignmentsOnly),
// with its Follower running:
//  1. learns the node from the log, so it accepts submissions (a healthy
//     node), and submits three jobs without keeping them: its registry
//     holds no waiting job (the leader's business);
//  2. learns the leader's dispatch from the log: the node's assignment,
//     with a wake-up for its long poll;
//  3. the node starts and completes the job through it: the registry
//     forgets the job once the follower has read the completion.
func TestFollowerOfAssignmentsOnly(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		d := dispatch.New(e.clock.Now, 0, nil)
		d.FollowAssignmentsOnly()
		api, err := commands.New(ctx, commands.Config{Store: d.Watch(e.store), DB: e.db, Dispatcher: d, Now: e.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); commands.NewFollower(api).Run(rctx) }()
		t.Cleanup(func() { cancel(); <-done })
		reg := d.Registry()
		e.mustNode(t, "node-a", 1, false)
		e.mustGrant(t, "u1", 30)

		// 1.
		if err := api.Heartbeat(ctx, "node-a"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "step 1: the node's enrollment read", func() bool { return reg.HealthyFor(domain.JobRender, false, e.clock.Now()) })
		changed := reg.Changed()
		var jobs []domain.JobID
		for range 3 {
			p, _ := domain.PayloadURI("s3://bucket/scene.blend")
			sub, err := api.SubmitJob(ctx, commands.Actor{ID: "user:u1"}, commands.SubmitJob{Owner: "u1", Type: domain.JobRender, Payload: p})
			if err != nil || sub.Status != domain.StatusQueued {
				t.Fatalf("step 1: submit: %+v, %v; want QUEUED", sub, err)
			}
			jobs = append(jobs, sub.JobID)
		}
		if n := reg.WaitingCount(); n != 0 {
			t.Fatalf("step 1: the registry keeps %d waiting jobs, want none", n)
		}

		// 2.
		follow(t, e.svc, e.head(t)) // the leader reads the submissions and dispatches one
		var first domain.JobID
		waitFor(t, "step 2: the dispatch read", func() bool {
			a := reg.Assigned("node-a")
			if len(a) == 1 {
				first = a[0]
			}
			return len(a) == 1
		})
		if !slices.Contains(jobs, first) {
			t.Fatalf("step 2: node-a assigned %s, not one of the jobs submitted %v", first, jobs)
		}
		select {
		case <-changed:
		default:
			t.Fatal("step 2: no wake-up for the node's long poll")
		}

		// 3.
		if _, err := api.StartJob(ctx, system, "node-a", first); err != nil {
			t.Fatal(err)
		}
		if _, err := api.CompleteJob(ctx, system, "node-a", first, sha, 1); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "step 3: the completion read", func() bool {
			return len(reg.JobsOf("node-a")) == 0 && reg.JobNode(first) == ""
		})
	})
}

// waitFor polls cond until it holds, failing the test after 20 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 20 s", what)
		}
	}
}
