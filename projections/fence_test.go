package projections

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rendertrust/rendertrust/cluster"
	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/internal/sqldb"
)

// TestRunnerFencedByTerm: a runner that leads the projections role under a
// term: 1. projects while its term lasts; 2. once another process has
// started a new term — and before this one has noticed (its ping is an
// hour) — its batches are refused and nothing is written: the balance and
// the checkpoints stay where they were.
func TestRunnerFencedByTerm(t *testing.T) {
	e := postgresEnv(t)
	dsn := e.dsn
	slow := cluster.NewElector(cluster.Config{DSN: dsn, Holder: "old", PingInterval: time.Hour, Logger: quietLogger})
	ctx := context.Background()
	term, err := slow.Campaign(ctx, cluster.RoleProjections)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(term.Resign)
	r, err := NewRunner(Config{DB: e.db, Store: e.store, Registerer: prometheus.NewRegistry(), Logger: quietLogger,
		Fence: func(ctx context.Context, tx *sqldb.Tx) error { return term.Fence(ctx, tx.Tx) }})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Stop() })

	a := domain.NewAccount("u1")
	grant := func(i int) uint64 {
		ev, err := a.Grant(fmt.Sprintf("g%d", i), 5, "welcome", time.Now().UTC())
		return mustDecide(t, e.store, a, domain.AccountStream("u1"), ev, err)
	}
	grant(0)
	mustWait(t, r, e.store)

	var pid int
	if err := e.db.QueryRow(ctx, `SELECT pid FROM pg_stat_activity WHERE application_name = 'rendertrust-leader' AND datname = current_database()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.Exec(ctx, `SELECT pg_terminate_backend(?)`, pid); err != nil {
		t.Fatal(err)
	}
	next, err := cluster.NewElector(cluster.Config{DSN: dsn, Holder: "new", Logger: quietLogger}).Campaign(ctx, cluster.RoleProjections)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(next.Resign)

	pos := grant(1)
	wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := r.WaitFor(wctx, pos); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("step 2: the deposed runner reached %d: %v", pos, err)
	}
	if b, _ := NewReader(e.db).Balance(ctx, "u1"); b.Balance != 5 {
		t.Fatalf("step 2: balance %d after the deposed runner's batch, want 5 (only the first grant)", b.Balance)
	}
	var highest int64
	if err := e.db.QueryRow(ctx, `SELECT MAX(position) FROM projection_checkpoints`).Scan(&highest); err != nil || uint64(highest) >= pos {
		t.Fatalf("step 2: a checkpoint at %d (%v), want below %d", highest, err, pos)
	}
}
