package projections

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/eventstore"
	"github.com/rendertrust/rendertrust/projections/projectiontest"
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

// Bounds of the laziness test: the runner batches it notifies, and the
// checkpoint reads they may cause while no one waits (the Watcher's Start
// and a reconnect, not one per notification).
const (
	lazyBatches          = 200
	lazyIdleRefreshesMax = 5
)

// TestWatcherRefreshesOnlyForWaiters: a notification only marks the
// Watcher's positions stale; it reads them when someone waits.
// 1. With no one waiting, lazyBatches runner batches (one notification
// each, all received) cause at most lazyIdleRefreshesMax reads.
// 2. A WaitFor for the last batch's position then returns (the poll is an
// hour away, so only its own read can wake it).
func TestWatcherRefreshesOnlyForWaiters(t *testing.T) {
	e := postgresEnv(t)
	r := mustStart(t, e, e.db, nil)
	w := mustWatch(t, e, time.Hour)
	notifiedBefore, refreshesBefore := w.notified.Load(), w.refreshes.Load()

	a := domain.NewAccount("u1")
	for i := range lazyBatches {
		ev, err := a.Grant(fmt.Sprintf("g%d", i), 1, "welcome", time.Now().UTC())
		mustDecide(t, e.store, a, domain.AccountStream("u1"), ev, err)
		mustWait(t, r, e.store) // one batch, one notification
	}
	head := mustWait(t, r, e.store)
	waitUntil(t, "the watcher received every notification", func() bool {
		return w.notified.Load()-notifiedBefore >= lazyBatches
	})
	if got := w.refreshes.Load() - refreshesBefore; got > lazyIdleRefreshesMax {
		t.Fatalf("step 1: %d notifications and no waiter caused %d checkpoint reads, want at most %d",
			w.notified.Load()-notifiedBefore, got, lazyIdleRefreshesMax)
	}

	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := w.WaitFor(ctx, head); err != nil {
		t.Fatalf("step 2: WaitFor(%d) after the notifications: %v (runner at %v)", head, err, r.Positions())
	}
	t.Logf("WaitFor(%d) returned after %s; %d checkpoint reads in all", head, time.Since(start), w.refreshes.Load()-refreshesBefore)
}

// Size of the wake-up race: goroutines each granting and waiting rounds
// times.
const (
	wakeGoroutines = 16
	wakeRounds     = 10
)

// TestWatcherWakesEveryWaiter: waiters register while notifications race
// (each goroutine's grants are the others' notifications). Every other
// round a goroutine first waits for the runner to commit its grant, so its
// notification arrives just as it registers; otherwise it registers before
// the runner's batch. The poll is an hour away, so a lost wake-up holds
// its WaitFor until Max and fails it: each of wakeGoroutines × wakeRounds
// waits returns within Max.
func TestWatcherWakesEveryWaiter(t *testing.T) {
	e := postgresEnv(t)
	r := mustStart(t, e, e.db, nil)
	w := mustWatch(t, e, time.Hour)

	var (
		wg      sync.WaitGroup
		slowest atomic.Int64
	)
	errs := make(chan error, wakeGoroutines)
	for g := range wakeGoroutines {
		wg.Go(func() {
			user := fmt.Sprintf("u%d", g)
			a := domain.NewAccount(domain.UserID(user))
			for i := range wakeRounds {
				pos, err := grant(e.store, a, user, i)
				if err != nil {
					errs <- err
					return
				}
				if i%2 == 1 {
					if err := r.WaitFor(context.Background(), pos); err != nil {
						errs <- fmt.Errorf("%s, grant %d: the runner's WaitFor(%d): %w", user, i, pos, err)
						return
					}
				}
				start := time.Now()
				if err := w.WaitFor(context.Background(), pos); err != nil {
					errs <- fmt.Errorf("%s, grant %d: WaitFor(%d) after %s: %w", user, i, pos, time.Since(start), err)
					return
				}
				took := int64(time.Since(start))
				for cur := slowest.Load(); took > cur && !slowest.CompareAndSwap(cur, took); cur = slowest.Load() {
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("slowest of %d waits: %s; %d notifications, %d checkpoint reads",
		wakeGoroutines*wakeRounds, time.Duration(slowest.Load()), w.notified.Load(), w.refreshes.Load())
}

// TestWatcherExcludesFailingProjection: a projection recorded as failing
// stops holding a waiter up, though recording it notifies no one.
// 1. Only balances runs, so the other projections hold a WaitFor up.
// 2. Once the others are recorded in projection_failures, the poll's read
// (the waiter is there) lets the WaitFor return.
func TestWatcherExcludesFailingProjection(t *testing.T) {
	e := postgresEnv(t)
	r := mustStart(t, e, e.db, []Projection{balancesProjection{}})
	w := mustWatch(t, e, 50*time.Millisecond)
	w.Max = testTimeout

	a := domain.NewAccount("u1")
	ev, err := a.Grant("g1", 5, "welcome", time.Now().UTC())
	pos := mustDecide(t, e.store, a, domain.AccountStream("u1"), ev, err)
	mustWait(t, r, e.store)
	done := make(chan error, 1)
	go func() { done <- w.WaitFor(context.Background(), pos) }()
	waitUntil(t, "the WaitFor registered", func() bool { return w.waiters.Load() > 0 })
	select {
	case err := <-done:
		t.Fatalf("step 1: WaitFor(%d) returned (%v) while only balances reached it (watcher at %v)", pos, err, w.Positions())
	case <-time.After(3 * w.poll):
	}

	for _, name := range names(All()) {
		if name == "balances" {
			continue
		}
		if _, err := e.db.Exec(context.Background(), `INSERT INTO projection_failures (name, position, error, failed_at) VALUES (?, ?, ?, ?)`,
			name, 1, "test", time.Now().UnixMicro()); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("step 2: WaitFor(%d) = %v, want nil once the others are failing", pos, err)
		}
	case <-time.After(testTimeout):
		t.Fatalf("step 2: WaitFor(%d) still waits for the failing projections (watcher at %v)", pos, w.Positions())
	}
}

// mustWatch starts a Watcher of every projection on another handle of e's
// database, polling every poll, and waits until it listens. Its WaitFor
// gives up after WaitMax.
func mustWatch(t *testing.T, e env, poll time.Duration) *Watcher {
	t.Helper()
	w, err := NewWatcher(e.reopen(t), nil, quietLogger)
	if err != nil {
		t.Fatal(err)
	}
	w.poll = poll
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	waitListening(t, e)
	return w
}

// grant appends the i-th grant to user's account a and returns its
// position (safe off the test's goroutine, unlike mustDecide).
func grant(store eventstore.Store, a *domain.Account, user string, i int) (uint64, error) {
	evs, err := a.Grant(fmt.Sprintf("g%d", i), 1, "welcome", time.Now().UTC())
	if err != nil {
		return 0, err
	}
	before := a.Version()
	data := make([]eventstore.EventData, len(evs))
	for j, ev := range evs {
		a.Apply(ev)
		data[j] = projectiontest.EventData(ev)
	}
	res, err := store.Append(context.Background(), domain.AccountStream(domain.UserID(user)), eventstore.Exact(before), data...)
	if err != nil {
		return 0, fmt.Errorf("append to %s: %w", user, err)
	}
	return res.LastPosition, nil
}

// waitUntil polls cond until it holds, or fails t after testTimeout.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, testTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
