package anchor

import (
	"context"
	"strings"

	"github.com/rendertrust/rendertrust/internal/sqldb"
)

// migrationComponent names the anchor tables' migrations in sqldb.
const migrationComponent = "anchor"

// migrations create the anchor tables. Statements are only ever appended.
// {blob} is BLOB on SQLite and BYTEA on PostgreSQL; {without_rowid} drops
// SQLite's hidden rowid from tables keyed by more than one column.
//
//   - anchor_nodes: the Merkle tree's perfect subtrees (merkle.NodeStore),
//     written once, never changed.
//   - anchor_leaves: one row per log position: the event id, its leaf hash
//     and how many leaves up to it are not anchor records, so "is there
//     anything new to anchor" is one subtraction.
//   - anchor_records: the anchor index, one row per AnchorRecorded event,
//     keyed by that event's position; rebuilt by replaying the log.
//   - anchor_attempts: the anchor worker's signed transactions that are not
//     yet confirmed, so a restart resumes waiting for them.
var migrations = []string{
	`CREATE TABLE anchor_nodes (
		level SMALLINT NOT NULL,
		idx   BIGINT   NOT NULL,
		hash  {blob}   NOT NULL,
		PRIMARY KEY (level, idx)
	){without_rowid}`,
	`CREATE TABLE anchor_leaves (
		position    BIGINT NOT NULL PRIMARY KEY,
		event_id    TEXT   NOT NULL UNIQUE,
		leaf_hash   {blob} NOT NULL,
		data_leaves BIGINT NOT NULL
	)`,
	`CREATE TABLE anchor_records (
		position     BIGINT NOT NULL PRIMARY KEY,
		tree_size    BIGINT NOT NULL,
		root         {blob} NOT NULL,
		chain_id     BIGINT NOT NULL,
		contract     TEXT   NOT NULL,
		tx_hash      TEXT   NOT NULL,
		block_number BIGINT NOT NULL,
		block_hash   TEXT   NOT NULL,
		recorded_at  BIGINT NOT NULL
	)`,
	`CREATE INDEX anchor_records_by_size ON anchor_records (tree_size, position)`,
	`CREATE TABLE anchor_attempts (
		tx_hash   TEXT   NOT NULL PRIMARY KEY,
		nonce     BIGINT NOT NULL,
		tree_size BIGINT NOT NULL,
		root      {blob} NOT NULL,
		raw       {blob} NOT NULL,
		sent_at   BIGINT NOT NULL
	)`,
}

// Migrate creates or updates the anchor tables in db. It is safe to call
// from every process that uses them; it returns the database's error.
func Migrate(ctx context.Context, db *sqldb.DB) error {
	blob, withoutRowid := "BLOB", " WITHOUT ROWID"
	if db.Dialect == sqldb.Postgres {
		blob, withoutRowid = "BYTEA", ""
	}
	r := strings.NewReplacer("{blob}", blob, "{without_rowid}", withoutRowid)
	stmts := make([]string, len(migrations))
	for i, m := range migrations {
		stmts[i] = r.Replace(m)
	}
	return db.Migrate(ctx, migrationComponent, stmts)
}
