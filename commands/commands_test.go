package commands_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rendertrust/rendertrust/commands"
	"github.com/rendertrust/rendertrust/dispatch"
	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/eventstore"
	"github.com/rendertrust/rendertrust/eventstore/postgres"
	"github.com/rendertrust/rendertrust/eventstore/sqlite"
	"github.com/rendertrust/rendertrust/internal/pgtest"
	"github.com/rendertrust/rendertrust/internal/sqldb"
)

// backend opens a fresh event store and state database of one kind.
type backend struct {
	name string
	open func(tb testing.TB) (eventstore.Store, *sqldb.DB)
}

var backends = []backend{
	{"SQLite", openSQLite},
	// The same SQLite store without its atomic multi-stream append: the
	// path EventStoreDB takes (a submission's hold, then its job, repaired
	// by the orphan-hold reactor), kept tested on a real backend.
	{"SQLitePerStream", func(tb testing.TB) (eventstore.Store, *sqldb.DB) {
		store, db := openSQLite(tb)
		return perStream{store}, db
	}},
	{"PostgreSQL", func(tb testing.TB) (eventstore.Store, *sqldb.DB) {
		dsn := pgtest.NewDatabase(tb)
		store, err := postgres.Open(context.Background(), dsn)
		if err != nil {
			tb.Fatal(err)
		}
		db, err := sqldb.OpenPostgres(context.Background(), dsn)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { db.Close(); store.Close() })
		return store, db
	}},
}

func openSQLite(tb testing.TB) (eventstore.Store, *sqldb.DB) {
	dir := tb.TempDir()
	store, err := sqlite.Open(context.Background(), filepath.Join(dir, "events.db"))
	if err != nil {
		tb.Fatal(err)
	}
	db, err := sqldb.OpenSQLite(filepath.Join(dir, "state.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close(); store.Close() })
	return store, db
}

// perStream hides its store's eventstore.MultiAppender: commands take the
// per-stream path.
type perStream struct{ eventstore.Store }

// forEachBackend runs f as a subtest on every backend.
func forEachBackend(t *testing.T, f func(t *testing.T, b backend)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { f(t, b) })
	}
}

// clock is a settable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// env is a service on a fresh backend with a settable clock.
type env struct {
	store eventstore.Store
	db    *sqldb.DB
	svc   *commands.Service
	clock *clock
}

// newService returns a write side over store and db with a dispatcher of its
// own watching its appends, as the wiring makes one for each process.
func newService(ctx context.Context, store eventstore.Store, db *sqldb.DB, now func() time.Time) (*commands.Service, error) {
	d := dispatch.New(now, 0, nil)
	return commands.New(ctx, commands.Config{Store: d.Watch(store), DB: db, Dispatcher: d, Now: now})
}

func newEnv(tb testing.TB, b backend) *env {
	tb.Helper()
	store, db := b.open(tb)
	c := &clock{now: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}
	svc, err := newService(context.Background(), store, db, c.Now)
	if err != nil {
		tb.Fatal(err)
	}
	return &env{store: store, db: db, svc: svc, clock: c}
}

var (
	ctx    = context.Background()
	admin  = commands.Actor{ID: "admin:test"}
	system = commands.Actor{ID: "system:test"}
)

// mustGrant gives user credits or fails the test.
func (e *env) mustGrant(tb testing.TB, user domain.UserID, amount domain.Credits) {
	tb.Helper()
	if _, err := e.svc.Grant(ctx, admin, user, fmt.Sprintf("g-%s-%d", user, e.clock.Now().UnixNano()), amount, "test"); err != nil {
		tb.Fatalf("grant: %v", err)
	}
}

// mustNode enrolls a healthy node or fails the test.
func (e *env) mustNode(tb testing.TB, id domain.NodeID, slots int, gpu bool, types ...domain.JobType) {
	tb.Helper()
	if len(types) == 0 {
		types = domain.JobTypes()
	}
	if _, err := e.svc.EnrollNode(ctx, admin, id, domain.Enrollment{Name: string(id), Capabilities: domain.Capabilities{JobTypes: types, GPU: gpu, Slots: slots}}); err != nil {
		tb.Fatalf("enroll %s: %v", id, err)
	}
	if err := e.svc.Heartbeat(ctx, id); err != nil {
		tb.Fatalf("heartbeat %s: %v", id, err)
	}
}

func (e *env) mustSubmit(tb testing.TB, user domain.UserID, typ domain.JobType) commands.Submitted {
	tb.Helper()
	p, _ := domain.PayloadURI("s3://bucket/scene.blend")
	res, err := e.svc.SubmitJob(ctx, commands.Actor{ID: "user:" + string(user)}, commands.SubmitJob{Owner: user, Type: typ, Payload: p})
	if err != nil {
		tb.Fatalf("submit %s: %v", typ, err)
	}
	return res
}

func (e *env) head(tb testing.TB) uint64 {
	tb.Helper()
	h, err := e.store.Head(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

// allEvents reads and decodes the whole log.
func (e *env) allEvents(tb testing.TB) []domain.Event {
	tb.Helper()
	var out []domain.Event
	for from := uint64(1); ; {
		recs, err := e.store.ReadAll(ctx, from, eventstore.ReadEventsMax)
		if err != nil {
			tb.Fatal(err)
		}
		if len(recs) == 0 {
			return out
		}
		for _, r := range recs {
			ev, err := domain.DecodeEvent(r.Type, r.Data)
			if err != nil {
				tb.Fatalf("decode %s at %d: %v", r.Type, r.Position, err)
			}
			out = append(out, ev)
		}
		from = recs[len(recs)-1].Position + 1
	}
}

// runReactor runs a reactor until the returned stop is called.
func (e *env) runReactor(tb testing.TB) (*commands.Reactor, func()) {
	tb.Helper()
	r := commands.NewReactor(e.svc, time.Minute)
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); r.Run(rctx) }()
	return r, func() { cancel(); <-done }
}

// settle waits until a reactor has handled the whole log.
func (e *env) settle(tb testing.TB, r *commands.Reactor) {
	tb.Helper()
	for {
		head := e.head(tb)
		wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		err := r.WaitFor(wctx, head)
		cancel()
		if err != nil {
			tb.Fatalf("reactor stuck at %d of %d: %v", r.Position(), head, err)
		}
		if e.head(tb) == head {
			return
		}
	}
}

type contextT = context.Context

// appendDomain appends domain events behind the service's back, as a crashed
// or foreign writer would have.
func appendDomain(tb testing.TB, e *env, stream string, version uint64, events ...domain.Event) {
	tb.Helper()
	data := make([]eventstore.EventData, len(events))
	for i, ev := range events {
		b, err := domain.EncodeEvent(ev)
		if err != nil {
			tb.Fatal(err)
		}
		data[i] = eventstore.EventData{ID: eventstore.NewEventID(), Type: ev.EventType(), SchemaVersion: domain.SchemaVersion, Data: b}
	}
	if _, err := e.store.Append(ctx, stream, eventstore.Exact(version), data...); err != nil {
		tb.Fatal(err)
	}
}
