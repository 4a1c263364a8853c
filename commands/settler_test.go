package commands_test

import (
	"context"
	"database/sql"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rendertrust/rendertrust/commands"
	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/internal/sqldb"
)

// completeJobs submits, starts and completes n render jobs of user on node.
func completeJobs(tb testing.TB, e *env, user domain.UserID, node domain.NodeID, n int) []domain.JobID {
	tb.Helper()
	var ids []domain.JobID
	for range n {
		sub := e.mustSubmit(tb, user, domain.JobRender)
		if _, err := e.svc.StartJob(ctx, system, node, sub.JobID); err != nil {
			tb.Fatal(err)
		}
		if _, err := e.svc.CompleteJob(ctx, system, node, sub.JobID, sha, 1); err != nil {
			tb.Fatal(err)
		}
		ids = append(ids, sub.JobID)
	}
	return ids
}

// deductions counts the credits.deducted events of each job in the log.
func deductions(tb testing.TB, e *env) map[domain.JobID]int {
	tb.Helper()
	out := map[domain.JobID]int{}
	for _, ev := range e.allEvents(tb) {
		if d, ok := ev.(domain.CreditsDeducted); ok {
			out[d.JobID]++
		}
	}
	return out
}

// runSettler runs r until the returned stop is called.
func runSettler(r *commands.Reactor) (stop func()) {
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); r.Run(rctx) }()
	return func() { cancel(); <-done }
}

// TestTwoSettlersChargeOnce: the reactor role's settlements are not fenced
// but idempotent. Two settlers of two write sides (two processes: a
// deposed leader that has not noticed yet and its successor) settle the
// same completed jobs at once, from the start of the log; every job is
// charged exactly once and the balance is right.
func TestTwoSettlersChargeOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		e.mustNode(t, "node-a", 8, false)
		e.mustGrant(t, "u1", 100)
		jobs := completeJobs(t, e, "u1", "node-a", 5)
		other, err := newService(ctx, e.store, e.db, e.clock.Now)
		if err != nil {
			t.Fatal(err)
		}
		first, second := commands.NewSettler(e.svc, time.Minute, nil), commands.NewSettler(other, time.Minute, nil)
		defer runSettler(first)()
		defer runSettler(second)()
		e.settle(t, first)
		e.settle(t, second)

		got := deductions(t, e)
		for _, id := range jobs {
			if got[id] != 1 {
				t.Errorf("job %s deducted %d times, want 1", id, got[id])
			}
		}
		acc, _ := e.svc.Account(ctx, "u1")
		if bal := acc.Balance(); bal != 100-5*10 {
			t.Errorf("balance %d, want %d", bal, 100-5*10)
		}
	})
}

// TestDeposedSettlerSavesNoCheckpoint: a settler whose fence says it was
// deposed still makes only idempotent settlements, and never moves the
// checkpoint its successor resumes from.
func TestDeposedSettlerSavesNoCheckpoint(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		e.mustNode(t, "node-a", 8, false)
		e.mustGrant(t, "u1", 100)
		jobs := completeJobs(t, e, "u1", "node-a", 2)
		var fenced atomic.Int32
		deposed := func(context.Context, *sqldb.Tx) error {
			fenced.Add(1)
			return &domain.Error{Code: domain.CodeUnavailable, Message: "this process no longer leads the role"}
		}
		stop := runSettler(commands.NewSettler(e.svc, time.Minute, deposed))
		deadline := time.Now().Add(30 * time.Second)
		for fenced.Load() == 0 || len(deductions(t, e)) < len(jobs) {
			if time.Now().After(deadline) {
				t.Fatalf("the deposed settler did not reach its checkpoint: fence ran %d times, deductions %v", fenced.Load(), deductions(t, e))
			}
			time.Sleep(10 * time.Millisecond)
		}
		stop()
		var pos int64
		err := e.db.QueryRow(ctx, `SELECT position FROM reactor_checkpoints WHERE name = 'settlement'`).Scan(&pos)
		if err == nil {
			t.Fatalf("a deposed settler saved checkpoint %d", pos)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			t.Fatal(err)
		}
	})
}
