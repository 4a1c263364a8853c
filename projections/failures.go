package projections

import (
	"context"
	"fmt"
	"reflect"
	"time"

	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/internal/sqldb"
)

// failureBytesMax bounds the error text kept for a failing projection.
const failureBytesMax = 1000

// failure is a projection whose last batch failed: the others go on
// without it, and it is retried from its checkpoint at retryAt.
type failure struct {
	err     string
	backoff time.Duration
	retryAt time.Time
}

// paused reports whether the runner leaves projection name out of batches
// now: it is stale (its rebuild is under way), or failing and not due for
// a retry. r.mu must be held.
func (r *Runner) paused(name string, now time.Time) bool {
	if r.stale[name] {
		return true
	}
	f := r.failing[name]
	return f != nil && now.Before(f.retryAt)
}

func (r *Runner) isPaused(name string, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.paused(name, now)
}

// applyIsolated applies evs to p inside a savepoint of tx, so that its
// failure rolls back its own writes and nothing else.
func applyIsolated(ctx context.Context, tx *sqldb.Tx, p Projection, t Tables, evs []Event) error {
	if _, err := tx.Exec(ctx, "SAVEPOINT projection_apply"); err != nil {
		return fmt.Errorf("savepoint: %w", err)
	}
	if err := p.Apply(ctx, tx, t, evs); err != nil {
		if _, rbErr := tx.Exec(ctx, "ROLLBACK TO SAVEPOINT projection_apply"); rbErr != nil {
			return fmt.Errorf("%w (and the rollback to its savepoint failed: %v)", err, rbErr)
		}
		return &projectionError{name: p.Name(), position: evs[0].Position, err: err}
	}
	_, err := tx.Exec(ctx, "RELEASE SAVEPOINT projection_apply")
	return err
}

// projectionError is one projection's failure to apply a batch.
type projectionError struct {
	name     string
	position uint64 // the first event of the batch it failed
	err      error
}

func (e *projectionError) Error() string {
	return fmt.Sprintf("projection %s at %d: %v", e.name, e.position, e.err)
}

func (e *projectionError) Unwrap() error { return e.err }

// failed records that a projection failed a batch: it is paused with a
// doubling backoff, shown by the failing metric and, through the
// projection_failures table, by Status.
func (r *Runner) failed(ctx context.Context, pe *projectionError) {
	now := time.Now()
	r.mu.Lock()
	f := r.failing[pe.name]
	if f == nil {
		f = &failure{backoff: retryBackoffMin}
		r.failing[pe.name] = f
	} else {
		f.backoff = min(2*f.backoff, retryBackoffMax)
	}
	f.err, f.retryAt = truncateText(pe.err.Error(), failureBytesMax), now.Add(f.backoff)
	backoff, msg := f.backoff, f.err
	r.mu.Unlock()
	r.applied.exclude(pe.name, true)
	r.metrics.failing.WithLabelValues(pe.name).Set(1)
	r.metrics.projectionFailures.WithLabelValues(pe.name).Inc()
	r.logger.Error("projection failed a batch; the others go on, it is retried", "projection", pe.name,
		"position", pe.position, "err", pe.err, "retry_in", backoff)
	if _, err := r.db.Exec(ctx, `DELETE FROM projection_failures WHERE name = ?`, pe.name); err == nil {
		_, err = r.db.Exec(ctx, `INSERT INTO projection_failures (name, position, error, failed_at) VALUES (?, ?, ?, ?)`,
			pe.name, int64(pe.position), msg, now.UnixMicro())
		if err != nil {
			r.logger.Warn("could not record the projection's failure", "projection", pe.name, "err", err)
		}
	}
}

// recovered clears the failure of projections that applied a batch.
func (r *Runner) recovered(ctx context.Context, applied map[string][]Event) {
	for name := range applied {
		r.mu.Lock()
		_, was := r.failing[name]
		delete(r.failing, name)
		r.mu.Unlock()
		if !was {
			continue
		}
		r.applied.exclude(name, false)
		r.metrics.failing.WithLabelValues(name).Set(0)
		r.logger.Info("projection recovered", "projection", name)
		if _, err := r.db.Exec(ctx, `DELETE FROM projection_failures WHERE name = ?`, name); err != nil {
			r.logger.Warn("could not clear the projection's failure", "projection", name, "err", err)
		}
	}
}

// loadFailures returns the recorded error of each failing projection.
func loadFailures(ctx context.Context, db *sqldb.DB) (map[string]string, error) {
	rows, err := db.Query(ctx, `SELECT name, error FROM projection_failures`)
	if err != nil {
		return nil, fmt.Errorf("read projection failures: %w", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var name, msg string
		if err := rows.Scan(&name, &msg); err != nil {
			return nil, fmt.Errorf("read projection failures: %w", err)
		}
		out[name] = msg
	}
	return out, rows.Err()
}

// truncateText cuts s to at most n bytes on a rune boundary.
func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// sanitize returns e with every control character of its text replaced by
// a space (domain.StripControl), and whether anything changed. The log
// cannot be changed, and older code let such text in: PostgreSQL refuses
// NUL in text, and a terminal obeys escapes.
func sanitize(e domain.Event) (domain.Event, bool) {
	v := reflect.ValueOf(e)
	cp := reflect.New(v.Type()).Elem()
	cp.Set(v)
	if !sanitizeValue(cp) {
		return e, false
	}
	return cp.Interface().(domain.Event), true
}

// sanitizeValue strips control characters from the settable strings of v,
// recursively, copying slices before it changes them. It reports whether it
// changed anything.
func sanitizeValue(v reflect.Value) bool {
	changed := false
	switch v.Kind() {
	case reflect.String:
		if s := domain.StripControl(v.String()); s != v.String() && v.CanSet() {
			v.SetString(s)
			changed = true
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if f := v.Field(i); f.CanSet() {
				changed = sanitizeValue(f) || changed
			}
		}
	case reflect.Slice:
		if v.Len() == 0 || !v.CanSet() {
			break
		}
		cp := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		reflect.Copy(cp, v)
		for i := range cp.Len() {
			changed = sanitizeValue(cp.Index(i)) || changed
		}
		if changed {
			v.Set(cp)
		}
	}
	return changed
}
