package cluster

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/internal/sqldb"
)

// Shared read-your-writes marks. A creator's write answers without waiting
// for the read models and leaves the log position it reached as the
// creator's mark; the creator's next read, through whichever API process,
// waits until the read models pass it. One row per creator who ever wrote
// (a primary-key upsert per creator write, a primary-key read per creator
// read); rows are never deleted, so the table grows with the creators, not
// with their writes.
const writeMarksSchema = `CREATE TABLE IF NOT EXISTS write_marks (
	user_id  TEXT PRIMARY KEY,
	position BIGINT NOT NULL
)`

// WriteMarks keeps each creator's last write position in the write_marks
// table (PostgreSQL), for every API process to read.
type WriteMarks struct {
	db *sqldb.DB
}

// NewWriteMarks creates the table if needed and returns the marks on db,
// which must be PostgreSQL.
func NewWriteMarks(ctx context.Context, db *sqldb.DB) (*WriteMarks, error) {
	if db == nil || db.Dialect != sqldb.Postgres {
		return nil, errors.New("cluster: shared write marks live in PostgreSQL")
	}
	if err := db.Migrate(ctx, "cluster_write_marks", []string{writeMarksSchema}); err != nil {
		return nil, err
	}
	return &WriteMarks{db: db}, nil
}

// Wrote records that user's write reached position; a mark never goes
// down. The upsert commits without waiting for its WAL flush
// (synchronous_commit off): the row is visible to every other session at
// commit all the same, and a crash of the database may lose only the last
// marks — a read then may not wait for a write it should have, which
// weakens read-your-writes for that moment but never touches the ledger,
// whose appends commit synchronously.
func (w *WriteMarks) Wrote(ctx context.Context, user domain.UserID, position uint64) error {
	// One statement, one round trip: set_config(…, true) lasts until the
	// end of the statement's own transaction, whose commit it governs.
	_, err := w.db.Exec(ctx, `INSERT INTO write_marks (user_id, position)
		SELECT ?::text, ?::bigint FROM (SELECT set_config('synchronous_commit', 'off', true)) AS async
		ON CONFLICT (user_id) DO UPDATE SET position = GREATEST(write_marks.position, EXCLUDED.position)`,
		string(user), int64(position))
	if err != nil {
		return fmt.Errorf("cluster: write the mark of %s: %w", user, err)
	}
	return nil
}

// Mark returns user's last write position (0: none).
func (w *WriteMarks) Mark(ctx context.Context, user domain.UserID) (uint64, error) {
	var pos int64
	err := w.db.QueryRow(ctx, `SELECT position FROM write_marks WHERE user_id = ?`, string(user)).Scan(&pos)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("cluster: read the mark of %s: %w", user, err)
	}
	return uint64(pos), nil
}
