package projections

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/eventstore"
	"github.com/rendertrust/rendertrust/eventstore/postgres"
	"github.com/rendertrust/rendertrust/eventstore/sqlite"
	"github.com/rendertrust/rendertrust/internal/pgtest"
	"github.com/rendertrust/rendertrust/internal/sqldb"
	"github.com/rendertrust/rendertrust/projections/projectiontest"
)

// The benchmarks only run under -bench (make bench). BenchmarkProjections
// builds a 1,000,000-event log of 10,000 users once per backend (the
// SQLite one is cached in $TMPDIR/rendertrust-bench between runs), then:
//
//   - ReadLog: reading and decoding the log alone (what bounds a rebuild);
//   - Rebuild: every projection from scratch into an empty database;
//   - Query/*: p50/p99 latency of the API's queries on the rebuilt models.
//
// BenchmarkLiveLag follows appends at liveRate events/s and reports the
// p50/p99 delay to the commit of the batch that applied each event, from
// the event's RecordedAt and from the return of its Append.
const (
	benchEvents  = 1_000_000
	benchUsers   = 10_000
	benchSubmits = 300 // jobs submitted per simulated round
	benchStep    = 15 * time.Minute
	benchSeed    = 42
	// benchFixtureVersion names the cached SQLite log; bump it when the
	// simulation in projectiontest changes.
	benchFixtureVersion = 1
	// liveRate is the append rate of the live-lag benchmark, events/s.
	liveRate = 5000
	// liveDuration is how long the live-lag benchmark appends.
	liveDuration = 10 * time.Second
)

// benchFixture is a loaded log and where to put read models.
type benchFixture struct {
	store   eventstore.Store
	head    uint64
	end     time.Time // simulated time of the last round
	freshDB func(b *testing.B) *sqldb.DB
	// newStore opens an empty store (for the live benchmark).
	newStore func(b *testing.B) eventstore.Store
}

func BenchmarkProjections(b *testing.B) {
	b.Run("SQLite", func(b *testing.B) { benchBackend(b, sqliteFixture(b)) })
	b.Run("PostgreSQL", func(b *testing.B) { benchBackend(b, postgresFixture(b)) })
}

func BenchmarkLiveLag(b *testing.B) {
	b.Run("SQLite", func(b *testing.B) { benchLiveLag(b, sqliteFresh(b)) })
	b.Run("PostgreSQL", func(b *testing.B) { benchLiveLag(b, postgresFresh(b)) })
}

func benchBackend(b *testing.B, fx benchFixture) {
	b.Run("ReadLog", func(b *testing.B) { benchReadLog(b, fx) })
	b.Run("Rebuild", func(b *testing.B) { benchRebuild(b, fx) })
	db := fx.freshDB(b)
	if _, err := Rebuild(context.Background(), db, fx.store, RebuildOptions{Logger: quietLogger}); err != nil {
		b.Fatal(err)
	}
	benchQueries(b, db, fx)
}

// benchSim returns the simulation the 1,000,000-event log comes from.
func benchSim() *projectiontest.Sim {
	return projectiontest.NewSim(projectiontest.Config{Users: benchUsers, Nodes: 20, Submits: benchSubmits, Seed: benchSeed, Step: benchStep})
}

// sqliteFresh returns a fixture without a log, for fresh SQLite
// databases in a temporary directory.
func sqliteFresh(b *testing.B) benchFixture {
	tmp := b.TempDir()
	n := 0
	return benchFixture{
		freshDB: func(b *testing.B) *sqldb.DB {
			n++
			db, err := sqldb.OpenSQLite(filepath.Join(tmp, fmt.Sprintf("state%d.db", n)))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { db.Close() })
			return db
		},
		newStore: func(b *testing.B) eventstore.Store {
			n++
			s, err := sqlite.Open(context.Background(), filepath.Join(tmp, fmt.Sprintf("events%d.db", n)))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
			return s
		},
	}
}

// sqliteFixture returns the benchmark log in SQLite, cached between runs.
func sqliteFixture(b *testing.B) benchFixture {
	fx := sqliteFresh(b)
	dir := filepath.Join(os.TempDir(), "rendertrust-bench")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(dir, fmt.Sprintf("events-v%d-%d-%d.db", benchFixtureVersion, benchEvents, benchSeed))
	remove := func() {
		for _, suffix := range []string{"", "-wal", "-shm"} {
			os.Remove(path + suffix)
		}
	}
	store := openCached(b, path, remove)
	b.Cleanup(func() { store.Close() })
	head, err := store.Head(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	fx.store = store
	fx.head, fx.end = loadFixture(b, store, head >= benchEvents, remove)
	return fx
}

// openCached opens the SQLite store at path, first removing it when it
// holds a partial log (an interrupted earlier run).
func openCached(b *testing.B, path string, remove func()) eventstore.Store {
	ctx := context.Background()
	store, err := sqlite.Open(ctx, path)
	if err != nil {
		b.Fatal(err)
	}
	if head, err := store.Head(ctx); err != nil || (head > 0 && head < benchEvents) {
		store.Close()
		remove()
		if store, err = sqlite.Open(ctx, path); err != nil {
			b.Fatal(err)
		}
	}
	return store
}

// postgresFresh returns a fixture without a log, for fresh PostgreSQL
// databases.
func postgresFresh(b *testing.B) benchFixture {
	return benchFixture{
		freshDB: func(b *testing.B) *sqldb.DB {
			db, err := sqldb.OpenPostgres(context.Background(), pgtest.NewDatabase(b))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { db.Close() })
			return db
		},
		newStore: func(b *testing.B) eventstore.Store {
			s, err := postgres.Open(context.Background(), pgtest.NewDatabase(b))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
			return s
		},
	}
}

// postgresFixture returns the benchmark log in PostgreSQL, loaded anew.
func postgresFixture(b *testing.B) benchFixture {
	fx := postgresFresh(b)
	fx.store = fx.newStore(b)
	fx.head, fx.end = loadFixture(b, fx.store, false, nil)
	return fx
}

// loadFixture fills store with the benchmark log unless cached says it
// already holds it, and returns its head and the simulated end time.
func loadFixture(b *testing.B, store eventstore.Store, cached bool, discard func()) (uint64, time.Time) {
	ctx := context.Background()
	sim := benchSim()
	head, err := store.Head(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if cached {
		for sim.Events() < int(head) {
			sim.Round() // replay the simulation only to learn its end time
		}
		return head, sim.Now()
	}
	start := time.Now()
	for sim.Events() < benchEvents {
		if _, err := projectiontest.AppendRound(ctx, store, sim.Round()); err != nil {
			if discard != nil {
				discard()
			}
			b.Fatal(err)
		}
	}
	if head, err = store.Head(ctx); err != nil {
		b.Fatal(err)
	}
	b.Logf("loaded %d events in %s (%.0f events/s)", head, time.Since(start).Round(time.Millisecond), float64(head)/time.Since(start).Seconds())
	return head, sim.Now()
}

// benchReadLog reads and decodes the whole log as a rebuild does, without
// applying it: the most a rebuild can do on this machine.
func benchReadLog(b *testing.B, fx benchFixture) {
	start := time.Now()
	for range b.N {
		ch := make(chan chunk, feedChunksMax)
		go func() { defer close(ch); readAhead(context.Background(), fx.store, 1, fx.head, ch) }()
		n := 0
		for c := range ch {
			if c.err != nil {
				b.Fatal(c.err)
			}
			n += len(c.events)
		}
		if n != int(fx.head) {
			b.Fatalf("read %d events, want %d", n, fx.head)
		}
	}
	b.ReportMetric(float64(fx.head)*float64(b.N)/time.Since(start).Seconds(), "events/s")
}

func benchRebuild(b *testing.B, fx benchFixture) {
	var total time.Duration
	for range b.N {
		db := fx.freshDB(b)
		start := time.Now()
		res, err := Rebuild(context.Background(), db, fx.store, RebuildOptions{Logger: quietLogger})
		if err != nil {
			b.Fatal(err)
		}
		total += time.Since(start)
		if res.Events != fx.head {
			b.Fatalf("rebuilt %d events, want %d", res.Events, fx.head)
		}
	}
	b.ReportMetric(float64(fx.head)*float64(b.N)/total.Seconds(), "events/s")
}

// benchQueries measures each query on random users.
func benchQueries(b *testing.B, db *sqldb.DB, fx benchFixture) {
	rd := NewReader(db)
	ctx := context.Background()
	r := rand.New(rand.NewPCG(1, 1))
	user := func() domain.UserID { return projectiontest.UserID(r.IntN(benchUsers)) }
	queries := []struct {
		name string
		run  func() error
	}{
		{"JobList", func() error { _, err := rd.Jobs(ctx, user(), JobQuery{}); return err }},
		{"JobListByStatus", func() error { _, err := rd.Jobs(ctx, user(), JobQuery{Status: domain.StatusCompleted}); return err }},
		{"JobListPage2", func() error {
			u := user()
			p, err := rd.Jobs(ctx, u, JobQuery{Limit: 5})
			if err != nil || p.NextCursor == "" {
				return err
			}
			_, err = rd.Jobs(ctx, u, JobQuery{Limit: 5, Cursor: p.NextCursor})
			return err
		}},
		{"Balance", func() error { _, err := rd.Balance(ctx, user()); return err }},
		{"Transactions", func() error { _, err := rd.Transactions(ctx, user(), TransactionQuery{}); return err }},
		{"Usage", func() error { _, err := rd.Usage(ctx, user(), UsageQuery{Now: fx.end}); return err }},
		{"UsageNewYork", func() error {
			_, err := rd.Usage(ctx, user(), UsageQuery{Now: fx.end, TimeZone: "America/New_York"})
			return err
		}},
	}
	for _, q := range queries {
		b.Run("Query/"+q.name, func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			for range b.N {
				t0 := time.Now()
				if err := q.run(); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
			reportLatency(b, "", lat)
		})
	}
}

// reportLatency reports the p50 and p99 of lat, in milliseconds, as
// metrics named prefix+"p50-ms" and prefix+"p99-ms".
func reportLatency(b *testing.B, prefix string, lat []time.Duration) {
	slices.Sort(lat)
	for _, p := range []float64{0.50, 0.99} {
		v := lat[min(len(lat)-1, int(p*float64(len(lat))))]
		b.ReportMetric(float64(v)/float64(time.Millisecond), fmt.Sprintf("%sp%d-ms", prefix, int(p*100)))
	}
}

// benchLiveLag appends a fresh simulation at liveRate events/s for
// liveDuration while a runner follows, and reports two delays per event:
// from its RecordedAt (stamped when the store's commit began) and from the
// return of its Append (what a client waits for after its command) to the
// commit of the batch that applied it.
func benchLiveLag(b *testing.B, fx benchFixture) {
	store := fx.newStore(b)
	r, err := NewRunner(Config{DB: fx.freshDB(b), Store: store, Logger: quietLogger})
	if err != nil {
		b.Fatal(err)
	}
	var (
		mu                sync.Mutex
		fromRecorded, ack []time.Duration
		acked             = map[uint64]time.Time{}
	)
	r.onCommit = func(events []Event, committed time.Time) {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range events {
			fromRecorded = append(fromRecorded, committed.Sub(e.RecordedAt))
			lag := time.Duration(0) // applied before its Append returned
			if at, ok := acked[e.Position]; ok {
				lag = max(0, committed.Sub(at))
			}
			ack = append(ack, lag)
		}
	}
	onAck := func(res eventstore.AppendResult, at time.Time) {
		mu.Lock()
		defer mu.Unlock()
		for p := res.FirstPosition; p <= res.LastPosition; p++ {
			acked[p] = at
		}
	}
	if err := r.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer r.Stop()
	rate := appendPaced(b, store, onAck)
	mustWait(b, r, store)
	b.StopTimer()
	mu.Lock()
	defer mu.Unlock()
	reportLatency(b, "", fromRecorded)
	reportLatency(b, "ack-", ack)
	b.ReportMetric(rate, "events/s")
	var m dto.Metric
	r.metrics.batch.Write(&m)
	h := m.GetHistogram()
	b.Logf("%d batches, mean %.2f ms", h.GetSampleCount(), 1000*h.GetSampleSum()/float64(h.GetSampleCount()))
}

// appendPaced appends a simulation's rounds to store at liveRate events/s
// for liveDuration, calling onAck as each append returns, and returns the
// rate achieved.
func appendPaced(b *testing.B, store eventstore.Store, onAck func(eventstore.AppendResult, time.Time)) float64 {
	sim := projectiontest.NewSim(projectiontest.Config{Users: 2000, Submits: 25, Seed: 9})
	var rounds [][]projectiontest.Append
	for sim.Events() < liveRate*int(liveDuration/time.Second) {
		rounds = append(rounds, sim.Round())
	}
	b.ResetTimer()
	start, sent := time.Now(), 0
	for _, round := range rounds {
		if due := time.Duration(float64(sent) / liveRate * float64(time.Second)); time.Since(start) < due {
			time.Sleep(due - time.Since(start))
		}
		var wg sync.WaitGroup
		for _, a := range round {
			data := make([]eventstore.EventData, len(a.Events))
			for i, e := range a.Events {
				data[i] = projectiontest.EventData(e)
			}
			sent += len(data)
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := store.Append(context.Background(), a.Stream, eventstore.Exact(a.Expected), data...)
				if err != nil {
					b.Error(err)
					return
				}
				onAck(res, time.Now())
			}()
		}
		wg.Wait()
	}
	return float64(sent) / time.Since(start).Seconds()
}
