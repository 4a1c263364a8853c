package anchor_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rendertrust/rendertrust/anchor"
	"github.com/rendertrust/rendertrust/anchor/ethchain"
	"github.com/rendertrust/rendertrust/anchor/ethchain/ethchaintest"
	"github.com/rendertrust/rendertrust/anchor/proof"
	"github.com/rendertrust/rendertrust/eventstore"
	"github.com/rendertrust/rendertrust/eventstore/postgres"
	"github.com/rendertrust/rendertrust/eventstore/sqlite"
	"github.com/rendertrust/rendertrust/internal/pgtest"
	"github.com/rendertrust/rendertrust/internal/sqldb"
)

// TestLogResumesAndDetectsReplacedStore:
//
//  1. the log follows 300 entries appended in batches of every size, stops,
//     and reopens at the size it reached, then follows 50 more;
//  2. its roots equal those of a log rebuilt from scratch;
//  3. a log whose event store was replaced by another refuses to open,
//     with ErrDiverged.
func TestLogResumesAndDetectsReplacedStore(t *testing.T) {
	ctx := t.Context()
	e := ethchaintest.NewEnv(t, ethchaintest.EnvConfig{NoWorker: true})
	for n := 1; n <= 24; n++ {
		e.AppendEvents(t, n) // 1+2+…+24 = 300
	}
	if err := e.Log.Wait(ethchaintest.WaitCtx(t), 300); err != nil {
		t.Fatal(err)
	}
	if err := e.Stop(); err != nil {
		t.Fatal(err)
	}

	// 1.
	e = ethchaintest.NewEnv(t, ethchaintest.EnvConfig{Dir: e.Dir, NoWorker: true})
	if got := e.Log.Size(); got != 300 {
		t.Fatalf("reopened log size = %d, want 300", got)
	}
	e.AppendEvents(t, 50)
	if err := e.Log.Wait(ethchaintest.WaitCtx(t), 350); err != nil {
		t.Fatal(err)
	}
	dir := e.Dir

	// 2.
	fresh := ethchaintest.NewEnv(t, ethchaintest.EnvConfig{Dir: dir, NoWorker: true, DBFile: "fresh.DB"})
	if err := fresh.Log.Wait(ethchaintest.WaitCtx(t), 350); err != nil {
		t.Fatal(err)
	}
	for _, size := range []uint64{1, 299, 300, 301, 350} {
		a, err1 := e.Log.Root(ctx, size)
		b, err2 := fresh.Log.Root(ctx, size)
		if err1 != nil || err2 != nil || a != b {
			t.Fatalf("Root(%d) = %x, %v; rebuilt %x, %v", size, a, err1, b, err2)
		}
	}
	e.Stop()
	fresh.Stop()

	// 3.
	if err := os.Rename(filepath.Join(dir, "events.db"), filepath.Join(dir, "events.old")); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, "events.db-wal"))
	os.Remove(filepath.Join(dir, "events.db-shm"))
	other, err := sqlite.Open(ctx, filepath.Join(dir, "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	db, err := sqldb.OpenSQLite(filepath.Join(dir, "anchor.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := anchor.OpenLog(ctx, db, other, nil); !errors.Is(err, anchor.ErrDiverged) {
		t.Fatalf("OpenLog over a replaced event store: %v, want ErrDiverged", err)
	}
}

// TestPipelineOnPostgres runs the log, the worker and the service on
// PostgreSQL (events and audit log tables in one database), restarts
// them, and audits the result.
func TestPipelineOnPostgres(t *testing.T) {
	ctx := t.Context()
	dsn := pgtest.NewDatabase(t)
	c := ethchaintest.MustSimChain(t)
	c.Mine(t, 5*time.Millisecond)

	var ids []string
	for round := range 2 {
		store, err := postgres.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		db, err := sqldb.OpenPostgres(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		log, err := anchor.OpenLog(ctx, db, store, ethchaintest.Logger(t))
		if err != nil {
			t.Fatalf("OpenLog (round %d): %v", round, err)
		}
		sender := ethchain.NewSender(c.Writer, anchor.NewAttempts(db), ethchain.SenderConfig{PollInterval: ethchaintest.Poll, Logger: ethchaintest.Logger(t)})
		worker := anchor.NewWorker(log, sender, store, anchor.WorkerConfig{Interval: time.Hour, EveryEvents: 5, PollInterval: ethchaintest.Poll, Logger: ethchaintest.Logger(t)})
		service := anchor.NewService(db, store, anchor.ServiceConfig{Chain: c.Client, Trust: c.Trust()})
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 2)
		go func() { done <- log.Run(runCtx) }()
		go func() { done <- worker.Run(runCtx) }()

		for range 5 {
			id := eventstore.NewEventID()
			ids = append(ids, id)
			if _, err := store.Append(ctx, ethchaintest.Stream, eventstore.Any, eventstore.EventData{ID: id, Type: "test.happened", SchemaVersion: 1, Data: []byte(`{"round":1}`)}); err != nil {
				t.Fatal(err)
			}
		}
		want := uint64(5 + 6*round) // round 1: 5 entries, the record, 5 entries
		ethchaintest.WaitUntil(t, "the anchor on PostgreSQL", func() bool {
			size, err := service.LoadAnchoredSize(ctx)
			return err == nil && size >= want
		})
		for _, id := range ids {
			ethchaintest.MustVerified(t, "Verify on PostgreSQL", func() (*proof.Result, error) { return service.Verify(ctx, id) })
		}
		if round == 1 {
			report, err := service.Audit(ctx)
			if err != nil || !report.Verified || report.AnchorsChecked != 2 {
				t.Errorf("Audit on PostgreSQL = %+v, %v; want verified with 2 anchors", report, err)
			}
		}
		cancel()
		for range 2 {
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Errorf("Run: %v", err)
			}
		}
		store.Close()
		db.Close()
	}
}
