package projections

import (
	"context"
	"fmt"
	"time"

	"github.com/rendertrust/rendertrust/internal/sqldb"
)

// Status is where one projection stands.
type Status struct {
	Name       string    `json:"name"`
	Built      bool      `json:"built"`      // false: no tables yet (the runner or a rebuild creates them)
	Stale      bool      `json:"stale"`      // built from other table definitions: needs a rebuild
	Generation uint64    `json:"generation"` // the generation queries read
	Position   uint64    `json:"position"`   // last log position applied
	Head       uint64    `json:"head"`       // last log position committed
	LagEvents  uint64    `json:"lag_events"`
	LagSeconds float64   `json:"lag_seconds"` // age of the oldest event not applied yet; 0 when caught up
	UpdatedAt  time.Time `json:"updated_at"`  // when the checkpoint last moved
	// Error is why the projection's last batch failed; "" when it did not.
	// A failing projection is retried with backoff while the others go on.
	Error string `json:"error,omitempty"`
}

// ReadStatus returns the status of each projection of ps (nil means All()), in
// order, read from the checkpoints and the log. It creates the shared
// checkpoint tables if missing, and fails on a database or log error.
func ReadStatus(ctx context.Context, db *sqldb.DB, store Store, ps []Projection) ([]Status, error) {
	if ps == nil {
		ps = All()
	}
	if err := migrate(ctx, db); err != nil {
		return nil, err
	}
	cps, err := loadCheckpoints(ctx, db, db.Dialect, names(ps), false)
	if err != nil {
		return nil, err
	}
	failures, err := loadFailures(ctx, db)
	if err != nil {
		return nil, err
	}
	head, err := store.Head(ctx)
	if err != nil {
		return nil, fmt.Errorf("read head: %w", err)
	}
	now := time.Now()
	out := make([]Status, 0, len(ps))
	for _, p := range ps {
		st := Status{Name: p.Name(), Head: head, Error: failures[p.Name()]}
		if cp, ok := cps[p.Name()]; ok {
			fp, err := generationFingerprint(ctx, db, p.Name(), cp.generation)
			if err != nil {
				return nil, err
			}
			st.Built, st.Stale = true, fp != fingerprint(p)
			st.Generation, st.Position, st.UpdatedAt = cp.generation, cp.position, cp.updatedAt
		}
		if head > st.Position {
			st.LagEvents = head - st.Position
			next, err := store.ReadAll(ctx, st.Position+1, 1)
			if err != nil {
				return nil, fmt.Errorf("read log at %d: %w", st.Position+1, err)
			}
			if len(next) == 1 {
				st.LagSeconds = max(0, now.Sub(next[0].RecordedAt).Seconds())
			}
		}
		out = append(out, st)
	}
	return out, nil
}
