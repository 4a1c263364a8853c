package projections

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/rendertrust/rendertrust/internal/sqldb"
)

// batchOutcome is what one committed batch did.
type batchOutcome struct {
	checkpoints map[string]checkpoint // after the batch
	applied     map[string][]Event    // per projection, the events it applied
	failed      []*projectionError    // projections whose writes were rolled back
}

// applyBatch applies events (consecutive positions) to every projection
// whose checkpoint they pass, and moves those checkpoints, in one
// transaction. A projection that fails keeps its checkpoint and is paused
// (see failed); the others commit. It returns errResync when a checkpoint
// is behind events[0].
func (r *Runner) applyBatch(ctx context.Context, events []Event) error {
	start := time.Now()
	var out batchOutcome
	err := r.db.InTx(ctx, func(tx *sqldb.Tx) error {
		var err error
		out, err = r.applyInTx(ctx, tx, events)
		return err
	})
	if err != nil {
		if out.checkpoints != nil {
			r.advance(out.checkpoints, nil) // a resync starts from what the database says
		}
		return err
	}
	committed := time.Now()
	r.metrics.batch.Observe(committed.Sub(start).Seconds())
	r.reportSanitized(events)
	for _, pe := range out.failed {
		r.failed(ctx, pe)
	}
	r.recovered(ctx, out.applied)
	r.advance(out.checkpoints, out.applied)
	r.committed(ctx, events, committed)
	if r.onCommit != nil {
		r.onCommit(events, committed)
	}
	return nil
}

func (r *Runner) applyInTx(ctx context.Context, tx *sqldb.Tx, events []Event) (batchOutcome, error) {
	if r.fence != nil {
		if err := r.fence(ctx, tx); err != nil {
			return batchOutcome{}, err
		}
	}
	cps, err := loadCheckpoints(ctx, tx, tx.Dialect, r.names, true)
	if err != nil {
		return batchOutcome{}, err
	}
	if err := r.checkGenerations(ctx, tx, cps); err != nil {
		return batchOutcome{}, err
	}
	out := batchOutcome{checkpoints: maps.Clone(cps), applied: map[string][]Event{}}
	now := time.Now()
	moves := map[string]checkpoint{}
	for _, p := range r.ps {
		cp := cps[p.Name()]
		if r.isPaused(p.Name(), now) {
			continue
		}
		evs := after(events, cp.position)
		if len(evs) == 0 {
			continue
		}
		if evs[0].Position != cp.position+1 {
			return batchOutcome{checkpoints: cps}, fmt.Errorf("%s is at %d, the batch starts at %d: %w",
				p.Name(), cp.position, evs[0].Position, errResync)
		}
		if err := applyIsolated(ctx, tx, p, Tables{generation: cp.generation}, evs); err != nil {
			var pe *projectionError
			if !errors.As(err, &pe) {
				return batchOutcome{}, fmt.Errorf("apply %d events to %s: %w", len(evs), p.Name(), err)
			}
			out.failed = append(out.failed, pe)
			continue
		}
		last := evs[len(evs)-1].Position
		moves[p.Name()] = checkpoint{generation: cp.generation, position: last, updatedAt: now}
		out.applied[p.Name()] = evs
	}
	if err := saveCheckpoints(ctx, tx, moves, now); err != nil {
		return batchOutcome{}, err
	}
	if err := notifyProjected(ctx, tx, len(moves)); err != nil {
		return batchOutcome{}, err
	}
	maps.Copy(out.checkpoints, moves)
	return out, nil
}

// reportSanitized counts and logs the events projections saw with their
// control characters replaced.
func (r *Runner) reportSanitized(events []Event) {
	for _, e := range events {
		if !e.Sanitized {
			continue
		}
		r.metrics.sanitized.WithLabelValues(e.Type).Inc()
		r.logger.Warn("an event holds control characters; the read models show them as spaces (the log keeps them)",
			"type", e.Type, "position", e.Position, "id", e.ID)
	}
}

// after returns the events of events with a position above pos.
func after(events []Event, pos uint64) []Event {
	if len(events) == 0 || events[len(events)-1].Position <= pos {
		return nil
	}
	if events[0].Position > pos {
		return events
	}
	return events[pos-events[0].Position+1:]
}

// checkGenerations notes generation changes (a rebuild swapped in) and
// whether each projection's current generation was built by this code. It
// fails when a projection has no checkpoint.
func (r *Runner) checkGenerations(ctx context.Context, q querier, cps map[string]checkpoint) error {
	for _, p := range r.ps {
		cp, ok := cps[p.Name()]
		if !ok {
			return fmt.Errorf("projection %s has no checkpoint", p.Name())
		}
		r.mu.Lock()
		known := r.gens[p.Name()]
		r.mu.Unlock()
		if known == cp.generation {
			continue
		}
		fp, err := generationFingerprint(ctx, q, p.Name(), cp.generation)
		if err != nil {
			return err
		}
		stale := fp != fingerprint(p)
		if known != 0 {
			r.logger.Info("projection generation changed", "projection", p.Name(),
				"from", known, "to", cp.generation, "stale", stale)
		}
		r.mu.Lock()
		r.gens[p.Name()], r.stale[p.Name()] = cp.generation, stale
		r.mu.Unlock()
		r.applied.block(p.Name(), stale)
		r.metrics.generation.WithLabelValues(p.Name()).Set(float64(cp.generation))
	}
	return nil
}

// advance counts and reports the unknown events each projection skipped,
// records committed checkpoints and then wakes WaitFor: a caller woken at a
// position sees every count up to it.
func (r *Runner) advance(cps map[string]checkpoint, applied map[string][]Event) {
	for name, evs := range applied {
		for _, e := range evs {
			if e.Decoded != nil {
				continue
			}
			label := skipLabel(e)
			r.metrics.skipped.WithLabelValues(name, label).Inc()
			r.warnSkip(label, e)
		}
	}
	positions := make(map[string]uint64, len(cps))
	for name, cp := range cps {
		positions[name] = cp.position
		r.metrics.position.WithLabelValues(name).Set(float64(cp.position))
	}
	r.applied.advance(positions)
}

// warnSkip logs the first unknown event of each type the runner meets.
func (r *Runner) warnSkip(label string, e Event) {
	r.mu.Lock()
	first := !r.warned[label]
	r.warned[label] = true
	r.mu.Unlock()
	if first {
		r.logger.Warn("projections skip an event type the domain does not know (counted in rendertrust_projection_skipped_events_total; later ones are not logged)",
			"type", label, "position", e.Position, "id", e.ID)
	}
}

// observeInterval is the least time between two reads of the log's head
// for the lag metrics while batches keep coming; an idle runner updates
// them before it waits.
const observeInterval = 250 * time.Millisecond

// lagState is what the lag metrics are computed from. Only the runner's
// loop goroutine touches it.
type lagState struct {
	batchRecorded time.Time // RecordedAt of the first event of the last batch
	observed      time.Time // when the metrics were last updated
	pending       bool      // a batch committed since
}

// committed notes a batch for the lag metrics, and updates them unless
// that was done within observeInterval.
func (r *Runner) committed(ctx context.Context, events []Event, at time.Time) {
	r.lag.batchRecorded, r.lag.pending = events[0].RecordedAt, true
	if at.Sub(r.lag.observed) >= observeInterval {
		r.observe(ctx)
	}
}

// observe updates the lag metrics: events between the head and each
// checkpoint, and the age of the last batch's first event while behind.
func (r *Runner) observe(ctx context.Context) {
	head, err := r.store.Head(ctx)
	if err != nil {
		return // the next batch tries again
	}
	now := time.Now()
	r.lag.observed, r.lag.pending = now, false
	for name, pos := range r.applied.snapshot() {
		lag := uint64(0)
		if head > pos {
			lag = head - pos
		}
		r.metrics.lagEvents.WithLabelValues(name).Set(float64(lag))
		age := 0.0
		if lag > 0 && !r.lag.batchRecorded.IsZero() {
			age = now.Sub(r.lag.batchRecorded).Seconds()
		}
		r.metrics.lagSeconds.WithLabelValues(name).Set(age)
	}
}
