package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/rendertrust/rendertrust/eventstore/sqlite"
	"github.com/rendertrust/rendertrust/internal/sqldb"
)

// synchronousFull is PRAGMA synchronous's answer for FULL: every commit is
// fsynced, so an acknowledged append survives a power loss, not only a
// killed process.
const synchronousFull = 2

// TestSQLiteRunsSynchronousFull checks that the event store's connections
// (through the DSN Open uses) and the state database both run in WAL mode
// with synchronous=FULL.
func TestSQLiteRunsSynchronousFull(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "events.db")
	store, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for _, txlock := range []string{"immediate", "deferred"} {
		db, err := sql.Open("sqlite", sqlite.DSN(path, txlock))
		if err != nil {
			t.Fatal(err)
		}
		checkDurable(t, "event store ("+txlock+")", db.QueryRowContext(ctx, "PRAGMA synchronous"), db.QueryRowContext(ctx, "PRAGMA journal_mode"))
		db.Close()
	}
	state, err := sqldb.OpenSQLite(filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer state.Close()
	checkDurable(t, "state database", state.QueryRow(ctx, "PRAGMA synchronous"), state.QueryRow(ctx, "PRAGMA journal_mode"))
}

type scanner interface{ Scan(...any) error }

func checkDurable(t *testing.T, what string, sync, journal scanner) {
	t.Helper()
	var level int
	var mode string
	if err := sync.Scan(&level); err != nil {
		t.Fatalf("%s: PRAGMA synchronous: %v", what, err)
	}
	if err := journal.Scan(&mode); err != nil {
		t.Fatalf("%s: PRAGMA journal_mode: %v", what, err)
	}
	if level != synchronousFull || mode != "wal" {
		t.Errorf("%s: synchronous=%d, journal_mode=%s; want %d (FULL), wal", what, level, mode, synchronousFull)
	}
}
