package projections

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/internal/sqldb"
)

// TestBadEventInTheLog: 1. the log already holds events with control
// characters (NUL, which PostgreSQL refuses in text, and a terminal
// escape) that older code let through; 2. the read models apply them with
// each control character replaced, count them and go on to the events
// after.
func TestBadEventInTheLog(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, e env) {
		reg := prometheus.NewRegistry()
		r, err := NewRunner(Config{DB: e.db, Store: e.store, Registerer: reg, Logger: quietLogger})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Stop() })
		now := time.Now().UTC().Truncate(time.Microsecond)
		// 1.
		appendEvents(t, e.store, domain.NodeStream("n1"), 0, domain.NodeEnrolled{
			NodeID: "n1", Name: "gpu\x00box\x1b[2J", JobTypes: []domain.JobType{domain.JobEcho}, Slots: 1, At: now})
		a := domain.NewAccount("u1")
		ev, err := a.Grant("g1", 5, "welcome", now)
		mustDecide(t, e.store, a, domain.AccountStream("u1"), ev, err)
		// 2.
		mustWait(t, r, e.store)
		n, err := NewReader(e.db).Node(context.Background(), "n1", heartbeats{}, now)
		if err != nil || n.Name != "gpu box [2J" {
			t.Errorf("node n1 = %+v, %v; want the name %q", n, err, "gpu box [2J")
		}
		if b, _ := NewReader(e.db).Balance(context.Background(), "u1"); b.Balance != 5 {
			t.Errorf("balance after the bad event = %d, want 5", b.Balance)
		}
		if got := gathered(t, reg, "rendertrust_projection_sanitized_events_total", domain.EventNodeEnrolled); got != 1 {
			t.Errorf("sanitized{%s} = %v, want 1", domain.EventNodeEnrolled, got)
		}
	})
}

// brokenProjection fails every batch it is given.
type brokenProjection struct{ nodesProjection }

func (brokenProjection) Name() string { return "failing" }

func (brokenProjection) Tables() []Table {
	return []Table{{Name: "rm_failing", Columns: []string{"k TEXT NOT NULL"}, PrimaryKey: []string{"k"}}}
}

func (brokenProjection) Apply(ctx context.Context, tx *sqldb.Tx, t Tables, events []Event) error {
	if _, err := tx.Exec(ctx, "INSERT INTO "+t.Name("rm_failing")+" (k) VALUES ('half-written')"); err != nil {
		return err
	}
	return errors.New("test: this projection cannot apply anything")
}

// TestFailingProjectionIsolated: 1. one projection fails on every batch;
// 2. the others apply the log up to its head regardless, and WaitFor does
// not wait for the failing one; 3. the failure shows in a metric and in
// Status, with nothing of its half-written batch kept; 4. it is retried
// with backoff, not endlessly.
func TestFailingProjectionIsolated(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, e env) {
		reg := prometheus.NewRegistry()
		ps := append(All(), brokenProjection{})
		r, err := NewRunner(Config{DB: e.db, Store: e.store, Projections: ps, Registerer: reg, Logger: quietLogger})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Stop() })
		// 1.
		a := domain.NewAccount("u1")
		for i := range 3 {
			ev, err := a.Grant(fmt.Sprintf("g%d", i), 5, "welcome", time.Now())
			mustDecide(t, e.store, a, domain.AccountStream("u1"), ev, err)
		}
		// 2.
		head := mustWait(t, r, e.store)
		for name, pos := range r.Positions() {
			if want := map[bool]uint64{true: 0, false: head}[name == "failing"]; pos != want {
				t.Errorf("%s at %d, want %d", name, pos, want)
			}
		}
		if b, _ := NewReader(e.db).Balance(context.Background(), "u1"); b.Balance != 15 {
			t.Errorf("balance = %d, want 15", b.Balance)
		}
		// 3.
		if got := gathered(t, reg, "rendertrust_projection_failing", "failing"); got != 1 {
			t.Errorf("failing{failing} = %v, want 1", got)
		}
		if got := gathered(t, reg, "rendertrust_projection_failing", "balances"); got != 0 {
			t.Errorf("failing{balances} = %v, want 0", got)
		}
		st, err := ReadStatus(context.Background(), e.db, e.store, ps)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range st {
			if failing := s.Name == "failing"; failing != strings.Contains(s.Error, "test: this projection cannot apply anything") {
				t.Errorf("status %+v: want the failure's error on the failing projection alone", s)
			}
		}
		var rows int
		if err := e.db.QueryRow(context.Background(), "SELECT COUNT(*) FROM rm_failing").Scan(&rows); err != nil || rows != 0 {
			t.Errorf("rm_failing holds %d rows (%v), want none", rows, err)
		}
		// 4.
		if got := gathered(t, reg, "rendertrust_projection_failures_total", "failing"); got < 1 || got > 10 {
			t.Errorf("failures{failing} = %v, want a few retries with backoff", got)
		}
	})
}

// gathered returns the value of the metric name whose one label has
// value label in reg, or -1 when there is none.
func gathered(tb testing.TB, reg *prometheus.Registry, name, label string) float64 {
	tb.Helper()
	families, err := reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if lp := m.GetLabel(); len(lp) > 0 && lp[len(lp)-1].GetValue() == label {
				return m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	return -1
}
