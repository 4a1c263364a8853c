// Package audittest builds RenderTrust installations for the audit tools'
// tests and benchmarks: an event store and a state database (SQLite files
// or a PostgreSQL database), the audit log following the store, an anchor
// worker on the embedded dev chain, and the projections runner — the parts
// `rendertrust serve` runs, without the API — and fills them with the
// realistic histories of projections/projectiontest.
package audittest

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rendertrust/rendertrust/anchor"
	"github.com/rendertrust/rendertrust/anchor/devchain"
	"github.com/rendertrust/rendertrust/anchor/ethchain"
	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/eventstore"
	"github.com/rendertrust/rendertrust/eventstore/postgres"
	"github.com/rendertrust/rendertrust/eventstore/sqlite"
	"github.com/rendertrust/rendertrust/internal/pgtest"
	"github.com/rendertrust/rendertrust/internal/sqldb"
	"github.com/rendertrust/rendertrust/projections"
	"github.com/rendertrust/rendertrust/projections/projectiontest"
)

// Timings of an installation's workers, short so tests settle fast.
const (
	anchorInterval = 100 * time.Millisecond
	anchorEvery    = 50
	anchorPoll     = 20 * time.Millisecond
	// settleTimeout bounds Settle.
	settleTimeout = 60 * time.Second
	// settlePoll is how often Settle looks.
	settlePoll = 20 * time.Millisecond
)

// Options shape an installation.
type Options struct {
	// Postgres puts the log and the state in a fresh PostgreSQL database
	// (DATABASE_URL; skipped without it outside CI) instead of SQLite
	// files.
	Postgres bool
	// NoChain runs neither the audit log nor the anchor worker.
	NoChain bool
	// NoProjections does not run the projections runner.
	NoProjections bool
}

// Installation is a running installation.
type Installation struct {
	Dir        string // the data directory (SQLite files, the dev chain)
	EventsPath string // the SQLite event log's file; "" on PostgreSQL
	DSN        string // the PostgreSQL database; "" on SQLite

	Store    eventstore.Store
	DB       *sqldb.DB
	Chain    *devchain.Chain // nil with NoChain
	AuditLog *anchor.Log     // nil with NoChain
	Proofs   *anchor.Service
	Runner   *projections.Runner // nil with NoProjections

	cancel  context.CancelFunc
	workers sync.WaitGroup
}

// New starts an installation in a temporary directory, stopped and closed
// when tb ends.
func New(tb testing.TB, opts Options) *Installation {
	tb.Helper()
	ctx := context.Background()
	in := &Installation{Dir: tb.TempDir()}
	in.openStores(tb, opts.Postgres)
	ctx, in.cancel = context.WithCancel(ctx)
	tb.Cleanup(in.Stop)
	if !opts.NoChain {
		in.startAnchoring(tb, ctx)
	} else {
		in.Proofs = anchor.NewService(in.DB, in.Store, anchor.ServiceConfig{})
	}
	if !opts.NoProjections {
		r, err := projections.NewRunner(projections.Config{DB: in.DB, Store: in.Store, Logger: quiet})
		if err != nil {
			tb.Fatal(err)
		}
		if err := r.Start(ctx); err != nil {
			tb.Fatal(err)
		}
		in.Runner = r
	}
	return in
}

var quiet = slog.New(slog.DiscardHandler)

func (in *Installation) openStores(tb testing.TB, pg bool) {
	tb.Helper()
	ctx := context.Background()
	var err error
	if pg {
		in.DSN = pgtest.NewDatabase(tb)
		if in.Store, err = postgres.Open(ctx, in.DSN); err != nil {
			tb.Fatal(err)
		}
		if in.DB, err = sqldb.OpenPostgres(ctx, in.DSN); err != nil {
			tb.Fatal(err)
		}
	} else {
		in.openSQLite(tb)
	}
	tb.Cleanup(func() { in.DB.Close(); in.Store.Close() })
}

// openSQLite opens the SQLite files in the data directory.
func (in *Installation) openSQLite(tb testing.TB) {
	tb.Helper()
	var err error
	in.EventsPath = filepath.Join(in.Dir, "events.db")
	if in.Store, err = sqlite.Open(context.Background(), in.EventsPath); err != nil {
		tb.Fatal(err)
	}
	if in.DB, err = sqldb.OpenSQLite(filepath.Join(in.Dir, "state.db")); err != nil {
		tb.Fatal(err)
	}
}

// openChain opens the dev chain in the data directory.
func (in *Installation) openChain(tb testing.TB) {
	tb.Helper()
	chain, err := devchain.Open(context.Background(), filepath.Join(in.Dir, "chain"), devchain.Config{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { chain.Close() })
	in.Chain = chain
}

func (in *Installation) startAnchoring(tb testing.TB, ctx context.Context) {
	in.startAnchoringEvery(tb, ctx, anchorEvery, anchorInterval)
}

// startAnchoringEvery opens the chain and the audit log and starts them
// with an anchor every this many entries or interval.
func (in *Installation) startAnchoringEvery(tb testing.TB, ctx context.Context, every uint64, interval time.Duration) {
	tb.Helper()
	in.openChain(tb)
	var err error
	if in.AuditLog, err = anchor.OpenLog(ctx, in.DB, in.Store, quiet); err != nil {
		tb.Fatal(err)
	}
	sender := ethchain.NewSender(in.Chain.Writer(), anchor.NewAttempts(in.DB), ethchain.SenderConfig{
		Confirmations: 1, PollInterval: anchorPoll, Logger: quiet,
	})
	w := anchor.NewWorker(in.AuditLog, sender, in.Store, anchor.WorkerConfig{
		Interval: interval, EveryEvents: every, Confirmations: 1, PollInterval: anchorPoll, Logger: quiet,
	})
	in.Proofs = anchor.NewService(in.DB, in.Store, anchor.ServiceConfig{Chain: in.Chain.Client(), Trust: in.Chain.Trust()})
	in.workers.Go(func() { in.AuditLog.Run(ctx) })
	in.workers.Go(func() { w.Run(ctx) })
}

// Stop stops the workers (the audit log, the anchor worker, the
// projections runner); the stores stay open. It is safe to call twice.
func (in *Installation) Stop() {
	if in.cancel != nil {
		in.cancel()
	}
	if in.Runner != nil {
		in.Runner.Stop()
	}
	in.workers.Wait()
}

// Load appends rounds of sim until it has decided at least events more
// events, and returns the head.
func (in *Installation) Load(tb testing.TB, sim *projectiontest.Sim, events int) uint64 {
	tb.Helper()
	return projectiontest.MustLoad(tb, in.Store, sim, events)
}

// Settle waits until the audit log has read the whole log, an anchor
// covers every entry other than anchor records, and every projection has
// applied the whole log, and returns the head then. It fails tb after
// settleTimeout.
func (in *Installation) Settle(tb testing.TB) uint64 {
	tb.Helper()
	return in.settle(tb, settleTimeout)
}

func (in *Installation) settle(tb testing.TB, timeout time.Duration) uint64 {
	tb.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(timeout)
	for {
		head, settled, err := in.settled(ctx)
		if err != nil {
			tb.Fatalf("settle: %v", err)
		}
		if settled {
			return head
		}
		if time.Now().After(deadline) {
			tb.Fatalf("settle: not settled after %s at head %d", timeout, head)
		}
		time.Sleep(settlePoll)
	}
}

func (in *Installation) settled(ctx context.Context) (uint64, bool, error) {
	head, err := in.Store.Head(ctx)
	if err != nil {
		return 0, false, err
	}
	if in.Runner != nil {
		for _, pos := range in.Runner.Positions() {
			if pos < head {
				return head, false, nil
			}
		}
	}
	if in.AuditLog == nil {
		return head, true, nil
	}
	if in.AuditLog.Size() < head {
		return head, false, nil
	}
	last, err := lastEntry(ctx, in.Store, head)
	if err != nil {
		return head, false, err
	}
	anchored, err := in.Proofs.LoadAnchoredSize(ctx)
	return head, err == nil && anchored >= last, err
}

// lastEntry returns the position of the last event that is not an anchor
// record, 0 if there is none.
func lastEntry(ctx context.Context, store eventstore.Store, head uint64) (uint64, error) {
	for pos := head; pos > 0; pos-- {
		evs, err := store.ReadAll(ctx, pos, 1)
		if err != nil {
			return 0, err
		}
		if len(evs) == 1 && evs[0].Stream != domain.AnchorStream {
			return pos, nil
		}
	}
	return 0, nil
}

// EventsSQL returns a SQL handle on the event store's own table, events,
// to change it behind the store's back (the SQLite file, or the
// PostgreSQL database the state shares).
func (in *Installation) EventsSQL(tb testing.TB) *sqldb.DB {
	tb.Helper()
	if in.EventsPath == "" {
		return in.DB
	}
	db, err := sqldb.OpenSQLite(in.EventsPath)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}
