package projections

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/stdlib"

	"github.com/rendertrust/rendertrust/internal/sqldb"
)

// Read-your-writes across processes. On PostgreSQL, the runner of the
// projections role NOTIFYs projectedChannel in every batch that moves a
// checkpoint (delivered when the batch commits); a Watcher in an API
// process that does not run the projections listens and marks the
// checkpoints it read stale. It re-reads them only for a waiter: under a
// load that never waits (submissions) the notifications, many a second,
// cost each API process no query.
const (
	projectedChannel = "rendertrust_projected"
	// watchPoll marks the checkpoints stale when no notification came (and
	// re-reads them if someone waits): one may be lost while the listening
	// connection is replaced, and recording a failing projection notifies
	// no one.
	watchPoll = time.Second
	// watchReadMax bounds one read of the checkpoints, which holds up the
	// waiters that share it.
	watchReadMax = 2 * time.Second
	// watchRetry is the pause before listening again after the connection
	// failed.
	watchRetry = 500 * time.Millisecond
)

// notifyProjected wakes the other processes' Watchers when the batch moved
// a checkpoint (PostgreSQL; SQLite has one process).
func notifyProjected(ctx context.Context, tx *sqldb.Tx, moved int) error {
	if moved == 0 || tx.Dialect != sqldb.Postgres {
		return nil
	}
	if _, err := tx.Exec(ctx, `SELECT pg_notify(?, '')`, projectedChannel); err != nil {
		return fmt.Errorf("notify the projected position: %w", err)
	}
	return nil
}

// Watcher follows the checkpoints that a Runner in another process commits
// to a PostgreSQL database, so a process without the projections role can
// wait for its writes to be projected. It counts the same projections as
// the runner and leaves out failing ones (projection_failures), as the
// runner's WaitFor does.
type Watcher struct {
	db      *sqldb.DB
	names   []string
	applied *progress
	logger  *slog.Logger
	// Max bounds WaitFor (WaitMax unless changed before Start).
	Max  time.Duration
	poll time.Duration

	// stale is set by each notification (and poll) and cleared by the read
	// that follows. A waiter counts itself in waiters before it checks
	// stale; the listener sets stale before it counts the waiters. With
	// sequentially consistent atomics one of the two sees the other, so a
	// read follows every notification that a waiter may need: no wake-up is
	// lost.
	stale   atomic.Bool
	waiters atomic.Int64
	// reading serializes the reads, so concurrent waiters share one and
	// the failing projections are applied in the order they were read.
	reading sync.Mutex

	cancel context.CancelFunc
	done   chan struct{}

	// notified and refreshes count notifications received and checkpoint
	// reads, for the tests.
	notified  atomic.Uint64
	refreshes atomic.Uint64
}

// NewWatcher returns a Watcher of the projections ps (nil: All()) on db,
// which must be PostgreSQL.
func NewWatcher(db *sqldb.DB, ps []Projection, logger *slog.Logger) (*Watcher, error) {
	if db == nil || db.Dialect != sqldb.Postgres {
		return nil, errors.New("projections: a Watcher follows another process's runner on PostgreSQL")
	}
	if ps == nil {
		ps = All()
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &Watcher{db: db, names: names(ps), applied: newProgress(names(ps)), logger: logger, Max: WaitMax, poll: watchPoll}, nil
}

// Start reads the checkpoints once, then follows them until Stop. It
// creates the shared tables first, so an API process may start before the
// process that runs the projections.
func (w *Watcher) Start(ctx context.Context) error {
	if err := migrate(ctx, w.db); err != nil {
		return err
	}
	w.stale.Store(true)
	if err := w.readIfStale(ctx); err != nil {
		return err
	}
	ctx, w.cancel = context.WithCancel(context.WithoutCancel(ctx))
	w.done = make(chan struct{})
	go w.run(ctx)
	return nil
}

// Stop ends the following.
func (w *Watcher) Stop() {
	if w.cancel != nil {
		w.cancel()
		<-w.done
	}
}

// WaitFor returns nil once every projection (but failing ones) has applied
// the log up to position, or an error wrapping ErrWaitTimeout after Max or
// ctx.Err() when ctx ends first — as Runner.WaitFor. While it waits, each
// notification makes the Watcher read the checkpoints.
func (w *Watcher) WaitFor(ctx context.Context, position uint64) error {
	w.waiters.Add(1)
	defer w.waiters.Add(-1)
	if lowest, _ := w.applied.wait(); lowest < position {
		if err := w.readIfStale(ctx); err != nil && ctx.Err() == nil {
			// stale is set again: the next waiter, notification or poll
			// reads them.
			w.logger.Warn("projections watcher: reading the checkpoints failed", "err", err)
		}
	}
	return w.applied.waitFor(ctx, position, w.Max)
}

// Positions returns each projection's applied position, read again if a
// notification came since the last read (the last read if that fails).
func (w *Watcher) Positions() map[string]uint64 {
	if err := w.readIfStale(context.Background()); err != nil {
		w.logger.Warn("projections watcher: reading the checkpoints failed", "err", err)
	}
	return w.applied.snapshot()
}

func (w *Watcher) run(ctx context.Context) {
	defer close(w.done)
	for ctx.Err() == nil {
		err := w.listen(ctx)
		if ctx.Err() != nil {
			return
		}
		w.logger.Warn("projections watcher: listening failed; retrying", "err", err)
		sleepCtx(ctx, watchRetry)
	}
}

// listen holds one connection that LISTENs and marks the checkpoints stale
// after each notification (and every poll), reading them if someone waits.
// The connection is discarded afterwards rather than returned to the pool
// still listening.
func (w *Watcher) listen(ctx context.Context) error {
	conn, err := w.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		pc := dc.(*stdlib.Conn).Conn()
		if _, err := pc.Exec(ctx, "LISTEN "+projectedChannel); err != nil {
			return errors.Join(err, driver.ErrBadConn)
		}
		for {
			// After a notification, a poll (one may have been lost) or
			// LISTEN (one may have come before it).
			w.stale.Store(true)
			if w.waiters.Load() > 0 {
				if err := w.readIfStale(ctx); err != nil {
					return errors.Join(err, driver.ErrBadConn)
				}
			}
			wctx, cancel := context.WithTimeout(ctx, w.poll)
			_, err := pc.WaitForNotification(wctx)
			cancel()
			if err == nil {
				w.notified.Add(1)
			}
			switch {
			case ctx.Err() != nil:
				return driver.ErrBadConn
			case err != nil && !errors.Is(err, context.DeadlineExceeded):
				return errors.Join(err, driver.ErrBadConn)
			}
		}
	})
}

// readIfStale reads the checkpoints unless a read that began after they
// went stale already did (it waits for one under way).
func (w *Watcher) readIfStale(ctx context.Context) error {
	w.reading.Lock()
	defer w.reading.Unlock()
	if !w.stale.Swap(false) {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, watchReadMax)
	defer cancel()
	if err := w.refresh(ctx); err != nil {
		w.stale.Store(true)
		return err
	}
	return nil
}

// refresh reads the checkpoints and the failing projections.
func (w *Watcher) refresh(ctx context.Context) error {
	w.refreshes.Add(1)
	cps, err := loadCheckpoints(ctx, w.db, sqldb.Postgres, w.names, false)
	if err != nil {
		return err
	}
	failing, err := failingNames(ctx, w.db)
	if err != nil {
		return err
	}
	positions := make(map[string]uint64, len(cps))
	for name, cp := range cps {
		positions[name] = cp.position
	}
	for _, name := range w.names {
		w.applied.exclude(name, failing[name])
	}
	w.applied.advance(positions)
	return nil
}

// failingNames are the projections recorded as failing.
func failingNames(ctx context.Context, db *sqldb.DB) (map[string]bool, error) {
	rows, err := db.Query(ctx, `SELECT name FROM projection_failures`)
	if err != nil {
		return nil, fmt.Errorf("read projection failures: %w", err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, err
		}
		out[name] = true
	}
	return out, rows.Err()
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
