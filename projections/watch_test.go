package projections

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/rendertrust/rendertrust/domain"
)

// TestWatcherFollowsAnotherProcess: a runner in one "process" and a
// Watcher on another handle of its PostgreSQL database (another process):
// 1. once the watcher listens, each grant's position is reached through
// the runner's notification alone (the watcher's poll is an hour); 2. a
// position the runner never reaches times out with ErrWaitTimeout; 3. a
// Watcher refuses SQLite.
func TestWatcherFollowsAnotherProcess(t *testing.T) {
	e := postgresEnv(t)
	r := mustStart(t, e, e.db, nil)
	w, err := NewWatcher(e.reopen(t), nil, quietLogger)
	if err != nil {
		t.Fatal(err)
	}
	w.poll = time.Hour
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	waitListening(t, e)

	a := domain.NewAccount("u1")
	for i := range 5 {
		ev, err := a.Grant(fmt.Sprintf("g%d", i), 5, "welcome", time.Now().UTC())
		pos := mustDecide(t, e.store, a, domain.AccountStream("u1"), ev, err)
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		err = w.WaitFor(ctx, pos)
		cancel()
		if err != nil {
			t.Fatalf("step 1, grant %d: the watcher did not see position %d: %v (runner at %v, watcher at %v)", i, pos, err, r.Positions(), w.Positions())
		}
		if b, _ := NewReader(e.db).Balance(context.Background(), "u1"); b.Balance != int64(5*(i+1)) {
			t.Fatalf("step 1: the watcher passed %d before the read model shows the grant (balance %d)", pos, b.Balance)
		}
	}

	w.Max = 200 * time.Millisecond
	head := mustWait(t, r, e.store)
	if err := w.WaitFor(context.Background(), head+1); !errors.Is(err, ErrWaitTimeout) {
		t.Fatalf("step 2: WaitFor past the head = %v, want ErrWaitTimeout", err)
	}
	if _, err := NewWatcher(sqliteEnv(t).db, nil, quietLogger); err == nil {
		t.Fatal("step 3: a Watcher on SQLite")
	}
}

// waitListening waits until a backend of e's database has LISTENed to the
// projections' channel (its last statement).
func waitListening(t *testing.T, e env) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for {
		var n int
		err := e.db.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query = ?`, "LISTEN "+projectedChannel).Scan(&n)
		if err == nil && n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the watcher never listened (%v)", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
