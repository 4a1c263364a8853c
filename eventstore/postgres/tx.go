package postgres

import (
	"context"
	"errors"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rendertrust/rendertrust/eventstore"
)

// backend adapts the pool to eventstore.Backend.
type backend struct{ pool *pgxpool.Pool }

func (b backend) Begin(ctx context.Context) (eventstore.Tx, error) {
	tx, err := b.pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return &txn{tx: tx}, nil
}

type txn struct{ tx pgx.Tx }

// Head locks the tail row: other processes' appends wait here until we commit.
func (t *txn) Head(ctx context.Context) (uint64, error) {
	var head int64
	err := t.tx.QueryRow(ctx, `SELECT position FROM log_tail FOR UPDATE`).Scan(&head)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, errNoTail
	}
	return uint64(head), err
}

func (t *txn) StreamVersions(ctx context.Context, streams []string) (map[string]uint64, error) {
	rows, err := t.tx.Query(ctx, `SELECT stream, MAX(version) FROM events WHERE stream = ANY($1) GROUP BY stream`, streams)
	if err != nil {
		return nil, err
	}
	versions := make(map[string]uint64, len(streams))
	var stream string
	var v int64
	_, err = pgx.ForEachRow(rows, []any{&stream, &v}, func() error {
		versions[stream] = uint64(v)
		return nil
	})
	return versions, err
}

func (t *txn) LookupIDs(ctx context.Context, ids []string) (map[string]eventstore.StoredRef, error) {
	rows, err := t.tx.Query(ctx, `SELECT id, stream, version, position FROM events WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, err
	}
	found := map[string]eventstore.StoredRef{}
	var id, stream string
	var version, position int64
	_, err = pgx.ForEachRow(rows, []any{&id, &stream, &version, &position}, func() error {
		found[id] = eventstore.StoredRef{Stream: stream, Version: uint64(version), Position: uint64(position)}
		return nil
	})
	return found, err
}

// Insert streams the rows with COPY.
func (t *txn) Insert(ctx context.Context, rows []eventstore.Row) error {
	_, err := t.tx.CopyFrom(ctx, pgx.Identifier{"events"},
		[]string{"position", "stream", "version", "id", "type", "recorded_at", "bytes", "leaf_hash"},
		pgx.CopyFromSlice(len(rows), func(i int) ([]any, error) {
			r := rows[i]
			return []any{int64(r.Position), r.Stream, int64(r.Version), r.ID, r.Type, r.RecordedAt, r.Bytes, r.LeafHash[:]}, nil
		}))
	return err
}

// Commit moves the tail and notifies listeners; NOTIFY is delivered on commit.
func (t *txn) Commit(ctx context.Context, head uint64) error {
	batch := &pgx.Batch{}
	batch.Queue(`UPDATE log_tail SET position = $1`, int64(head))
	batch.Queue(`SELECT pg_notify($1, $2)`, notifyChannel, strconv.FormatUint(head, 10))
	if err := t.tx.SendBatch(ctx, batch).Close(); err != nil {
		return err
	}
	return t.tx.Commit(ctx)
}

func (t *txn) Rollback() error {
	err := t.tx.Rollback(context.Background())
	if errors.Is(err, pgx.ErrTxClosed) {
		return nil
	}
	return err
}
