package projections

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/internal/sqldb"
	"github.com/rendertrust/rendertrust/projections/projectiontest"
)

// grantsProjection counts each user's grants; version 2 adds a column, so
// its tables get another fingerprint.
type grantsProjection struct{ version int }

func (grantsProjection) Name() string { return "grants" }

func (g grantsProjection) Tables() []Table {
	cols := []string{"user_id TEXT NOT NULL", "n BIGINT NOT NULL"}
	if g.version == 2 {
		cols = append(cols, "total BIGINT NOT NULL")
	}
	return []Table{{Name: "rm_grants", Columns: cols, PrimaryKey: []string{"user_id"}}}
}

func (g grantsProjection) Apply(ctx context.Context, tx *sqldb.Tx, t Tables, events []Event) error {
	for _, e := range events {
		d, ok := e.Decoded.(domain.CreditsGranted)
		if !ok {
			continue
		}
		q := "INSERT INTO " + t.Name("rm_grants") + " (user_id, n) VALUES (?, 1) ON CONFLICT (user_id) DO UPDATE SET n = " + t.Name("rm_grants") + ".n + 1"
		args := []any{string(d.UserID)}
		if g.version == 2 {
			q = "INSERT INTO " + t.Name("rm_grants") + " (user_id, n, total) VALUES (?, 1, ?) ON CONFLICT (user_id) DO UPDATE SET n = " +
				t.Name("rm_grants") + ".n + 1, total = " + t.Name("rm_grants") + ".total + excluded.total"
			args = append(args, int64(d.Amount))
		}
		if _, err := tx.Exec(ctx, q, args...); err != nil {
			return err
		}
	}
	return nil
}

// TestChangedTablesAreRebuilt checks that a runner whose projection's
// tables changed since they were built rebuilds it, and waits for that:
//  1. version 1 of a projection is built and stopped;
//  2. a runner of version 2 starts; Status reports the projection stale;
//  3. WaitFor returns once version 2's tables are swapped in, complete.
func TestChangedTablesAreRebuilt(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, e env) {
		a := domain.NewAccount("u1")
		for _, id := range []string{"g1", "g2", "g3"} {
			ev, err := a.Grant(id, 5, "welcome", time.Now())
			mustDecide(t, e.store, a, domain.AccountStream("u1"), ev, err)
		}
		r1 := mustStart(t, e, e.db, []Projection{grantsProjection{1}})
		mustWait(t, r1, e.store)
		r1.Stop()

		st, err := ReadStatus(context.Background(), e.db, e.store, []Projection{grantsProjection{2}})
		if err != nil || len(st) != 1 || !st[0].Stale {
			t.Fatalf("Status = %+v, %v; want grants stale", st, err)
		}
		r2 := mustStart(t, e, e.reopen(t), []Projection{grantsProjection{2}})
		mustWait(t, r2, e.store)
		var n, total int64
		if err := e.db.QueryRow(context.Background(), "SELECT n, total FROM rm_grants WHERE user_id = 'u1'").Scan(&n, &total); err != nil || n != 3 || total != 15 {
			t.Fatalf("rm_grants = %d, %d, %v; want 3 grants of 15 credits", n, total, err)
		}
	})
}

// TestConcurrentRebuildsOneWins prepares two rebuilds of the same
// projection, then runs both: the second to swap fails with
// ErrConcurrentRebuild and leaves the first one's tables in service.
func TestConcurrentRebuildsOneWins(t *testing.T) {
	t.Parallel()
	e := sqliteEnv(t)
	sim := projectiontest.NewSim(projectiontest.Config{Users: 5, Submits: 4})
	projectiontest.MustLoad(t, e.store, sim, 300)
	r := mustStart(t, e, e.db, nil)
	mustWait(t, r, e.store)
	want := dump(t, e.db, All())
	ctx := context.Background()
	var rbs []*rebuild
	for range 2 {
		rb, err := newRebuild(e.db, e.store, RebuildOptions{Names: []string{"jobs"}, Logger: quietLogger})
		if err != nil {
			t.Fatal(err)
		}
		if err := rb.prepare(ctx); err != nil {
			t.Fatal(err)
		}
		rbs = append(rbs, rb)
	}
	if _, err := rbs[0].run(ctx); err != nil {
		t.Fatalf("first rebuild: %v", err)
	}
	if _, err := rbs[1].run(ctx); !errors.Is(err, ErrConcurrentRebuild) {
		t.Fatalf("second rebuild = %v, want ErrConcurrentRebuild", err)
	}
	rbs[1].discard()
	diffRows(t, "after the race", dump(t, e.db, All()), want)
	gens, err := listGenerations(ctx, e.db, jobsView)
	if err != nil || len(gens) != 2 {
		t.Fatalf("jobs generations = %v, %v; want the old and the winner's", gens, err)
	}
}

// TestStatusAndProgress checks Status's lag before and after a runner
// catches up, and the rebuild's progress reports.
func TestStatusAndProgress(t *testing.T) {
	t.Parallel()
	e := sqliteEnv(t)
	ctx := context.Background()
	st, err := ReadStatus(ctx, e.db, e.store, nil)
	if err != nil || len(st) != len(All()) || st[0].Built {
		t.Fatalf("Status of a fresh database = %+v, %v; want every projection not built", st, err)
	}
	sim := projectiontest.NewSim(projectiontest.Config{Users: 5, Submits: 4})
	head := projectiontest.MustLoad(t, e.store, sim, 300)
	var reported []uint64
	res, err := Rebuild(ctx, e.db, e.store, RebuildOptions{Names: []string{"balances"}, Progress: func(n uint64) { reported = append(reported, n) }, Logger: quietLogger})
	if err != nil {
		t.Fatal(err)
	}
	if len(reported) == 0 || !slices.IsSorted(reported) || reported[len(reported)-1] != res.Events || res.Events != head {
		t.Errorf("progress reported %v, want rising counts ending at the %d events replayed (head %d)", reported, res.Events, head)
	}
	st, err = ReadStatus(ctx, e.db, e.store, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st {
		caughtUp := s.Name == "balances"
		if (s.LagEvents == 0) != caughtUp || s.Head != head || (s.LagSeconds > 0) == caughtUp {
			t.Errorf("status %+v: want caught up only for balances", s)
		}
	}
	for _, s := range st {
		if s.Built != (s.Name == "balances") {
			t.Errorf("status %+v: want only balances built", s)
		}
	}
	if _, err := Rebuild(ctx, e.db, e.store, RebuildOptions{Names: []string{"ledger"}}); !errors.Is(err, ErrUnknownProjection) {
		t.Errorf("Rebuild(ledger) = %v, want ErrUnknownProjection", err)
	}
}
