package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rendertrust/rendertrust/internal/sqldb"
)

const (
	// BatchEventsMax bounds the events the runner applies in one
	// transaction.
	BatchEventsMax = 5000
	// retryBackoffMin and retryBackoffMax bound the wait before a failed
	// batch is retried; it doubles from one to the other.
	retryBackoffMin = 100 * time.Millisecond
	retryBackoffMax = 10 * time.Second
)

// errResync means a projection's checkpoint is behind the events the
// runner read (a stale projection's rebuild swapped in behind the feed), so
// the feed restarts from the checkpoints.
var errResync = errors.New("checkpoint behind the feed")

// Config configures a Runner.
type Config struct {
	// DB holds the read models (SQLite or PostgreSQL). Required.
	DB *sqldb.DB
	// Store is the event store whose log to follow. Required.
	Store Store
	// Projections are the read models to maintain; nil means All().
	Projections []Projection
	// Registerer receives the runner's metrics; nil registers none.
	Registerer prometheus.Registerer
	// Logger receives warnings and errors; nil means slog.Default().
	Logger *slog.Logger
	// Fence, when set, runs first in every batch's transaction; an error
	// rolls the batch back. A process that runs the projections as the
	// leader of its role passes its term's fence (cluster.Term.Fence), so a
	// deposed leader writes nothing after its successor started.
	Fence func(ctx context.Context, tx *sqldb.Tx) error
}

// Runner keeps a set of projections up to date with the log: it catches up
// from their checkpoints, then follows new appends. See the package doc.
type Runner struct {
	db      *sqldb.DB
	store   Store
	ps      []Projection
	names   []string
	logger  *slog.Logger
	metrics *metrics
	applied *progress
	lag     lagState
	fence   func(ctx context.Context, tx *sqldb.Tx) error

	startMu sync.Mutex // serializes Start
	mu      sync.Mutex // guards the fields below
	gens    map[string]uint64
	stale   map[string]bool
	failing map[string]*failure
	warned  map[string]bool
	cancel  context.CancelFunc
	done    chan struct{}

	// onCommit, when set (by tests), sees every committed batch.
	onCommit func(events []Event, committed time.Time)
}

// NewRunner checks cfg and returns a runner that is not started yet. It
// fails when DB or Store is missing, a projection or table name is malformed
// or repeated, or the metrics cannot be registered (another runner
// registered them on the same Registerer).
func NewRunner(cfg Config) (*Runner, error) {
	if cfg.DB == nil || cfg.Store == nil {
		return nil, errors.New("projections: Config needs DB and Store")
	}
	ps := cfg.Projections
	if ps == nil {
		ps = All()
	}
	if err := checkProjections(ps); err != nil {
		return nil, fmt.Errorf("projections: %w", err)
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	for _, n := range names(ps) {
		m.failing.WithLabelValues(n).Set(0)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	return &Runner{
		db: cfg.DB, store: cfg.Store, ps: ps, names: names(ps), logger: logger, metrics: m,
		applied: newProgress(names(ps)), fence: cfg.Fence,
		gens: map[string]uint64{}, stale: map[string]bool{}, failing: map[string]*failure{}, warned: map[string]bool{},
	}, nil
}

// Start creates the tables of projections that have none, then applies
// the log in the background until ctx ends or Stop is called. Projections
// whose tables were built by other code are rebuilt in the background
// first. It fails when the database cannot be set up (Start may then be
// called again), or when the runner is running already; a runner that has
// stopped may be started again.
func (r *Runner) Start(ctx context.Context) error {
	r.startMu.Lock()
	defer r.startMu.Unlock()
	if done := r.Done(); done != nil {
		select {
		case <-done: // stopped: a leader that lost the role and won it again starts anew
		default:
			return errors.New("projections: runner already started")
		}
	}
	if err := migrate(ctx, r.db); err != nil {
		return err
	}
	stale, err := ensureProjections(ctx, r.db, r.ps, time.Now())
	if err != nil {
		return err
	}
	if _, err := r.refresh(ctx); err != nil {
		return err
	}
	loopCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	r.mu.Lock()
	r.cancel, r.done = cancel, done
	r.mu.Unlock()
	var wg sync.WaitGroup
	if len(stale) > 0 {
		wg.Add(1)
		go func() { defer wg.Done(); r.rebuildStale(loopCtx, stale) }()
	}
	wg.Add(1)
	go func() { defer wg.Done(); r.run(loopCtx) }()
	go func() { wg.Wait(); close(done) }()
	return nil
}

// Stop ends the runner and waits for it: a batch in flight is rolled back
// (it is applied again by the next runner). It returns nil, also when the
// runner was never started or already stopped.
func (r *Runner) Stop() error {
	r.mu.Lock()
	cancel, done := r.cancel, r.done
	r.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	<-done
	return nil
}

// Done returns a channel closed once the runner has stopped (its context
// ended or Stop was called), or nil before Start succeeded.
func (r *Runner) Done() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.done
}

// Positions returns the last position each projection has applied, as this
// runner knows it. It never fails.
func (r *Runner) Positions() map[string]uint64 { return r.applied.snapshot() }

// rebuildStale rebuilds the projections built by other code, then makes the
// runner see their new generation.
func (r *Runner) rebuildStale(ctx context.Context, stale []string) {
	r.logger.Warn("projection tables were built by other code; rebuilding", "projections", stale)
	_, err := Rebuild(ctx, r.db, r.store, RebuildOptions{Projections: r.ps, Names: stale, Logger: r.logger})
	if err != nil {
		if ctx.Err() == nil {
			r.logger.Error("rebuild of stale projections failed; run `rendertrust projections rebuild`", "projections", stale, "err", err)
		}
		return
	}
	if _, err := r.refresh(ctx); err != nil && ctx.Err() == nil {
		r.logger.Error("read checkpoints after rebuild", "err", err)
	}
}

// refresh reads the checkpoints, updates what the runner knows of them and
// returns them.
func (r *Runner) refresh(ctx context.Context) (map[string]checkpoint, error) {
	cps, err := loadCheckpoints(ctx, r.db, r.db.Dialect, r.names, false)
	if err != nil {
		return nil, err
	}
	if err := r.checkGenerations(ctx, r.db, cps); err != nil {
		return nil, err
	}
	r.advance(cps, nil)
	return cps, nil
}

// run applies batches until ctx ends, retrying failures with backoff.
func (r *Runner) run(ctx context.Context) {
	backoff := retryBackoffMin
	for ctx.Err() == nil {
		progressed, err := r.follow(ctx)
		if ctx.Err() != nil {
			return
		}
		if progressed {
			backoff = retryBackoffMin
		}
		if errors.Is(err, errResync) || errors.Is(err, errGenerationMoved) {
			r.logger.Info("projection checkpoints moved under the runner; following from them", "reason", err)
			continue
		}
		r.metrics.failures.Inc()
		r.logger.Error("projection batch failed; retrying", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, retryBackoffMax)
	}
}

// follow feeds the log from the lowest checkpoint into batches until an
// error (errResync included) or ctx ends. progressed reports whether a
// batch was committed.
func (r *Runner) follow(ctx context.Context) (progressed bool, err error) {
	cps, err := r.refresh(ctx)
	if err != nil {
		return false, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the feed
	from := r.feedStart(cps)
	ch := make(chan chunk, feedChunksMax)
	go follow(ctx, r.store, from, ch)
	var carry []Event
	for {
		if r.lag.pending && len(carry) == 0 && len(ch) == 0 {
			r.observe(ctx) // about to wait for appends
		}
		events, rest, err := collect(ctx, ch, carry)
		if err != nil {
			return progressed, err
		}
		carry = rest
		if events[0].Position != from {
			return progressed, fmt.Errorf("feed gave position %d, want %d", events[0].Position, from)
		}
		if err := r.applyBatch(ctx, events); err != nil {
			return progressed, err
		}
		progressed = true
		from = events[len(events)-1].Position + 1
	}
}

// collect returns up to BatchEventsMax events: carry, then the chunks
// already waiting (blocking only while it has none), and what did not fit.
func collect(ctx context.Context, ch <-chan chunk, carry []Event) (events, rest []Event, err error) {
	events = carry
	for len(events) < BatchEventsMax {
		var c chunk
		var ok bool
		if len(events) == 0 {
			select {
			case c, ok = <-ch:
			case <-ctx.Done():
				return nil, nil, ctx.Err()
			}
		} else {
			select {
			case c, ok = <-ch:
			default:
				return events, nil, nil
			}
		}
		if !ok {
			return nil, nil, errors.Join(ctx.Err(), errors.New("feed ended"))
		}
		if c.err != nil {
			return nil, nil, c.err
		}
		events = append(events, c.events...)
	}
	return events[:BatchEventsMax:BatchEventsMax], events[BatchEventsMax:], nil
}

// feedStart returns the position after the lowest checkpoint of cps among
// the projections that are not stale (of all of them, if all are).
func (r *Runner) feedStart(cps map[string]checkpoint) uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	lowest := func(withStale bool) (uint64, bool) {
		low, found := uint64(0), false
		now := time.Now()
		for _, n := range r.names {
			if r.paused(n, now) && !withStale {
				continue
			}
			if pos := cps[n].position; !found || pos < low {
				low, found = pos, true
			}
		}
		return low, found
	}
	low, ok := lowest(false)
	if !ok {
		low, _ = lowest(true)
	}
	return low + 1
}
