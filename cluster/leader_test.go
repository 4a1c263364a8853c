package cluster_test

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/rendertrust/rendertrust/cluster"
	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/internal/pgtest"
)

// takeoverMax is how soon a standby must lead after the leader's death.
const takeoverMax = 5 * time.Second

// childEnv makes the test binary a leader process for TestTakeoverAfterSIGKILL.
const childEnv = "CLUSTER_TEST_LEADER_DSN"

func TestMain(m *testing.M) {
	if dsn := os.Getenv(childEnv); dsn != "" {
		runChildLeader(dsn)
		return
	}
	os.Exit(m.Run())
}

// runChildLeader leads the anchor role, says so on stdout and waits to be
// killed.
func runChildLeader(dsn string) {
	t, err := newElector(dsn, "child").Campaign(context.Background(), cluster.RoleAnchor)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println("leading", t.Epoch)
	select {}
}

func newElector(dsn, holder string) *cluster.Elector {
	return cluster.NewElector(cluster.Config{DSN: dsn, Holder: holder, PingInterval: 100 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
}

// campaign runs Campaign in the background and returns the channel its term
// arrives on.
func campaign(t *testing.T, e *cluster.Elector, role cluster.Role) <-chan *cluster.Term {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan *cluster.Term, 1)
	var won atomic.Pointer[cluster.Term]
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(out)
		term, err := e.Campaign(ctx, role)
		if err != nil {
			if ctx.Err() == nil {
				t.Errorf("campaign %s: %v", role, err)
			}
			return
		}
		won.Store(term)
		out <- term
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		if term := won.Load(); term != nil {
			term.Resign()
		}
	})
	return out
}

func mustTerm(t *testing.T, ch <-chan *cluster.Term, within time.Duration) *cluster.Term {
	t.Helper()
	select {
	case term, ok := <-ch:
		if !ok {
			t.Fatal("campaign ended without a term")
		}
		return term
	case <-time.After(within):
		t.Fatalf("no term within %v", within)
	}
	return nil
}

// waitingForLock waits until a backend of the database waits for an
// advisory lock: a standby is queued behind the leader.
func waitingForLock(t *testing.T, db *sql.DB) {
	t.Helper()
	waitFor(t, "a standby waiting for the advisory lock", func() bool {
		var n int
		err := db.QueryRow(`SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&n)
		return err == nil && n > 0
	})
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func openDB(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// leaderPID is the backend pid holding role's lock.
func leaderPID(t *testing.T, db *sql.DB) int {
	t.Helper()
	var pid int
	err := db.QueryRow(`SELECT pid FROM pg_stat_activity WHERE application_name = 'rendertrust-leader' AND datname = current_database() AND wait_event_type IS DISTINCT FROM 'Lock' ORDER BY backend_start LIMIT 1`).Scan(&pid)
	if err != nil {
		t.Fatalf("find the leader's backend: %v", err)
	}
	return pid
}

// TestOneLeaderPerRole: 1. the first campaign for a role wins epoch 1;
// 2. a second campaign for the same role waits; 3. another role is led at
// the same time; 4. when the leader resigns the standby leads with epoch 2.
func TestOneLeaderPerRole(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	db := openDB(t, dsn)
	a, b := newElector(dsn, "a"), newElector(dsn, "b")
	first := mustTerm(t, campaign(t, a, cluster.RoleReactor), 30*time.Second)
	if first.Epoch != 1 {
		t.Fatalf("step 1: first epoch %d, want 1", first.Epoch)
	}
	standby := campaign(t, b, cluster.RoleReactor)
	waitingForLock(t, db)
	select {
	case term := <-standby:
		t.Fatalf("step 2: a second leader of the reactor role while the first leads: %+v", term)
	default:
	}
	other := mustTerm(t, campaign(t, b, cluster.RoleProjections), 30*time.Second)
	if other.Epoch != 1 {
		t.Fatalf("step 3: projections epoch %d, want 1", other.Epoch)
	}
	first.Resign()
	second := mustTerm(t, standby, takeoverMax)
	if second.Epoch != 2 {
		t.Fatalf("step 4: standby epoch %d, want 2", second.Epoch)
	}
	if err := first.Err(); err == nil {
		t.Fatal("step 4: a resigned term has no end")
	}
}

// TestTakeoverAfterConnectionDrop: 1. the leader's lock connection is
// terminated by the server; 2. the standby leads within takeoverMax; 3. the
// old term is lost and its effects are refused with ErrDeposed
// (CodeUnavailable); 4. the new term's effects pass the fence.
func TestTakeoverAfterConnectionDrop(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	db := openDB(t, dsn)
	leader := mustTerm(t, campaign(t, newElector(dsn, "a"), cluster.RoleDispatcher), 30*time.Second)
	pid := leaderPID(t, db)
	standby := campaign(t, newElector(dsn, "b"), cluster.RoleDispatcher)
	waitingForLock(t, db)

	start := time.Now()
	if _, err := db.Exec(`SELECT pg_terminate_backend($1)`, pid); err != nil {
		t.Fatalf("step 1: %v", err)
	}
	next := mustTerm(t, standby, takeoverMax)
	t.Logf("takeover after the connection dropped: %v", time.Since(start))
	select {
	case <-leader.Lost():
	case <-time.After(takeoverMax):
		t.Fatal("step 3: the deposed leader never noticed its lock's connection failed")
	}
	err := fenced(t, db, leader)
	if !cluster.IsDeposed(err) || domain.ErrorCode(err) != domain.CodeUnavailable {
		t.Fatalf("step 3: fence of the old term: %v, want ErrDeposed", err)
	}
	if err := fenced(t, db, next); err != nil {
		t.Fatalf("step 4: fence of the new term: %v", err)
	}
}

// TestFenceRefusesStaleEpoch: a term that has not yet noticed its loss (its
// watcher has not pinged) is still refused by the epoch, the check that
// does not depend on timing.
func TestFenceRefusesStaleEpoch(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	db := openDB(t, dsn)
	slow := cluster.NewElector(cluster.Config{DSN: dsn, Holder: "slow", PingInterval: time.Hour,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	old := mustTerm(t, campaign(t, slow, cluster.RoleProjections), 30*time.Second)
	pid := leaderPID(t, db)
	standby := campaign(t, newElector(dsn, "b"), cluster.RoleProjections)
	waitingForLock(t, db)
	if _, err := db.Exec(`SELECT pg_terminate_backend($1)`, pid); err != nil {
		t.Fatal(err)
	}
	mustTerm(t, standby, takeoverMax)
	if old.Err() != nil {
		t.Fatal("the slow term noticed its loss: the test would not reach the epoch check")
	}
	if err := fenced(t, db, old); !cluster.IsDeposed(err) || !strings.Contains(err.Error(), "epoch 1 replaced by 2") {
		t.Fatalf("fence of a stale term: %v, want ErrDeposed naming both epochs", err)
	}
}

// TestFenceHoldsOffTheNextTerm: an effect of the current term that passed
// its fence commits before any new term starts: 1. the leader's effect
// transaction passes the fence and stays open; 2. the leader's lock
// connection dies; 3. the standby takes the lock but waits for the epoch
// row; 4. the effect commits, and only then does the standby lead.
func TestFenceHoldsOffTheNextTerm(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	db := openDB(t, dsn)
	leader := mustTerm(t, campaign(t, newElector(dsn, "a"), cluster.RoleAnchor), 30*time.Second)
	pid := leaderPID(t, db)
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if err := leader.Fence(context.Background(), tx); err != nil {
		t.Fatalf("step 1: %v", err)
	}
	standby := campaign(t, newElector(dsn, "b"), cluster.RoleAnchor)
	waitingForLock(t, db)
	if _, err := db.Exec(`SELECT pg_terminate_backend($1)`, pid); err != nil {
		t.Fatal(err)
	}
	// The standby now holds the advisory lock and waits on the row lock
	// the effect's FOR SHARE holds (a relation/tuple lock, not advisory).
	waitFor(t, "the standby waiting for the epoch row", func() bool {
		var n int
		err := db.QueryRow(`SELECT count(*) FROM pg_stat_activity WHERE application_name = 'rendertrust-leader' AND wait_event_type = 'Lock' AND wait_event <> 'advisory' AND datname = current_database()`).Scan(&n)
		return err == nil && n > 0
	})
	select {
	case term := <-standby:
		t.Fatalf("step 3: a new term (epoch %d) started while an effect of the old one was in flight", term.Epoch)
	default:
	}
	if err := tx.Commit(); err != nil {
		t.Fatalf("step 4: commit the fenced effect: %v", err)
	}
	if next := mustTerm(t, standby, takeoverMax); next.Epoch != 2 {
		t.Fatalf("step 4: next epoch %d", next.Epoch)
	}
}

// TestTakeoverAfterSIGKILL: a leader process killed with SIGKILL is
// replaced by a standby within takeoverMax.
func TestTakeoverAfterSIGKILL(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	db := openDB(t, dsn)
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), childEnv+"="+dsn)
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { child.Process.Kill(); child.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "leading 1") {
		t.Fatalf("the child leader said %q, %v", line, err)
	}
	standby := campaign(t, newElector(dsn, "standby"), cluster.RoleAnchor)
	waitingForLock(t, db)
	start := time.Now()
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	next := mustTerm(t, standby, takeoverMax)
	t.Logf("takeover after SIGKILL: %v", time.Since(start))
	if next.Epoch != 2 {
		t.Fatalf("epoch after the kill %d, want 2", next.Epoch)
	}
}

// TestLeadCampaignsAgain: Lead runs the work while leading, stops it when
// the term is lost, and leads again once the lock is free.
func TestLeadCampaignsAgain(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	db := openDB(t, dsn)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	terms := make(chan int64, 4)
	stopped := make(chan error, 4)
	done := make(chan struct{})
	go func() {
		defer close(done)
		newElector(dsn, "lead").Lead(ctx, cluster.RoleReactor, func(ctx context.Context, term *cluster.Term) error {
			terms <- term.Epoch
			<-ctx.Done()
			stopped <- ctx.Err()
			return nil
		})
	}()
	if e := <-terms; e != 1 {
		t.Fatalf("first term epoch %d", e)
	}
	if _, err := db.Exec(`SELECT pg_terminate_backend($1)`, leaderPID(t, db)); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-stopped:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("work stopped with %v", err)
		}
	case <-time.After(takeoverMax):
		t.Fatal("the work went on after the term was lost")
	}
	select {
	case e := <-terms:
		if e != 2 {
			t.Fatalf("second term epoch %d, want 2", e)
		}
	case <-time.After(takeoverMax):
		t.Fatal("Lead did not campaign again")
	}
	cancel()
	<-done
}

// fenced runs term's fence in a transaction of its own and returns its
// verdict.
func fenced(t *testing.T, db *sql.DB, term *cluster.Term) error {
	t.Helper()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	return term.Fence(context.Background(), tx)
}
