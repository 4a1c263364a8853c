// Package postgres is the PostgreSQL event store, through pgx.
//
// In one process a writer goroutine group-commits concurrent appends (one
// transaction, one WAL flush). Across processes, every appending transaction
// locks the log's tail row until it commits, so positions stay gapless and in
// commit order however many store instances share the database. A batch holds
// that lock for two round trips (see backend). Subscribers
// are woken by LISTEN/NOTIFY, also for appends made by other processes.
package postgres

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rendertrust/rendertrust/eventstore"
)

//go:embed schema.sql
var schema string

const (
	// notifyChannel is the LISTEN/NOTIFY channel that carries the new head.
	notifyChannel = "rendertrust_events"
	// schemaLockID is the advisory lock that serializes schema creation.
	schemaLockID = 7351_0001
	// listenRetry is the wait before re-opening a dropped LISTEN connection.
	listenRetry = time.Second
	// subscriptionPoll re-reads the log while notifications may be missed
	// (a dropped LISTEN connection).
	subscriptionPoll = 2 * time.Second
)

// Store is the PostgreSQL event store.
type Store struct {
	pool      *pgxpool.Pool
	signal    *eventstore.HeadSignal
	committer *eventstore.Committer
	cancel    context.CancelFunc
	listening sync.WaitGroup
	// scanMax bounds the positions one filtered read looks at
	// (filteredScanMax; tests lower it).
	scanMax int
}

var (
	_ eventstore.Store         = (*Store)(nil)
	_ eventstore.MultiAppender = (*Store)(nil)
)

// Open connects to the database at dsn, creates the schema if needed and
// starts the writer and the notification listener.
func Open(ctx context.Context, dsn string) (*Store, error) {
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	if err := createSchema(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	s := &Store{pool: pool, signal: &eventstore.HeadSignal{}, scanMax: filteredScanMax}
	head, err := s.Head(ctx)
	if err != nil {
		pool.Close()
		return nil, err
	}
	s.signal.Advance(head)
	listenCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.listening.Add(1)
	go s.listen(listenCtx)
	s.committer = eventstore.NewCommitter(backend{pool: pool}, s.signal)
	return s, nil
}

// Pool returns the store's connection pool, for read models that live in
// the same database.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

func createSchema(ctx context.Context, pool *pgxpool.Pool) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, schemaLockID); err != nil {
			return fmt.Errorf("lock schema: %w", err)
		}
		if _, err := tx.Exec(ctx, schema); err != nil {
			return fmt.Errorf("create event store schema: %w", err)
		}
		return nil
	})
}

// Append implements eventstore.Store.
func (s *Store) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	return s.committer.Append(ctx, stream, expected, events...)
}

// Head implements eventstore.Store.
func (s *Store) Head(ctx context.Context) (uint64, error) {
	var head int64
	if err := s.pool.QueryRow(ctx, `SELECT position FROM log_tail`).Scan(&head); err != nil {
		return 0, fmt.Errorf("read head: %w", err)
	}
	return uint64(head), nil
}

// ReadAll implements eventstore.Store.
func (s *Store) ReadAll(ctx context.Context, from uint64, max int) ([]eventstore.RecordedEvent, error) {
	from = eventstore.ClampFrom(from)
	rows, err := s.pool.Query(ctx,
		`SELECT position, stream, version, bytes, leaf_hash FROM events WHERE position >= $1 ORDER BY position LIMIT $2`,
		int64(from), eventstore.ClampMax(max))
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
	rows, err := s.pool.Query(ctx,
		`SELECT position, stream, version, bytes, leaf_hash FROM events WHERE stream = $1 AND version >= $2 ORDER BY version LIMIT $3`,
		stream, int64(from), eventstore.ClampMax(max))
	if err != nil {
		return nil, fmt.Errorf("read %s from %d: %w", stream, from, err)
	}
	events, err := scanEvents(rows)
	if err != nil {
		return nil, err
	}
	return events, eventstore.CheckVersions(from, events)
}

func scanEvents(rows pgx.Rows) ([]eventstore.RecordedEvent, error) {
	defer rows.Close()
	return eventstore.ScanEvents(rows)
}

// Subscribe implements eventstore.Store.
func (s *Store) Subscribe(ctx context.Context, from uint64) *eventstore.Subscription {
	return eventstore.NewSubscription(ctx, s.ReadAll, s.signal, from, subscriptionPoll)
}

// listen follows NOTIFY on notifyChannel, advancing the head signal, and
// reconnects after a drop until ctx ends.
func (s *Store) listen(ctx context.Context) {
	defer s.listening.Done()
	for ctx.Err() == nil {
		err := s.listenOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		_ = err // the subscriptions' poll covers the gap until we are back
		select {
		case <-ctx.Done():
		case <-time.After(listenRetry):
		}
	}
}

func (s *Store) listenOnce(ctx context.Context) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		return err
	}
	defer conn.Exec(context.Background(), "UNLISTEN "+notifyChannel)
	for {
		n, err := conn.Conn().WaitForNotification(ctx)
		if err != nil {
			return err
		}
		if head, err := strconv.ParseUint(n.Payload, 10, 64); err == nil {
			s.signal.Advance(head)
		}
	}
}

// Close implements eventstore.Store.
func (s *Store) Close() error {
	s.committer.Close()
	s.cancel()
	s.listening.Wait()
	s.pool.Close()
	return nil
}

var errNoTail = errors.New("log_tail row missing")

// AppendMulti implements eventstore.MultiAppender: the parts share one
// transaction of the group commit.
func (s *Store) AppendMulti(ctx context.Context, parts ...eventstore.StreamAppend) ([]eventstore.AppendResult, error) {
	return s.committer.AppendMulti(ctx, parts...)
}
