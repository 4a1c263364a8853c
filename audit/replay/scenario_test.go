package replay_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rendertrust/rendertrust/audit/replay"
	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/eventstore"
	"github.com/rendertrust/rendertrust/eventstore/sqlite"
	"github.com/rendertrust/rendertrust/projections/projectiontest"
)

func TestParseUntil(t *testing.T) {
	at := time.Date(2026, 3, 6, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		in   string
		want replay.Until
		err  bool
	}{
		{"", replay.Until{}, false},
		{"now", replay.Until{}, false},
		{"1234", replay.Until{Position: 1234}, false},
		{"2026-03-06T12:00:00Z", replay.Until{Time: at}, false},
		{"2026-03-06T13:00:00+01:00", replay.Until{Time: at}, false},
		{"2026-03-06T12:00:00", replay.Until{Time: at}, false},
		{"2026-03-06", replay.Until{Time: at.Add(-12 * time.Hour)}, false},
		{"0", replay.Until{}, true},
		{"yesterday", replay.Until{}, true},
		{"-5", replay.Until{}, true},
	}
	for _, c := range cases {
		got, err := replay.ParseUntil(c.in)
		if c.err != (err != nil) || (err != nil && !errors.Is(err, replay.ErrInvalidUntil)) || !got.Time.Equal(c.want.Time) || got.Position != c.want.Position {
			t.Errorf("ParseUntil(%q) = %+v, %v; want %+v, error %t", c.in, got, err, c.want, c.err)
		}
	}
}

// scenario is a log written through the domain aggregates.
type scenario struct {
	t     *testing.T
	store eventstore.Store
	now   time.Time
}

func newScenario(t *testing.T) *scenario {
	store, err := sqlite.Open(ctx, t.TempDir()+"/events.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return &scenario{t: t, store: store, now: time.Date(2026, 3, 6, 9, 0, 0, 0, time.UTC)}
}

// aggregate is a domain aggregate.
type aggregate interface {
	Apply(domain.Event)
	Version() uint64
}

// on returns a function that appends what agg decided to stream, at its
// version before, and returns the position of the last event.
func (s *scenario) on(stream string, agg aggregate) func([]domain.Event, error) uint64 {
	return func(events []domain.Event, err error) uint64 { return s.append(stream, agg, events, err) }
}

func (s *scenario) append(stream string, agg aggregate, events []domain.Event, err error) uint64 {
	s.t.Helper()
	if err != nil {
		s.t.Fatalf("decide on %s: %v", stream, err)
	}
	before := agg.Version()
	data := make([]eventstore.EventData, len(events))
	for i, e := range events {
		agg.Apply(e)
		data[i] = projectiontest.EventData(e)
	}
	res, err := s.store.Append(ctx, stream, eventstore.Exact(before), data...)
	if err != nil {
		s.t.Fatal(err)
	}
	s.now = s.now.Add(time.Minute)
	time.Sleep(2 * time.Millisecond) // distinct recorded times
	return res.LastPosition
}

// TestJobAndAccountHistory settles a dispute from the log: 1. a user buys
// credits and submits a render job, which fails once, is retried on
// another node and completes; 2. the charge is deducted; 3. an admin
// refunds part of it, then the rest. Replayed at each step, the job and
// the account say exactly what was true then, and the text and JSON
// output name every event with its position and entry id.
func TestJobAndAccountHistory(t *testing.T) {
	s := newScenario(t)
	acc, job := domain.NewAccount("u1"), domain.NewJob("j1")
	node := domain.NewNode("n1")
	as, js := domain.AccountStream("u1"), domain.JobStream("j1")

	// 1.
	s.on(domain.NodeStream("n1"), node)(node.Enroll(domain.Enrollment{Name: "gpu box", Capabilities: domain.Capabilities{JobTypes: domain.JobTypes(), GPU: true, Slots: 2}}, s.now))
	pkg, _ := domain.LookupPackage("credits_100")
	s.on(as, acc)(acc.Purchase(pkg.Purchase("p1", domain.ProviderDev, "cs_1"), s.now))
	s.on(as, acc)(acc.Hold("j1", 10, s.now))
	payload, _ := domain.PayloadURI("s3://bucket/scene.blend")
	s.on(js, job)(job.Submit(domain.Submission{Owner: "u1", Type: domain.JobRender, Payload: payload, Cost: 10}, s.now))
	s.on(js, job)(job.Dispatch("n1", s.now))
	s.on(js, job)(job.Fail("n1", "out of memory", s.now))
	s.on(js, job)(job.Dispatch("n2", s.now))
	s.on(js, job)(job.Start("n2", s.now))
	completed := s.on(js, job)(job.Complete("n2", strings.Repeat("ab", 32), 2048, s.now))
	// 2.
	s.on(as, acc)(acc.Deduct("j1", s.now))
	// 3.
	firstRefund := s.on(as, acc)(acc.Refund("j1", 4, "r1", "dispute: late delivery", s.now))
	s.on(as, acc)(acc.Refund("j1", 6, "r2", "dispute: settled in full", s.now))

	at := func(u replay.Until) replay.Moment {
		m, err := replay.Resolve(ctx, s.store, u)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	j, err := replay.JobAt(ctx, s.store, "j1", at(replay.Until{Position: completed}))
	if err != nil {
		t.Fatal(err)
	}
	if j.Status != domain.StatusCompleted || j.Node != "n2" || j.Attempts != 2 || j.LastError != "out of memory" ||
		j.Deducted != 0 || j.Hold == nil || j.Hold.State != domain.HoldStateOpen || j.ResultBytes != 2048 {
		t.Errorf("job at completion: %+v, hold %+v", j, j.Hold)
	}
	j, err = replay.JobAt(ctx, s.store, "j1", at(replay.Until{Position: firstRefund}))
	if err != nil {
		t.Fatal(err)
	}
	if j.Deducted != 10 || j.Refunded != 4 {
		t.Errorf("job after the first refund: charged %d, refunded %d; want 10, 4", j.Deducted, j.Refunded)
	}
	m := at(replay.Until{})
	j, err = replay.JobAt(ctx, s.store, "j1", m)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, e := range j.History {
		kinds[e.Type]++
		if e.Kind == replay.KindRefund && !strings.Contains(e.Summary, "dispute") {
			t.Errorf("refund entry %+v does not give its reason", e)
		}
	}
	if j.Refunded != 10 || kinds[domain.EventCreditsRefunded] != 2 || kinds[domain.EventJobDispatched] != 2 || len(j.History) != 10 {
		t.Errorf("job at the end: refunded %d, history %v (%d entries)", j.Refunded, kinds, len(j.History))
	}
	a, err := replay.AccountAt(ctx, s.store, "u1", m)
	if err != nil {
		t.Fatal(err)
	}
	if a.Balance != 100 || a.Held != 0 || a.Available != 100 || a.Refunded != 10 || len(a.Holds) != 1 || a.Holds[0].Refunded != 10 {
		t.Errorf("account at the end: %+v", a)
	}
	var out bytes.Buffer
	if err := j.Write(&out); err != nil {
		t.Fatal(err)
	}
	t.Logf("replay --job j1 --until now:\n%s", out.String())
	for _, want := range []string{"status", "COMPLETED", "out of memory", "refunded", j.History[len(j.History)-1].EntryID, "settled in full"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("job output lacks %q:\n%s", want, out.String())
		}
	}
	if _, err := replay.JobAt(ctx, s.store, "j1", at(replay.Until{Position: 2})); !errors.Is(err, domain.ErrJobNotFound) {
		t.Errorf("job before its submission: %v, want ErrJobNotFound", err)
	}
}

// TestResolveTime: a time selects the longest prefix of the log recorded
// at or before it.
func TestResolveTime(t *testing.T) {
	s := newScenario(t)
	acc := domain.NewAccount("u1")
	var recs []eventstore.RecordedEvent
	for i := range 5 {
		pos := s.on(domain.AccountStream("u1"), acc)(acc.Grant("g"+string(rune('a'+i)), 1, "welcome", s.now))
		evs, _ := s.store.ReadAll(ctx, pos, 1)
		recs = append(recs, evs[0])
	}
	for i, rec := range recs {
		m, err := replay.Resolve(ctx, s.store, replay.Until{Time: rec.RecordedAt})
		if err != nil || m.Position != uint64(i+1) || !m.RecordedAt.Equal(rec.RecordedAt) {
			t.Errorf("Resolve(%s) = %+v, %v; want position %d", rec.RecordedAt, m, err, i+1)
		}
		m, err = replay.Resolve(ctx, s.store, replay.Until{Time: rec.RecordedAt.Add(-time.Microsecond)})
		if err != nil || m.Position != uint64(i) {
			t.Errorf("Resolve(just before %d) = %+v, %v; want position %d", i+1, m, err, i)
		}
	}
	if _, err := replay.Resolve(ctx, s.store, replay.Until{Position: 6}); !errors.Is(err, replay.ErrBeyondHead) {
		t.Errorf("Resolve(6) on a log of 5: %v, want ErrBeyondHead", err)
	}
}
