package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/rendertrust/rendertrust/internal/sqldb"
)

const (
	// rebuildBatchEventsMax bounds the events one rebuild transaction
	// applies (rebuild tables are not read, so batches can be large).
	rebuildBatchEventsMax = 50000
	// swapLagEventsMax is how close to the head a rebuild catches up
	// before it takes the checkpoints' lock to apply the rest and swap.
	swapLagEventsMax = 2000
	// cleanupTimeout bounds dropping a failed rebuild's tables.
	cleanupTimeout = time.Minute
)

// ErrConcurrentRebuild is returned (wrapped) by Rebuild when another
// rebuild of the same projection swapped in first; this rebuild's tables
// are dropped and nothing changes.
var ErrConcurrentRebuild = errors.New("another rebuild swapped in first")

// RebuildOptions say what Rebuild rebuilds and how it reports.
type RebuildOptions struct {
	// Projections are the projections known; nil means All().
	Projections []Projection
	// Names chooses which of them to rebuild; empty means all.
	Names []string
	// Progress, when set, is called after each batch with the number of
	// events replayed so far (the log's head may grow meanwhile).
	Progress func(events uint64)
	// Logger receives warnings; nil means slog.Default().
	Logger *slog.Logger
}

// RebuildResult says what a rebuild did.
type RebuildResult struct {
	Projections []string          `json:"projections"`
	Generations map[string]uint64 `json:"generations"` // the new generation of each
	Position    uint64            `json:"position"`    // the log position the new tables start from
	Events      uint64            `json:"events"`      // events replayed
	Skipped     uint64            `json:"skipped"`     // of which of unknown types
	Duration    time.Duration     `json:"duration"`
}

// Rebuild replays the whole log into new tables for the chosen projections
// and swaps them in atomically while queries keep reading the old ones: it
// catches up to the head, then in one transaction applies the last events,
// repoints the views and moves the checkpoints to the new generation; then
// it drops the old tables. Live runners, in this process or another, carry
// on from the new checkpoints. It fails with an error wrapping
// ErrUnknownProjection for an unknown name, ErrConcurrentRebuild when
// another rebuild of a projection swapped in first, or a database, log or
// context error; on failure the old tables stay in service and the new ones
// are dropped.
func Rebuild(ctx context.Context, db *sqldb.DB, store Store, opts RebuildOptions) (RebuildResult, error) {
	start := time.Now()
	rb, err := newRebuild(db, store, opts)
	if err != nil {
		return RebuildResult{}, err
	}
	if err := rb.prepare(ctx); err != nil {
		return RebuildResult{}, err
	}
	res, err := rb.run(ctx)
	if err != nil {
		if !errors.Is(err, ErrConcurrentRebuild) && rb.superseded() {
			// A newer rebuild swapped in and dropped our tables under us.
			err = fmt.Errorf("%w (then: %v)", ErrConcurrentRebuild, err)
		}
		rb.discard()
		return RebuildResult{}, err
	}
	for _, p := range rb.ps {
		gen := rb.gens[p.Name()]
		if _, err := dropGenerations(ctx, db, p, func(g uint64) bool { return g >= gen }); err != nil {
			rb.logger.Warn("drop old projection tables (the next rebuild retries)", "projection", p.Name(), "err", err)
		}
	}
	if res.Skipped > 0 {
		rb.logger.Warn("rebuild skipped events of types the domain does not know", "events", res.Skipped)
	}
	res.Duration = time.Since(start)
	return res, nil
}

// rebuild is one run of Rebuild.
type rebuild struct {
	db     *sqldb.DB
	store  Store
	ps     []Projection
	logger *slog.Logger
	// progress is RebuildOptions.Progress.
	progress func(events uint64)
	old      map[string]checkpoint // the checkpoints when the rebuild began
	gens     map[string]uint64     // the generations being built
	pos      uint64                // applied to the new tables so far
	res      RebuildResult
}

func newRebuild(db *sqldb.DB, store Store, opts RebuildOptions) (*rebuild, error) {
	all := opts.Projections
	if all == nil {
		all = All()
	}
	if err := checkProjections(all); err != nil {
		return nil, fmt.Errorf("projections: %w", err)
	}
	ps, err := selectProjections(all, opts.Names)
	if err != nil {
		return nil, err
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	return &rebuild{db: db, store: store, ps: ps, logger: logger, progress: opts.Progress, gens: map[string]uint64{}}, nil
}

// prepare records the current checkpoints and creates the new generation.
func (rb *rebuild) prepare(ctx context.Context) error {
	if err := migrate(ctx, rb.db); err != nil {
		return err
	}
	now := time.Now()
	if _, err := ensureProjections(ctx, rb.db, rb.ps, now); err != nil {
		return err
	}
	return rb.db.InTx(ctx, func(tx *sqldb.Tx) error {
		if err := lockSchema(ctx, tx); err != nil {
			return err
		}
		cps, err := loadCheckpoints(ctx, tx, tx.Dialect, names(rb.ps), false)
		if err != nil {
			return err
		}
		rb.old = cps
		for _, p := range rb.ps {
			gen, err := newGeneration(ctx, tx, p, now, false)
			if err != nil {
				return err
			}
			rb.gens[p.Name()] = gen
		}
		return nil
	})
}

// run replays the log into the new tables and swaps them in.
func (rb *rebuild) run(ctx context.Context) (RebuildResult, error) {
	for {
		head, err := rb.store.Head(ctx)
		if err != nil {
			return RebuildResult{}, fmt.Errorf("read head: %w", err)
		}
		if head <= rb.pos+swapLagEventsMax {
			break
		}
		if err := rb.replay(ctx, head); err != nil {
			return RebuildResult{}, err
		}
	}
	// Indexes built once over the loaded rows cost far less than keeping
	// them up to date row by row during the replay.
	for _, p := range rb.ps {
		if err := createIndexes(ctx, rb.db, p, rb.gens[p.Name()]); err != nil {
			return RebuildResult{}, err
		}
	}
	if err := rb.swap(ctx); err != nil {
		return RebuildResult{}, err
	}
	rb.res.Projections, rb.res.Generations, rb.res.Position = names(rb.ps), rb.gens, rb.pos
	return rb.res, nil
}

// replay applies positions pos+1..to to the new tables, in batches of
// their own transactions, reading ahead in parallel.
func (rb *rebuild) replay(ctx context.Context, to uint64) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch := make(chan chunk, feedChunksMax)
	go func() {
		defer close(ch)
		readAhead(ctx, rb.store, rb.pos+1, to, ch)
	}()
	var batch []Event
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := rb.db.InTx(ctx, func(tx *sqldb.Tx) error { return rb.apply(ctx, tx, batch) })
		if err != nil {
			return err
		}
		rb.advance(batch)
		batch = batch[:0]
		return nil
	}
	for c := range ch {
		if c.err != nil {
			return c.err
		}
		batch = append(batch, c.events...)
		if len(batch) >= rebuildBatchEventsMax {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	if rb.pos < to {
		return errors.Join(ctx.Err(), fmt.Errorf("replay stopped at %d before %d", rb.pos, to))
	}
	return nil
}

// apply applies events to every new table set, inside tx.
func (rb *rebuild) apply(ctx context.Context, tx *sqldb.Tx, events []Event) error {
	for _, p := range rb.ps {
		if err := p.Apply(ctx, tx, Tables{generation: rb.gens[p.Name()]}, events); err != nil {
			return fmt.Errorf("apply %d events to %s generation %d: %w", len(events), p.Name(), rb.gens[p.Name()], err)
		}
	}
	return nil
}

// advance records events as applied (after their transaction committed).
func (rb *rebuild) advance(events []Event) {
	for _, e := range events {
		if e.Decoded == nil {
			rb.res.Skipped++
		}
	}
	rb.pos = events[len(events)-1].Position
	rb.res.Events += uint64(len(events))
	if rb.progress != nil {
		rb.progress(rb.res.Events)
	}
}

// superseded reports whether another rebuild has moved a checkpoint to
// another generation since this one began.
func (rb *rebuild) superseded() bool {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	cps, err := loadCheckpoints(ctx, rb.db, rb.db.Dialect, names(rb.ps), false)
	if err != nil {
		return false
	}
	for name, cp := range cps {
		if cp.generation != rb.old[name].generation {
			return true
		}
	}
	return false
}

// discard drops the new tables of a failed rebuild.
func (rb *rebuild) discard() {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	for _, p := range rb.ps {
		gen, ok := rb.gens[p.Name()]
		if !ok {
			continue
		}
		if _, err := dropGenerations(ctx, rb.db, p, func(g uint64) bool { return g != gen }); err != nil {
			rb.logger.Warn("drop the tables of a failed rebuild", "projection", p.Name(), "generation", gen, "err", err)
		}
	}
}
