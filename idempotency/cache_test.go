package idempotency_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/idempotency"
	"github.com/rendertrust/rendertrust/internal/pgtest"
	"github.com/rendertrust/rendertrust/internal/sqldb"
)

// TestAnswerCache, on each database: 1. a new key is claimed with nothing
// stored; 2. the first answer kept is the one stored (a second Keep, from a
// concurrent first request, is ignored); 3. the same key and request is
// answered with it; 4. the same key with another request is
// domain.ErrIdempotencyConflict; 5. another scope's key is its own.
func TestAnswerCache(t *testing.T) {
	ctx := context.Background()
	for _, b := range []struct {
		name string
		open func(t *testing.T) (*sqldb.DB, error)
	}{
		{"SQLite", func(t *testing.T) (*sqldb.DB, error) { return sqldb.OpenSQLite(filepath.Join(t.TempDir(), "state.db")) }},
		{"PostgreSQL", func(t *testing.T) (*sqldb.DB, error) { return sqldb.OpenPostgres(ctx, pgtest.NewDatabase(t)) }},
	} {
		t.Run(b.name, func(t *testing.T) {
			db, err := b.open(t)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			answers, err := idempotency.New(ctx, db, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := answers.Claim(ctx, "u1", "key-1", "hash-a"); err != nil || got != nil {
				t.Fatalf("step 1: first Claim = %q, %v; want nothing stored", got, err)
			}
			if err := answers.Keep(ctx, "u1", "key-1", []byte("first")); err != nil {
				t.Fatal(err)
			}
			if err := answers.Keep(ctx, "u1", "key-1", []byte("second")); err != nil {
				t.Fatal(err)
			}
			if got, err := answers.Claim(ctx, "u1", "key-1", "hash-a"); err != nil || string(got) != "first" {
				t.Fatalf("step 3: repeated Claim = %q, %v; want the first answer", got, err)
			}
			if _, err := answers.Claim(ctx, "u1", "key-1", "hash-b"); !errors.Is(err, domain.ErrIdempotencyConflict) {
				t.Fatalf("step 4: same key, other request: %v, want ErrIdempotencyConflict", err)
			}
			if got, err := answers.Claim(ctx, "u2", "key-1", "hash-b"); err != nil || got != nil {
				t.Fatalf("step 5: another scope's Claim = %q, %v; want nothing stored", got, err)
			}
		})
	}
}
