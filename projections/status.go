package projections

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/internal/sqldb"
)

// ProjectionStatus is where one projection stands.
type ProjectionStatus struct {
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

// Status returns the status of each projection of ps (nil means All()), in
// order, read from the checkpoints and the log. It creates the shared
// checkpoint tables if missing, and fails on a database or log error.
func Status(ctx context.Context, db *sqldb.DB, log Log, ps []Projection) ([]ProjectionStatus, error) {
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
	head, err := log.Head(ctx)
	if err != nil {
		return nil, fmt.Errorf("read head: %w", err)
	}
	now := time.Now()
	out := make([]ProjectionStatus, 0, len(ps))
	for _, p := range ps {
		st := ProjectionStatus{Name: p.Name(), Head: head, Error: failures[p.Name()]}
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
			next, err := log.ReadAll(ctx, st.Position+1, 1)
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

// WriteStatus writes statuses as a table, one projection a line. It
// returns w's error.
func WriteStatus(w io.Writer, statuses []ProjectionStatus) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROJECTION\tGENERATION\tPOSITION\tHEAD\tLAG EVENTS\tLAG\tUPDATED\tSTATE")
	for _, s := range statuses {
		state := "ok"
		switch {
		case !s.Built:
			state = "not built"
		case s.Stale:
			state = "stale: rebuild needed"
		case s.Error != "":
			state = "failing: " + domain.StripControl(s.Error)
		case s.LagEvents > 0:
			state = "catching up"
		}
		updated := "-"
		if !s.UpdatedAt.IsZero() {
			updated = s.UpdatedAt.Format(time.RFC3339)
		}
		lag := (time.Duration(s.LagSeconds * float64(time.Second))).Round(time.Millisecond)
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\t%s\t%s\n",
			s.Name, s.Generation, s.Position, s.Head, s.LagEvents, lag, updated, state)
	}
	return tw.Flush()
}

// barThrottle is how often the progress bar redraws.
const barThrottle = 200 * time.Millisecond

// bar is a rebuild's progress bar; a nil *bar shows nothing.
type bar struct {
	w           io.Writer
	description string
	// pb is made at the first setTotal, with a known length: a bar of
	// unknown length starts a spinner goroutine that reads the bar's state
	// without its lock (a data race inside progressbar v3).
	pb *progressbar.ProgressBar
}

func newBar(w io.Writer, projections []string) *bar {
	if w == nil {
		return nil
	}
	return &bar{w: w, description: "rebuild " + strings.Join(projections, ", ")}
}

func (b *bar) setTotal(head uint64) {
	if b == nil {
		return
	}
	total := int64(max(head, 1))
	if b.pb == nil {
		b.pb = progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(b.w),
			progressbar.OptionSetDescription(b.description),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("events"),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionSetElapsedTime(true),
			progressbar.OptionThrottle(barThrottle),
			progressbar.OptionFullWidth(),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(b.w) }),
		)
		return
	}
	if total != b.pb.GetMax64() {
		b.pb.ChangeMax64(total)
	}
}

func (b *bar) add(n int) {
	if b != nil && b.pb != nil {
		b.pb.Add64(int64(n))
	}
}

func (b *bar) finish() {
	if b != nil && b.pb != nil {
		b.pb.Finish()
	}
}
