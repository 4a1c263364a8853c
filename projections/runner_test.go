package projections

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/eventstore"
	"github.com/rendertrust/rendertrust/eventstore/storetest"
	"github.com/rendertrust/rendertrust/internal/sqldb"
	"github.com/rendertrust/rendertrust/projections/projectiontest"
)

// TestLiveEqualsRebuild is the property "replay equals live projection":
//  1. a runner follows the log while a random workload is appended;
//  2. its tables match the simulation's aggregates;
//  3. a rebuild from scratch produces the same tables, row for row, and
//     leaves only the new generation behind.
func TestLiveEqualsRebuild(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, e env) {
		r := mustStart(t, e, e.db, nil)
		sim := projectiontest.NewSim(projectiontest.Config{Users: 15, Submits: 8, Seed: 7})
		projectiontest.MustLoad(t, e.store, sim, 2500)
		mustWait(t, r, e.store)
		checkAgainstSim(t, e.db, sim)
		live := dump(t, e.db, All())

		res := mustRebuild(t, e, e.reopen(t), nil)
		mustWait(t, r, e.store)
		diffRows(t, "rebuild vs live", dump(t, e.db, All()), live)
		for _, p := range All() {
			if got := res.Generations[p.Name()]; got != 2 {
				t.Errorf("generation of %s = %d, want 2", p.Name(), got)
			}
			for _, tb := range p.Tables() {
				gens, err := listGenerations(context.Background(), e.db, tb.Name)
				if err != nil || !slices.Equal(gens, []uint64{2}) {
					t.Errorf("generations of %s = %v, %v; want [2]", tb.Name, gens, err)
				}
			}
		}
	})
}

// failingProjection wraps a projection: once the events it has applied
// reach failAt, it applies part of the batch, cancels the runner and fails.
type failingProjection struct {
	Projection
	failAt  int64
	applied *atomic.Int64
	cancel  context.CancelFunc
}

func (f failingProjection) Apply(ctx context.Context, tx *sqldb.Tx, t Tables, events []Event) error {
	if n := f.applied.Load(); n+int64(len(events)) >= f.failAt {
		part := events[:f.failAt-n]
		if err := f.Projection.Apply(ctx, tx, t, part); err != nil {
			return err
		}
		f.cancel()
		return errors.New("injected failure mid-batch")
	}
	f.applied.Add(int64(len(events)))
	return f.Projection.Apply(ctx, tx, t, events)
}

// TestRestartMidBatch kills the runner in the middle of a batch:
//  1. a random workload is in the log;
//  2. a runner whose balances projection fails after k events (having
//     written part of its batch) is cancelled there;
//  3. a new runner finishes; its tables equal a rebuild's, and balances
//     equal the aggregates' (nothing counted twice).
func TestRestartMidBatch(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, e env) {
		sim := projectiontest.NewSim(projectiontest.Config{Users: 10, Submits: 8, Seed: 3})
		head := projectiontest.MustLoad(t, e.store, sim, 1500)
		for _, k := range []int64{1, 777, int64(head) - 1} {
			db := e.freshDB(t)
			ctx, cancel := context.WithCancel(context.Background())
			ps := All()
			ps[1] = failingProjection{Projection: ps[1], failAt: k, applied: &atomic.Int64{}, cancel: cancel}
			r, err := NewRunner(Config{DB: db, Store: e.store, Projections: ps, Logger: quietLogger})
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Start(ctx); err != nil {
				t.Fatal(err)
			}
			<-r.Done()
			if pos := r.Positions()["balances"]; pos >= uint64(k) {
				t.Fatalf("k=%d: balances checkpoint at %d after failing at event %d", k, pos, k)
			}
			r2 := mustStart(t, e, db, nil)
			mustWait(t, r2, e.store)
			checkAgainstSim(t, db, sim)
			live := dump(t, db, All())
			mustRebuild(t, e, db, nil)
			diffRows(t, "restarted vs rebuild", dump(t, db, All()), live)
		}
	})
}

// TestUnknownEventTypes checks that events the domain does not know are
// skipped visibly: counted per projection and type, logged once per type,
// and the checkpoint moves past them.
func TestUnknownEventTypes(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, e env) {
		reg := prometheus.NewRegistry()
		var logs syncBuffer
		r, err := NewRunner(Config{DB: e.db, Store: e.store, Registerer: reg, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Stop() })
		future := storetest.Event("anchor.committed", map[string]int{"tree_size": 1})
		newer := storetest.Event(domain.EventJobSubmitted, map[string]string{"job_id": "j1"})
		newer.SchemaVersion = 2
		storetest.MustAppend(t, e.store, "anchors", eventstore.Any, future, future2(future))
		storetest.MustAppend(t, e.store, "job-j1", eventstore.NoStream, newer)
		a := domain.NewAccount("u1")
		ev, err := a.Grant("g1", 5, "welcome", time.Now())
		mustDecide(t, e.store, a, domain.AccountStream("u1"), ev, err)
		mustWait(t, r, e.store)

		for _, p := range All() {
			for typ, want := range map[string]float64{"anchor.committed": 2, "job.submitted@v2": 1} {
				got := counterValue(t, r.metrics.skipped.WithLabelValues(p.Name(), typ))
				if got != want {
					t.Errorf("skipped{%s,%s} = %v, want %v", p.Name(), typ, got, want)
				}
			}
		}
		if got := strings.Count(logs.String(), "type=anchor.committed"); got != 1 {
			t.Errorf("anchor.committed logged %d times, want 1:\n%s", got, logs.String())
		}
		if !strings.Contains(logs.String(), "type=job.submitted@v2") {
			t.Errorf("no warning for job.submitted@v2:\n%s", logs.String())
		}
		if b, _ := NewReader(e.db).Balance(context.Background(), "u1"); b.Balance != 5 {
			t.Errorf("balance after the unknown events = %d, want 5", b.Balance)
		}
	})
}

func counterValue(tb testing.TB, c prometheus.Counter) float64 {
	tb.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		tb.Fatalf("read counter: %v", err)
	}
	return m.GetCounter().GetValue()
}

func future2(e eventstore.EventData) eventstore.EventData {
	e.ID = eventstore.NewEventID()
	return e
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestWaitFor checks read-your-writes: WaitFor returns at once for a
// position already applied, wakes when a later append is applied, and
// gives up when its context ends.
func TestWaitFor(t *testing.T) {
	t.Parallel()
	e := sqliteEnv(t)
	r := mustStart(t, e, e.db, nil)
	ctx := context.Background()
	if err := r.WaitFor(ctx, 0); err != nil {
		t.Fatalf("WaitFor(0) = %v, want nil", err)
	}
	a := domain.NewAccount("u1")
	ev, err := a.Grant("g1", 7, "welcome", time.Now())
	pos := mustDecide(t, e.store, a, domain.AccountStream("u1"), ev, err)
	if err := r.WaitFor(ctx, pos); err != nil {
		t.Fatalf("WaitFor(%d) = %v", pos, err)
	}
	if b, _ := NewReader(e.db).Balance(ctx, "u1"); b.Available != 7 {
		t.Fatalf("available right after WaitFor = %d, want 7", b.Available)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := r.WaitFor(short, pos+1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitFor(beyond the head) = %v, want context.DeadlineExceeded", err)
	}
}

// TestRebuildWhileQuerying runs queries in a loop, on their own
// connections, while a live runner follows appends and another handle (as
// the CLI would, from another process) rebuilds twice; no query may fail,
// and the end state equals a final rebuild.
func TestRebuildWhileQuerying(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, e env) {
		r := mustStart(t, e, e.db, nil)
		sim := projectiontest.NewSim(projectiontest.Config{Users: 12, Submits: 6, Seed: 11})
		projectiontest.MustLoad(t, e.store, sim, 1200)
		mustWait(t, r, e.store)
		ctx, stop := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		var queries atomic.Int64
		errs := make(chan error, 100)
		rd := NewReader(e.reopen(t))
		for w := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; ctx.Err() == nil; i++ {
					if err := queryAll(ctx, rd, projectiontest.UserID(i%12)); err != nil && ctx.Err() == nil {
						errs <- err
						return
					}
					queries.Add(1)
				}
			}()
		}
		loaded := make(chan struct{})
		go func() {
			defer close(loaded)
			if _, err := projectiontest.Load(context.Background(), e.store, sim, 1000); err != nil {
				errs <- err
			}
		}()
		cli := e.reopen(t)
		mustRebuild(t, e, cli, nil)
		mustRebuild(t, e, cli, nil, "jobs", "usage")
		<-loaded
		stop()
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("during rebuild: %v", err)
		}
		if queries.Load() == 0 {
			t.Fatal("no query ran during the rebuilds")
		}
		mustWait(t, r, e.store)
		live := dump(t, e.db, All())
		mustRebuild(t, e, cli, nil)
		diffRows(t, "after rebuilds while serving", dump(t, e.db, All()), live)
	})
}

// queryAll runs every query once for user.
func queryAll(ctx context.Context, rd *Reader, user domain.UserID) error {
	page, err := rd.Jobs(ctx, user, JobQuery{Limit: 5})
	if err != nil {
		return err
	}
	if len(page.Jobs) > 0 {
		if _, err := rd.Job(ctx, user, domain.JobID(page.Jobs[0].ID)); err != nil {
			return err
		}
	}
	if _, err := rd.Jobs(ctx, user, JobQuery{Status: domain.StatusCompleted, Cursor: page.NextCursor}); err != nil {
		return err
	}
	if _, err := rd.Balance(ctx, user); err != nil {
		return err
	}
	if _, err := rd.Transactions(ctx, user, TransactionQuery{Limit: 10}); err != nil {
		return err
	}
	if _, err := rd.Usage(ctx, user, UsageQuery{TimeZone: "Asia/Kolkata", Now: time.Date(2026, 3, 8, 0, 0, 0, 0, time.UTC)}); err != nil {
		return err
	}
	_, err = rd.Nodes(ctx, nil, time.Now())
	return err
}
