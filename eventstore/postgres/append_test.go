package postgres

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rendertrust/rendertrust/eventstore"
	"github.com/rendertrust/rendertrust/eventstore/storetest"
	"github.com/rendertrust/rendertrust/internal/pgtest"
)

// countingConn counts the client's writes to the server. pgx flushes a
// whole pipelined batch (and every other request) with one write and then
// waits for the answer, so for small batches writes are round trips.
type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(b []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(b)
}

// writer is a Committer on its own one-connection pool whose writes are counted.
type writer struct {
	*eventstore.Committer
	pool   *pgxpool.Pool
	writes atomic.Int64
}

// mustOpenWriter opens a writer on dsn; params are extra session settings.
func mustOpenWriter(tb testing.TB, dsn string, params map[string]string) *writer {
	tb.Helper()
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		tb.Fatal(err)
	}
	w := &writer{}
	cfg.MaxConns = 1 // every batch uses the same connection
	cfg.ShouldPing = func(context.Context, pgxpool.ShouldPingParams) bool { return false }
	for k, v := range params {
		cfg.ConnConfig.RuntimeParams[k] = v
	}
	var dialer net.Dialer
	cfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dialer.DialContext(ctx, network, addr)
		return countingConn{Conn: c, writes: &w.writes}, err
	}
	if w.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		tb.Fatal(err)
	}
	if err := createSchema(ctx, w.pool); err != nil {
		tb.Fatal(err)
	}
	w.Committer = eventstore.NewCommitter(backend{pool: w.pool}, &eventstore.HeadSignal{})
	tb.Cleanup(func() {
		w.Close()
		w.pool.Close()
	})
	return w
}

func (w *writer) mustAppend(tb testing.TB, stream string, expected eventstore.ExpectedVersion, events ...eventstore.EventData) eventstore.AppendResult {
	tb.Helper()
	r, err := w.Append(context.Background(), stream, expected, events...)
	if err != nil {
		tb.Fatalf("append to %s: %v", stream, err)
	}
	return r
}

// roundTrips runs append and returns the writes it made.
func (w *writer) roundTrips(tb testing.TB, append func() error) int64 {
	tb.Helper()
	before := w.writes.Load()
	if err := append(); err != nil {
		tb.Fatal(err)
	}
	return w.writes.Load() - before
}

// TestAppendRoundTrips counts the round trips of one batch once the
// connection has prepared its statements: two whether the batch writes
// (lock and read, then insert and commit) or not (lock and read, then
// ROLLBACK).
func TestAppendRoundTrips(t *testing.T) {
	w := mustOpenWriter(t, pgtest.NewDatabase(t), nil)
	ctx := context.Background()
	events := storetest.Events("counted", 3)
	cases := []struct {
		name   string
		append func() error
	}{
		{"New", func() error {
			_, err := w.Append(ctx, "fresh", eventstore.Any, storetest.Events("counted", 3)...)
			return err
		}},
		{"Duplicate", func() error {
			_, err := w.Append(ctx, "counted", eventstore.Any, events...)
			return err
		}},
		{"Conflict", func() error {
			_, err := w.Append(ctx, "counted", eventstore.NoStream, storetest.Events("counted", 1)...)
			if !errors.Is(err, eventstore.ErrConflict) {
				return err
			}
			return nil
		}},
	}
	w.mustAppend(t, "counted", eventstore.NoStream, events...)
	for _, c := range cases {
		w.roundTrips(t, c.append) // prepares the statements this case sends
		t.Run(c.name, func(t *testing.T) {
			if got := w.roundTrips(t, c.append); got != 2 {
				t.Errorf("round trips = %d, want 2", got)
			}
		})
	}
}

// TestFailedBatchLeavesConnectionClean makes a batch fail in each of its two
// round trips and checks that nothing was written, the tail lock is free and
// the pool's one connection was kept, outside any transaction, and still
// appends. Steps:
//  1. append one event; note the connection's server process;
//  2. provoke the failure with a second connection;
//  3. append: it fails with the provoked error, and nothing is written;
//  4. the same server process answers, idle, and the tail is not locked;
//  5. undo the provocation: the same append now takes position 2.
func TestFailedBatchLeavesConnectionClean(t *testing.T) {
	cases := []struct {
		name     string
		code     string // SQLSTATE of the failure
		provoke  string // run in other's open transaction
		keepOpen bool   // other's transaction must stay open during the append
	}{
		// Another writer that ignored the tail lock took position 2: the
		// INSERT of the second round trip violates the primary key.
		{"InsertFails", "23505", `INSERT INTO events (position, stream, version, id, type, recorded_at, bytes, leaf_hash)
			VALUES (2, 'rogue', 1, 'rogue-1', 'rogue', now(), '\x00', '\x00')`, false},
		// Another transaction holds the tail: the first round trip's lock
		// runs out of lock_timeout.
		{"LockFails", "55P03", `SELECT position FROM log_tail FOR UPDATE`, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dsn := pgtest.NewDatabase(t)
			w := mustOpenWriter(t, dsn, map[string]string{"lock_timeout": "200ms"})
			ctx := context.Background()
			w.mustAppend(t, "a", eventstore.NoStream, storetest.Events("a", 1)...)
			pid := serverPID(t, w.pool)

			other := mustConnect(t, dsn)
			tx, err := other.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(ctx)
			if _, err := tx.Exec(ctx, c.provoke); err != nil {
				t.Fatalf("provoke: %v", err)
			}
			if !c.keepOpen {
				if err := tx.Commit(ctx); err != nil {
					t.Fatal(err)
				}
			}

			_, err = w.Append(ctx, "b", eventstore.NoStream, storetest.Events("b", 1)...)
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != c.code {
				t.Fatalf("append error = %v, want SQLSTATE %s", err, c.code)
			}
			if err := tx.Rollback(ctx); err != nil && !errors.Is(err, pgx.ErrTxClosed) {
				t.Fatal(err)
			}
			checkNothingWritten(t, other)
			checkConnectionClean(t, other, w.pool, pid)
			checkTailFree(t, other)

			if _, err := other.Exec(ctx, `DELETE FROM events WHERE stream = 'rogue'`); err != nil {
				t.Fatal(err)
			}
			if got := w.mustAppend(t, "b", eventstore.NoStream, storetest.Events("b", 1)...); got.FirstPosition != 2 {
				t.Errorf("append after the failure at position %d, want 2", got.FirstPosition)
			}
		})
	}
}

func mustConnect(tb testing.TB, dsn string) *pgx.Conn {
	tb.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// serverPID returns the server process of the pool's one connection.
func serverPID(tb testing.TB, pool *pgxpool.Pool) uint32 {
	tb.Helper()
	conn, err := pool.Acquire(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Release()
	return conn.Conn().PgConn().PID()
}

func checkNothingWritten(tb testing.TB, conn *pgx.Conn) {
	tb.Helper()
	var tail, written int64
	err := conn.QueryRow(context.Background(),
		`SELECT (SELECT position FROM log_tail), (SELECT count(*) FROM events WHERE stream = 'b')`).Scan(&tail, &written)
	if err != nil {
		tb.Fatal(err)
	}
	if tail != 1 || written != 0 {
		tb.Errorf("after the failed append: tail %d, %d events of b; want 1, 0", tail, written)
	}
}

// checkConnectionClean checks, from other, that the writer's connection is
// idle outside any transaction on the server, then that the pool kept it
// (the same server process: it was cleaned, not dropped).
func checkConnectionClean(tb testing.TB, other *pgx.Conn, pool *pgxpool.Pool, pid uint32) {
	tb.Helper()
	ctx := context.Background()
	var state string
	err := other.QueryRow(ctx, `SELECT state FROM pg_stat_activity WHERE pid = $1`, int32(pid)).Scan(&state)
	if err != nil {
		tb.Fatalf("writer's server process %d: %v (the connection was dropped, not cleaned)", pid, err)
	}
	if state != "idle" {
		tb.Errorf("writer's connection is %q, want idle", state)
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Release()
	if got := conn.Conn().PgConn().PID(); got != pid {
		tb.Errorf("server process %d, want %d: the connection was dropped, not cleaned", got, pid)
	}
}

// checkTailFree locks the tail without waiting: it fails if any transaction,
// such as one left open by the failed batch, still holds it.
func checkTailFree(tb testing.TB, conn *pgx.Conn) {
	tb.Helper()
	ctx := context.Background()
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `SELECT position FROM log_tail FOR UPDATE NOWAIT`)
		return err
	})
	if err != nil {
		tb.Errorf("tail still locked: %v", err)
	}
}
