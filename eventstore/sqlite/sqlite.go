// Package sqlite is the embedded event store: one SQLite file in WAL mode
// with synchronous=FULL, so an acknowledged append survives power loss.
//
// One writer goroutine per store group-commits concurrent appends. Another
// process may append to the same file (SQLite serializes writers with its
// write lock, and positions are assigned inside the write transaction);
// subscribers in this process notice such appends by polling.
package sqlite

import (
	"context"
	"database/sql"
	_ "embed"
	"fmt"
	"net/url"
	"time"

	"github.com/rendertrust/rendertrust/eventstore"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

//go:embed schema.sql
var schema string

const (
	// readConnsMax bounds concurrent readers (WAL lets them run beside the writer).
	readConnsMax = 8
	// busyTimeout is how long a connection waits for another process's lock.
	busyTimeout = 10 * time.Second
	// foreignAppendPoll is how often subscribers look for appends made by
	// other processes, which cannot wake them directly.
	foreignAppendPoll = time.Second
)

// Store is the SQLite event store.
type Store struct {
	write     *sql.DB // one connection: the writer's
	read      *sql.DB
	signal    *eventstore.HeadSignal
	committer *eventstore.Committer

	// Reads are prepared once: parsing SQL is a large part of a small read.
	headStmt, readAllStmt, readStreamStmt *sql.Stmt
}

var (
	_ eventstore.Store         = (*Store)(nil)
	_ eventstore.MultiAppender = (*Store)(nil)
)

// Open opens (creating if needed) the event store in the SQLite file at path.
func Open(ctx context.Context, path string) (*Store, error) {
	write, err := openDB(path, 1, "immediate")
	if err != nil {
		return nil, err
	}
	if _, err := write.ExecContext(ctx, schema); err != nil {
		write.Close()
		return nil, fmt.Errorf("create event store schema in %s: %w", path, err)
	}
	read, err := openDB(path, readConnsMax, "deferred")
	if err != nil {
		write.Close()
		return nil, err
	}
	s := &Store{write: write, read: read, signal: &eventstore.HeadSignal{}}
	if err := s.prepare(ctx); err != nil {
		s.closeDBs()
		return nil, err
	}
	head, err := s.Head(ctx)
	if err != nil {
		s.closeDBs()
		return nil, err
	}
	s.signal.Advance(head)
	s.committer = eventstore.NewCommitter(backend{db: write}, s.signal)
	return s, nil
}

func (s *Store) prepare(ctx context.Context) error {
	var err error
	for _, p := range []struct {
		stmt **sql.Stmt
		q    string
	}{
		{&s.headStmt, `SELECT COALESCE(MAX(position), 0) FROM events`},
		{&s.readAllStmt, `SELECT position, stream, version, bytes, leaf_hash FROM events WHERE position >= ? ORDER BY position LIMIT ?`},
		{&s.readStreamStmt, `SELECT position, stream, version, bytes, leaf_hash FROM events WHERE stream = ? AND version >= ? ORDER BY version LIMIT ?`},
	} {
		if *p.stmt, err = s.read.PrepareContext(ctx, p.q); err != nil {
			return fmt.Errorf("prepare %q: %w", p.q, err)
		}
	}
	return nil
}

// DSN returns the connection string the store uses for path: WAL,
// synchronous=FULL, a busy timeout and the given transaction lock mode.
func DSN(path, txlock string) string {
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	q.Add("_pragma", "page_size(16384)")   // fewer, larger WAL writes per commit; applies to new files
	q.Add("_pragma", "cache_size(-65536)") // 64 MiB: keeps the id and stream indexes hot
	q.Set("_txlock", txlock)
	return "file:" + path + "?" + q.Encode()
}

func openDB(path string, conns int, txlock string) (*sql.DB, error) {
	db, err := sql.Open("sqlite", DSN(path, txlock))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	db.SetConnMaxLifetime(0)
	return db, nil
}

// Append implements eventstore.Store.
func (s *Store) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	return s.committer.Append(ctx, stream, expected, events...)
}

// Head implements eventstore.Store.
func (s *Store) Head(ctx context.Context) (uint64, error) {
	var head uint64
	if err := s.headStmt.QueryRowContext(ctx).Scan(&head); err != nil {
		return 0, fmt.Errorf("read head: %w", err)
	}
	return head, nil
}

// ReadAll implements eventstore.Store.
func (s *Store) ReadAll(ctx context.Context, from uint64, max int) ([]eventstore.RecordedEvent, error) {
	from = eventstore.ClampFrom(from)
	rows, err := s.readAllStmt.QueryContext(ctx, from, eventstore.ClampMax(max))
	if err != nil {
		return nil, fmt.Errorf("read log from %d: %w", from, err)
	}
	events, err := scanEvents(rows)
	if err != nil {
		return nil, err
	}
	return events, eventstore.CheckPositions(from, events)
}

// ReadStream implements eventstore.Store.
func (s *Store) ReadStream(ctx context.Context, stream string, from uint64, max int) ([]eventstore.RecordedEvent, error) {
	from = eventstore.ClampFrom(from)
	rows, err := s.readStreamStmt.QueryContext(ctx, stream, from, eventstore.ClampMax(max))
	if err != nil {
		return nil, fmt.Errorf("read %s from %d: %w", stream, from, err)
	}
	events, err := scanEvents(rows)
	if err != nil {
		return nil, err
	}
	return events, eventstore.CheckVersions(from, events)
}

func scanEvents(rows *sql.Rows) ([]eventstore.RecordedEvent, error) {
	defer rows.Close()
	return eventstore.ScanEvents(rows)
}

// Subscribe implements eventstore.Store.
func (s *Store) Subscribe(ctx context.Context, from uint64) *eventstore.Subscription {
	return eventstore.NewSubscription(ctx, s.ReadAll, s.signal, from, foreignAppendPoll)
}

// Close implements eventstore.Store.
func (s *Store) Close() error {
	s.committer.Close()
	return s.closeDBs()
}

func (s *Store) closeDBs() error {
	err1 := s.read.Close()
	err2 := s.write.Close()
	if err1 != nil {
		return err1
	}
	return err2
}

// AppendMulti implements eventstore.MultiAppender: the parts share one
// transaction of the group commit.
func (s *Store) AppendMulti(ctx context.Context, parts ...eventstore.StreamAppend) ([]eventstore.AppendResult, error) {
	return s.committer.AppendMulti(ctx, parts...)
}
