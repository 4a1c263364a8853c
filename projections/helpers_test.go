package projections

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/eventstore"
	"github.com/rendertrust/rendertrust/eventstore/postgres"
	"github.com/rendertrust/rendertrust/eventstore/sqlite"
	"github.com/rendertrust/rendertrust/internal/pgtest"
	"github.com/rendertrust/rendertrust/internal/sqldb"
	"github.com/rendertrust/rendertrust/projections/projectiontest"
)

// testTimeout bounds every wait in the tests.
const testTimeout = 30 * time.Second

// env is one backend: an event store and the databases of the read models.
type env struct {
	store eventstore.Store
	db    *sqldb.DB
	// reopen opens another handle on db's database, as another process
	// would.
	reopen func(tb testing.TB) *sqldb.DB
	// freshDB opens a new, empty read-model database on the same backend.
	freshDB func(tb testing.TB) *sqldb.DB
	// dsn is the PostgreSQL database's connection string ("" on SQLite).
	dsn string
}

// backends runs test once per backend, as subtests SQLite and PostgreSQL.
func backends(t *testing.T, test func(t *testing.T, e env)) {
	t.Run("SQLite", func(t *testing.T) { t.Parallel(); test(t, sqliteEnv(t)) })
	t.Run("PostgreSQL", func(t *testing.T) { t.Parallel(); test(t, postgresEnv(t)) })
}

func sqliteEnv(tb testing.TB) env {
	tb.Helper()
	dir := tb.TempDir()
	store, err := sqlite.Open(context.Background(), filepath.Join(dir, "events.db"))
	if err != nil {
		tb.Fatalf("open event store: %v", err)
	}
	tb.Cleanup(func() { store.Close() })
	n := 0
	openAt := func(tb testing.TB, path string) *sqldb.DB {
		db, err := sqldb.OpenSQLite(path)
		if err != nil {
			tb.Fatalf("open %s: %v", path, err)
		}
		tb.Cleanup(func() { db.Close() })
		return db
	}
	state := filepath.Join(dir, "state.db")
	return env{
		store:  store,
		db:     openAt(tb, state),
		reopen: func(tb testing.TB) *sqldb.DB { return openAt(tb, state) },
		freshDB: func(tb testing.TB) *sqldb.DB {
			n++
			return openAt(tb, filepath.Join(dir, fmt.Sprintf("state%d.db", n)))
		},
	}
}

func postgresEnv(tb testing.TB) env {
	tb.Helper()
	dsn := pgtest.NewDatabase(tb)
	store, err := postgres.Open(context.Background(), dsn)
	if err != nil {
		tb.Fatalf("open event store: %v", err)
	}
	tb.Cleanup(func() { store.Close() })
	openAt := func(tb testing.TB, dsn string) *sqldb.DB {
		db, err := sqldb.OpenPostgres(context.Background(), dsn)
		if err != nil {
			tb.Fatalf("open PostgreSQL: %v", err)
		}
		tb.Cleanup(func() { db.Close() })
		return db
	}
	return env{
		store:   store,
		db:      openAt(tb, dsn),
		reopen:  func(tb testing.TB) *sqldb.DB { return openAt(tb, dsn) },
		freshDB: func(tb testing.TB) *sqldb.DB { return openAt(tb, pgtest.NewDatabase(tb)) },
		dsn:     dsn,
	}
}

// quietLogger discards everything.
var quietLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

// mustStart starts a runner of ps (nil: All()) on db and stops it when tb
// ends.
func mustStart(tb testing.TB, e env, db *sqldb.DB, ps []Projection) *Runner {
	tb.Helper()
	r, err := NewRunner(Config{DB: db, Store: e.store, Projections: ps, Registerer: prometheus.NewRegistry(), Logger: quietLogger})
	if err != nil {
		tb.Fatalf("NewRunner: %v", err)
	}
	if err := r.Start(context.Background()); err != nil {
		tb.Fatalf("Start: %v", err)
	}
	tb.Cleanup(func() { r.Stop() })
	return r
}

// mustWait waits until r has applied the store's head.
func mustWait(tb testing.TB, r *Runner, store eventstore.Store) uint64 {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	head, err := store.Head(ctx)
	if err != nil {
		tb.Fatalf("head: %v", err)
	}
	if err := r.WaitFor(ctx, head); err != nil {
		tb.Fatalf("WaitFor(%d): %v (positions %v)", head, err, r.Positions())
	}
	return head
}

// mustRebuild rebuilds ps (nil: All()) on db.
func mustRebuild(tb testing.TB, e env, db *sqldb.DB, ps []Projection, names ...string) RebuildResult {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	res, err := Rebuild(ctx, db, e.store, RebuildOptions{Projections: ps, Names: names, Logger: quietLogger})
	if err != nil {
		tb.Fatalf("Rebuild: %v", err)
	}
	return res
}

// dump returns every row of every view of ps, in key order, one string a
// row, prefixed by the view's name.
func dump(tb testing.TB, db *sqldb.DB, ps []Projection) []string {
	tb.Helper()
	var out []string
	for _, p := range ps {
		for _, t := range p.Tables() {
			rows, err := db.Query(context.Background(), fmt.Sprintf("SELECT * FROM %s ORDER BY %s", t.Name, strings.Join(t.PrimaryKey, ", ")))
			if err != nil {
				tb.Fatalf("dump %s: %v", t.Name, err)
			}
			cols, _ := rows.Columns()
			for rows.Next() {
				vals := make([]any, len(cols))
				ptrs := make([]any, len(cols))
				for i := range vals {
					ptrs[i] = &vals[i]
				}
				if err := rows.Scan(ptrs...); err != nil {
					tb.Fatalf("dump %s: %v", t.Name, err)
				}
				out = append(out, t.Name+fmt.Sprintf(" %v", vals))
			}
			if err := rows.Err(); err != nil {
				tb.Fatalf("dump %s: %v", t.Name, err)
			}
			rows.Close()
		}
	}
	return out
}

// diffRows fails tb at the first row where got and want differ.
func diffRows(tb testing.TB, what string, got, want []string) {
	tb.Helper()
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			tb.Fatalf("%s: row %d differs:\n got %s\nwant %s", what, i, got[i], want[i])
		}
	}
	if len(got) != len(want) {
		tb.Fatalf("%s: got %d rows, want %d", what, len(got), len(want))
	}
}

// appendEvents appends domain events to stream at expected version, and
// returns the last position.
func appendEvents(tb testing.TB, store eventstore.Store, stream string, expected uint64, events ...domain.Event) uint64 {
	tb.Helper()
	data := make([]eventstore.EventData, len(events))
	for i, e := range events {
		data[i] = projectiontest.EventData(e)
	}
	res, err := store.Append(context.Background(), stream, eventstore.Exact(expected), data...)
	if err != nil {
		tb.Fatalf("append to %s: %v", stream, err)
	}
	return res.LastPosition
}

// mustDecide appends what a decision returned (after applying it to agg),
// or fails tb.
func mustDecide[A interface {
	Apply(domain.Event)
	Version() uint64
}](tb testing.TB, store eventstore.Store, agg A, stream string, events []domain.Event, err error) uint64 {
	tb.Helper()
	if err != nil {
		tb.Fatalf("decide on %s: %v", stream, err)
	}
	before := agg.Version()
	for _, e := range events {
		agg.Apply(e)
	}
	return appendEvents(tb, store, stream, before, events...)
}

// checkAgainstSim checks the read models against the simulation's
// aggregates: every balance, and every job's status, attempts and charge.
func checkAgainstSim(tb testing.TB, db *sqldb.DB, sim *projectiontest.Sim) {
	tb.Helper()
	ctx := context.Background()
	rd := NewReader(db)
	for _, a := range sim.Accounts {
		got, err := rd.Balance(ctx, a.User())
		if err != nil {
			tb.Fatalf("Balance(%s): %v", a.User(), err)
		}
		want := Balance{Balance: int64(a.Balance()), Held: int64(a.Held()), Available: int64(a.Available())}
		if got != want {
			tb.Fatalf("Balance(%s) = %+v, want %+v", a.User(), got, want)
		}
	}
	for id, j := range sim.Jobs {
		got, err := rd.Job(ctx, j.Owner(), id)
		if err != nil {
			tb.Fatalf("Job(%s): %v", id, err)
		}
		charged := int64(0)
		if h, ok := sim.Accounts[userIndex(j.Owner())].JobHold(id); ok {
			charged = int64(h.Deducted())
		}
		if got.Status != j.Status() || got.Attempts != j.Attempts() || got.Deducted != charged || got.LastError != j.LastError() {
			tb.Fatalf("Job(%s) = %s/%d attempts/charged %d/%q, want %s/%d/%d/%q", id, got.Status, got.Attempts,
				got.Deducted, got.LastError, j.Status(), j.Attempts(), charged, j.LastError())
		}
	}
}

func userIndex(u domain.UserID) int {
	var i int
	fmt.Sscanf(string(u), "u%d", &i)
	return i
}
