package postgres_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/rendertrust/rendertrust/eventstore"
	"github.com/rendertrust/rendertrust/eventstore/postgres"
	"github.com/rendertrust/rendertrust/eventstore/storetest"
	"github.com/rendertrust/rendertrust/internal/pgtest"
)

// Harness runs the contract suite on a real PostgreSQL server, one fresh
// database per case.
var Harness = storetest.Harness{
	NewDB: pgtest.NewDatabase,
	Open: func(tb testing.TB, dsn string) eventstore.Store {
		s, err := postgres.Open(context.Background(), dsn)
		if err != nil {
			tb.Fatalf("open: %v", err)
		}
		return s
	},
	MultiAppend: true,
	Tamper: func(tb testing.TB, dsn string, position uint64) {
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			tb.Fatal(err)
		}
		defer conn.Close(ctx)
		var b []byte
		if err := conn.QueryRow(ctx, `SELECT bytes FROM events WHERE position = $1`, int64(position)).Scan(&b); err != nil {
			tb.Fatalf("tamper: read %d: %v", position, err)
		}
		b[len(b)/2] ^= 0x01
		if _, err := conn.Exec(ctx, `UPDATE events SET bytes = $1 WHERE position = $2`, b, int64(position)); err != nil {
			tb.Fatalf("tamper: write %d: %v", position, err)
		}
	},
}

func TestStore(t *testing.T) { storetest.Run(t, Harness) }

func BenchmarkStore(b *testing.B) { storetest.Bench(b, Harness) }
