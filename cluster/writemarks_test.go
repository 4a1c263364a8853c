package cluster_test

import (
	"context"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/rendertrust/rendertrust/cluster"
	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/internal/pgtest"
	"github.com/rendertrust/rendertrust/internal/sqldb"
)

func newWriteMarks(t *testing.T, dsn string) *cluster.WriteMarks {
	t.Helper()
	db, err := sqldb.OpenPostgres(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	w, err := cluster.NewWriteMarks(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func mustMark(t *testing.T, w *cluster.WriteMarks, user domain.UserID) uint64 {
	t.Helper()
	pos, err := w.Mark(context.Background(), user)
	if err != nil {
		t.Fatal(err)
	}
	return pos
}

// TestWriteMarksShared: 1. a creator who never wrote has no mark; 2. a
// mark one process writes is read by another at once; 3. an older write
// recorded later never lowers it; 4. marks are per creator; 5. processes
// writing one creator's marks at once leave the highest.
func TestWriteMarksShared(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	a, b := newWriteMarks(t, dsn), newWriteMarks(t, dsn)
	ctx := context.Background()

	if got := mustMark(t, b, "alice"); got != 0 {
		t.Fatalf("step 1: alice's mark before any write %d, want 0", got)
	}
	if err := a.Wrote(ctx, "alice", 42); err != nil {
		t.Fatal(err)
	}
	if got := mustMark(t, b, "alice"); got != 42 {
		t.Fatalf("step 2: alice's mark read by another process %d, want 42", got)
	}
	if err := b.Wrote(ctx, "alice", 7); err != nil {
		t.Fatal(err)
	}
	if got := mustMark(t, a, "alice"); got != 42 {
		t.Fatalf("step 3: alice's mark after an older write %d, want 42", got)
	}
	if got := mustMark(t, a, "bob"); got != 0 {
		t.Fatalf("step 4: bob's mark %d, want 0", got)
	}

	const writes = 40
	var wg sync.WaitGroup
	errs := make(chan error, writes)
	for i := range writes {
		w := []*cluster.WriteMarks{a, b}[i%2]
		wg.Go(func() { errs <- w.Wrote(ctx, "carol", uint64(100+i)) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := mustMark(t, b, "carol"); got != 100+writes-1 {
		t.Fatalf("step 5: carol's mark after %d concurrent writes %d, want %d", writes, got, 100+writes-1)
	}
}

// TestWriteMarksNeedPostgres: the embedded SQLite store serves one process,
// whose marks stay in memory.
func TestWriteMarksNeedPostgres(t *testing.T) {
	db, err := sqldb.OpenSQLite(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := cluster.NewWriteMarks(context.Background(), db); err == nil {
		t.Fatal("write marks opened on SQLite, want an error")
	}
}

// BenchmarkWriteMarks measures what read-your-writes across processes adds
// on PostgreSQL: the upsert after a creator's write and the primary-key
// read before a creator's GET (1,000 creators).
func BenchmarkWriteMarks(b *testing.B) {
	dsn := pgtest.NewDatabase(b)
	db, err := sqldb.OpenPostgres(context.Background(), dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	w, err := cluster.NewWriteMarks(context.Background(), db)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	user := func(i int) domain.UserID { return domain.UserID(strconv.Itoa(i % 1000)) }
	b.Run("Wrote", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if err := w.Wrote(ctx, user(i), uint64(i)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Mark", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, err := w.Mark(ctx, user(i)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
