package domain

import (
	"errors"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

// jobEdges are the only status changes a job may make.
var jobEdges = map[[2]Status]bool{
	{StatusQueued, StatusDispatched}:    true,
	{StatusQueued, StatusCancelled}:     true,
	{StatusDispatched, StatusRunning}:   true,
	{StatusDispatched, StatusQueued}:    true, // failure or timeout, retry left
	{StatusDispatched, StatusFailed}:    true, // failure or timeout, no retry left
	{StatusDispatched, StatusCancelled}: true,
	{StatusRunning, StatusCompleted}:    true,
	{StatusRunning, StatusQueued}:       true,
	{StatusRunning, StatusFailed}:       true,
}

// randomJobOp returns one random job command. Nodes come from a pool of
// three, so wrong-node reports are common; hashes are sometimes malformed.
func randomJobOp(r *rand.Rand, j *Job, now time.Time) (string, []Event, error) {
	node := []NodeID{"n1", "n2", "n3"}[r.IntN(3)]
	switch n := r.IntN(20); {
	case n < 4:
		ev, err := j.Dispatch(node, now)
		return "dispatch", ev, err
	case n < 8:
		ev, err := j.Start(node, now)
		return "start", ev, err
	case n < 12:
		hash := sha
		if r.IntN(4) == 0 {
			hash = "xyz"
		}
		ev, err := j.Complete(node, hash, int64(r.IntN(1000)), now)
		return "complete", ev, err
	case n < 16:
		ev, err := j.Fail(node, "boom", now)
		return "fail", ev, err
	case n < 19:
		ev, err := j.TimeOut(now)
		return "timeout", ev, err
	case n == 19 && r.IntN(4) == 0: // rare, so that jobs get far
		ev, err := j.Cancel("user asked", now)
		return "cancel", ev, err
	default:
		ev, err := j.Dispatch(node, now)
		return "dispatch", ev, err
	}
}

// checkJobState checks the job invariants that hold in every status.
func checkJobState(tb testing.TB, j *Job) {
	tb.Helper()
	s := j.Status()
	switch {
	case j.Attempts() < 0 || j.Attempts() > AttemptsMax:
		tb.Fatalf("attempts %d outside 0..%d", j.Attempts(), AttemptsMax)
	case s == StatusQueued && j.Node() != "":
		tb.Fatalf("QUEUED job on node %s", j.Node())
	case (s == StatusDispatched || s == StatusRunning) && j.Node() == "":
		tb.Fatalf("%s job has no node", s)
	case s == StatusFailed && j.Attempts() != AttemptsMax:
		tb.Fatalf("FAILED after %d attempts, want %d", j.Attempts(), AttemptsMax)
	case s == StatusCompleted && len(j.ResultSHA256()) != 64:
		tb.Fatalf("COMPLETED without a result hash")
	case s.Terminal() != !j.FinishedAt().IsZero():
		tb.Fatalf("status %s with finished at %v", s, j.FinishedAt())
	}
}

// TestJobProperties runs random command histories against a job and checks
// that it never reaches an invalid state or makes a status change outside
// the lifecycle, that failed commands change nothing and return application
// errors, that a terminal job accepts no command, that exactly terminal jobs
// settle their hold, once; and that rebuilding from the (encoded and decoded)
// events gives an equal job.
func TestJobProperties(t *testing.T) {
	seeds, steps := uint64(3000), 40
	if testing.Short() {
		seeds = 300
	}
	for seed := range seeds {
		r := rand.New(rand.NewPCG(seed, 0x10b))
		j := NewJob("j1")
		s := submission()
		s.Priority = []Priority{PriorityLow, PriorityNormal, PriorityHigh}[r.IntN(3)]
		history, err := j.Submit(s, t0)
		mustDecide(t, j, history, err)
		now, settlements := t0, 0
		for step := range steps {
			now = now.Add(time.Duration(r.IntN(180)) * time.Second)
			before := j.Snapshot()
			op, events, err := randomJobOp(r, j, now)
			if err != nil {
				var appErr *Error
				if !errors.As(err, &appErr) || appErr.Code == CodeInternal || len(events) != 0 {
					t.Fatalf("seed %d step %d %s: err %v with %d events", seed, step, op, err, len(events))
				}
				if !reflect.DeepEqual(j, before) {
					t.Fatalf("seed %d step %d %s: failed command changed the job", seed, step, op)
				}
				continue
			}
			if before.Status().Terminal() {
				t.Fatalf("seed %d step %d: %s accepted in terminal %s", seed, step, op, before.Status())
			}
			for _, e := range events {
				j.Apply(e)
				if _, ok := SettlementOf(e); ok {
					settlements++
				}
			}
			history = append(history, events...)
			if edge := [2]Status{before.Status(), j.Status()}; !jobEdges[edge] {
				t.Fatalf("seed %d step %d %s: illegal change %s → %s", seed, step, op, edge[0], edge[1])
			}
			checkJobState(t, j)
		}
		if want := map[bool]int{true: 1, false: 0}[j.Status().Terminal()]; settlements != want {
			t.Fatalf("seed %d: %d settlements in status %s, want %d", seed, settlements, j.Status(), want)
		}
		mustRoundTrip(t, history)
		if got := loadJob("j1", history); !reflect.DeepEqual(got, j) {
			t.Fatalf("seed %d: rebuilt job differs:\n got %+v\nwant %+v", seed, got, j)
		}
	}
}
