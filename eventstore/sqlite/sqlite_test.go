package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/rendertrust/rendertrust/eventstore"
	"github.com/rendertrust/rendertrust/eventstore/sqlite"
	"github.com/rendertrust/rendertrust/eventstore/storetest"
)

// Harness runs the contract suite on real SQLite files.
var Harness = storetest.Harness{
	NewDB: func(tb testing.TB) string { return filepath.Join(tb.TempDir(), "events.db") },
	Open: func(tb testing.TB, path string) eventstore.Store {
		s, err := sqlite.Open(context.Background(), path)
		if err != nil {
			tb.Fatalf("open %s: %v", path, err)
		}
		return s
	},
	MultiAppend: true,
	Tamper: func(tb testing.TB, path string, position uint64) {
		db, err := sql.Open("sqlite", sqlite.DSN(path, "immediate"))
		if err != nil {
			tb.Fatal(err)
		}
		defer db.Close()
		var b []byte
		if err := db.QueryRow(`SELECT bytes FROM events WHERE position = ?`, position).Scan(&b); err != nil {
			tb.Fatalf("tamper: read %d: %v", position, err)
		}
		b[len(b)/2] ^= 0x01
		if _, err := db.Exec(`UPDATE events SET bytes = ? WHERE position = ?`, b, position); err != nil {
			tb.Fatalf("tamper: write %d: %v", position, err)
		}
	},
}

func TestStore(t *testing.T) { storetest.Run(t, Harness) }

func BenchmarkStore(b *testing.B) { storetest.Bench(b, Harness) }

func BenchmarkFsync(b *testing.B) { storetest.BenchFsync(b, b.TempDir()) }
