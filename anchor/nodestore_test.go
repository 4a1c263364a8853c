package anchor_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/rendertrust/rendertrust/anchor"
	"github.com/rendertrust/rendertrust/anchor/merkle"
	"github.com/rendertrust/rendertrust/anchor/merkle/storetest"
	"github.com/rendertrust/rendertrust/internal/pgtest"
	"github.com/rendertrust/rendertrust/internal/sqldb"
)

// dialects opens an empty, migrated database of each dialect. PostgreSQL
// is skipped without DATABASE_URL outside CI (pgtest).
var dialects = map[string]func(tb testing.TB) *sqldb.DB{
	"SQLite":     mustSQLite,
	"PostgreSQL": mustPostgres,
}

func mustSQLite(tb testing.TB) *sqldb.DB {
	tb.Helper()
	db, err := sqldb.OpenSQLite(filepath.Join(tb.TempDir(), "anchor.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	mustMigrate(tb, db)
	return db
}

func mustPostgres(tb testing.TB) *sqldb.DB {
	tb.Helper()
	dsn := pgtest.NewDatabase(tb)
	db, err := sqldb.OpenPostgres(context.Background(), dsn)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	mustMigrate(tb, db)
	return db
}

func mustMigrate(tb testing.TB, db *sqldb.DB) {
	tb.Helper()
	if err := anchor.Migrate(context.Background(), db); err != nil {
		tb.Fatalf("Migrate: %v", err)
	}
	// Migrating twice is a no-op.
	if err := anchor.Migrate(context.Background(), db); err != nil {
		tb.Fatalf("Migrate again: %v", err)
	}
}

func TestNodeStore(t *testing.T) {
	for name, open := range dialects {
		t.Run(name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) merkle.NodeStore { return anchor.NewNodeStore(open(t)) })
		})
	}
}
