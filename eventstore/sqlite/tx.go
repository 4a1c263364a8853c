package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/rendertrust/rendertrust/eventstore"
)

// insertRowsMax bounds the rows in one INSERT statement (8 parameters each,
// well under SQLite's 32,766-parameter limit).
const insertRowsMax = 500

// backend adapts the writer connection to eventstore.Backend.
type backend struct{ db *sql.DB }

// Begin takes SQLite's write lock (BEGIN IMMEDIATE) and reads the snapshot
// with one statement per question: in-process, round trips cost nothing.
func (b backend) Begin(ctx context.Context, streams, ids []string) (eventstore.Tx, eventstore.Snapshot, error) {
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, eventstore.Snapshot{}, err
	}
	t := &txn{tx: tx}
	snap, err := t.snapshot(ctx, streams, ids)
	if err != nil {
		t.Rollback()
		return nil, eventstore.Snapshot{}, err
	}
	return t, snap, nil
}

type txn struct{ tx *sql.Tx }

func (t *txn) snapshot(ctx context.Context, streams, ids []string) (eventstore.Snapshot, error) {
	var snap eventstore.Snapshot
	var err error
	if snap.Head, err = t.head(ctx); err != nil {
		return snap, fmt.Errorf("read head: %w", err)
	}
	if snap.Versions, err = t.streamVersions(ctx, streams); err != nil {
		return snap, fmt.Errorf("read stream versions: %w", err)
	}
	if snap.IDs, err = t.lookupIDs(ctx, ids); err != nil {
		return snap, fmt.Errorf("look up event ids: %w", err)
	}
	return snap, nil
}

func (t *txn) head(ctx context.Context) (uint64, error) {
	var head uint64
	err := t.tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(position), 0) FROM events`).Scan(&head)
	return head, err
}

// streamVersions reads each stream's last version with its own indexed
// lookup: a GROUP BY over an IN list would scan every event of the streams.
func (t *txn) streamVersions(ctx context.Context, streams []string) (map[string]uint64, error) {
	stmt, err := t.tx.PrepareContext(ctx, `SELECT version FROM events WHERE stream = ? ORDER BY version DESC LIMIT 1`)
	if err != nil {
		return nil, err
	}
	defer stmt.Close()
	versions := make(map[string]uint64, len(streams))
	for _, stream := range streams {
		var v uint64
		switch err := stmt.QueryRowContext(ctx, stream).Scan(&v); {
		case err == sql.ErrNoRows:
		case err != nil:
			return nil, err
		default:
			versions[stream] = v
		}
	}
	return versions, nil
}

func (t *txn) lookupIDs(ctx context.Context, ids []string) (map[string]eventstore.StoredRef, error) {
	q := `SELECT id, stream, version, position FROM events WHERE id IN (` + placeholders(len(ids)) + `)`
	rows, err := t.tx.QueryContext(ctx, q, anys(ids)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	found := map[string]eventstore.StoredRef{}
	for rows.Next() {
		var id string
		var ref eventstore.StoredRef
		if err := rows.Scan(&id, &ref.Stream, &ref.Version, &ref.Position); err != nil {
			return nil, err
		}
		found[id] = ref
	}
	return found, rows.Err()
}

// Commit inserts the rows in chunks and commits; on error it rolls back.
func (t *txn) Commit(ctx context.Context, rows []eventstore.Row, head uint64) error {
	if err := t.insert(ctx, rows); err != nil {
		t.Rollback()
		return fmt.Errorf("insert events: %w", err)
	}
	return t.tx.Commit()
}

func (t *txn) insert(ctx context.Context, rows []eventstore.Row) error {
	for len(rows) > 0 {
		n := min(len(rows), insertRowsMax)
		if err := t.insertChunk(ctx, rows[:n]); err != nil {
			return err
		}
		rows = rows[n:]
	}
	return nil
}

func (t *txn) insertChunk(ctx context.Context, rows []eventstore.Row) error {
	var q strings.Builder
	q.WriteString(`INSERT INTO events (position, stream, version, id, type, recorded_at, bytes, leaf_hash) VALUES `)
	args := make([]any, 0, len(rows)*8)
	for i, r := range rows {
		if i > 0 {
			q.WriteByte(',')
		}
		q.WriteString("(?,?,?,?,?,?,?,?)")
		args = append(args, r.Position, r.Stream, r.Version, r.ID, r.Type, r.RecordedAt.UnixMicro(), r.Bytes, r.LeafHash[:])
	}
	if _, err := t.tx.ExecContext(ctx, q.String(), args...); err != nil {
		return fmt.Errorf("insert %d events at %d: %w", len(rows), rows[0].Position, err)
	}
	return nil
}

func (t *txn) Rollback() error {
	err := t.tx.Rollback()
	if err == sql.ErrTxDone {
		return nil
	}
	return err
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
