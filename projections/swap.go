package projections

import (
	"context"
	"fmt"
	"time"

	"github.com/rendertrust/rendertrust/internal/sqldb"
)

// swapCatchUpEventsMax bounds the events the swap transaction applies
// beyond the live checkpoints, so a busy log cannot keep it open.
const swapCatchUpEventsMax = 5 * readChunkEvents

// swap, in one transaction holding the checkpoints: applies the events
// the new tables still miss, up to at least every live checkpoint (so no
// reader ever sees a projection go back), points the views at the new
// tables and moves the checkpoints to the new generation.
func (rb *rebuild) swap(ctx context.Context) error {
	var applied []Event
	err := rb.db.InTx(ctx, func(tx *sqldb.Tx) error {
		applied = applied[:0]
		cps, err := loadCheckpoints(ctx, tx, tx.Dialect, names(rb.ps), true)
		if err != nil {
			return err
		}
		target := uint64(0)
		for _, p := range rb.ps {
			cp := cps[p.Name()]
			if cp.generation != rb.old[p.Name()].generation {
				return fmt.Errorf("rebuild %s: generation %d replaced generation %d meanwhile: %w",
					p.Name(), cp.generation, rb.old[p.Name()].generation, ErrConcurrentRebuild)
			}
			target = max(target, cp.position)
		}
		if applied, err = rb.catchUp(ctx, tx, target); err != nil {
			return err
		}
		return rb.repoint(ctx, tx, rb.posAfter(applied))
	})
	if err != nil {
		return err
	}
	if len(applied) > 0 {
		rb.advance(applied)
	}
	return nil
}

// catchUp applies, inside tx, the events after rb.pos: at least up to
// target, and then what the log has, in chunks, until a read comes back
// short or swapCatchUpEventsMax were applied. It returns the events applied.
func (rb *rebuild) catchUp(ctx context.Context, tx *sqldb.Tx, target uint64) ([]Event, error) {
	var applied []Event
	next := rb.pos + 1
	for {
		c := readChunk(ctx, rb.store, next, readChunkEvents)
		if c.err != nil {
			return nil, c.err
		}
		if len(c.events) > 0 {
			if c.events[0].Position != next {
				return nil, fmt.Errorf("read log at %d: got position %d", next, c.events[0].Position)
			}
			if err := rb.apply(ctx, tx, c.events); err != nil {
				return nil, err
			}
			applied = append(applied, c.events...)
			next = c.events[len(c.events)-1].Position + 1
		}
		if next > target && (len(c.events) < readChunkEvents || len(applied) >= swapCatchUpEventsMax) {
			return applied, nil
		}
		if len(c.events) == 0 {
			return nil, fmt.Errorf("the log ends at %d, before checkpoint %d", next-1, target)
		}
	}
}

func (rb *rebuild) posAfter(applied []Event) uint64 {
	if len(applied) == 0 {
		return rb.pos
	}
	return applied[len(applied)-1].Position
}

// repoint points every view at the new generation and moves the
// checkpoints there, at position pos.
func (rb *rebuild) repoint(ctx context.Context, tx *sqldb.Tx, pos uint64) error {
	now := time.Now()
	for _, p := range rb.ps {
		old := rb.old[p.Name()]
		fp, err := generationFingerprint(ctx, tx, p.Name(), old.generation)
		if err != nil {
			return err
		}
		gen := rb.gens[p.Name()]
		if err := pointViews(ctx, tx, p, gen, fp == fingerprint(p)); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE projection_checkpoints SET generation = ?, position = ?, updated_at = ? WHERE name = ? AND generation = ?`,
			int64(gen), int64(pos), now.UnixMicro(), p.Name(), int64(old.generation))
		if err != nil {
			return fmt.Errorf("move checkpoint of %s to generation %d: %w", p.Name(), gen, err)
		}
	}
	return nil
}
