package replay_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/rendertrust/rendertrust/audit/audittest"
	"github.com/rendertrust/rendertrust/audit/replay"
	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/eventstore"
	"github.com/rendertrust/rendertrust/projections"
	"github.com/rendertrust/rendertrust/projections/projectiontest"
)

var ctx = context.Background()

var backends = []struct {
	name string
	opts audittest.Options
}{
	{"SQLite", audittest.Options{NoChain: true}},
	{"PostgreSQL", audittest.Options{NoChain: true, Postgres: true}},
}

// readModels is what the API showed at one position of the log.
type readModels struct {
	head     uint64
	balances map[domain.UserID]projections.Balance
	jobs     map[domain.JobID]projections.Job
	txs      map[domain.UserID][]projections.Transaction // oldest first
	usage    map[domain.UserID]int64
	nodes    []projections.Node
}

// TestReplayEqualsProjections is the replay's property test. Random
// histories (users buying, being granted and refunded credits, jobs
// dispatched, failing, retried, timing out, cancelled and completed, nodes
// enrolled, changed and retired) are appended one stream append at a
// time; at random positions the read models are caught up and recorded.
// When the history is done, the log is replayed from scratch up to each
// recorded position, and every balance, job, transaction, usage total and
// node the replay gives must equal what the read models showed there.
func TestReplayEqualsProjections(t *testing.T) {
	seeds, events := 2, 500
	if testing.Short() {
		seeds, events = 1, 300
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			for seed := range uint64(seeds) {
				t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
					in := audittest.New(t, b.opts)
					sim := projectiontest.NewSim(projectiontest.Config{Users: 6, Nodes: 3, Submits: 2, Seed: seed + 1})
					snaps := record(t, in, sim, events, rand.New(rand.NewPCG(seed, 9)))
					if len(snaps) < 3 {
						t.Fatalf("only %d positions recorded", len(snaps))
					}
					for _, s := range snaps {
						compare(t, in.Store, sim, s)
					}
					t.Logf("%d positions compared, log of %d events", len(snaps), sim.Events())
				})
			}
		})
	}
}

// record appends sim's history one append at a time and records the read
// models at random positions.
func record(t *testing.T, in *audittest.Installation, sim *projectiontest.Sim, events int, r *rand.Rand) []readModels {
	var snaps []readModels
	for sim.Events() < events {
		for _, a := range sim.Round() {
			data := make([]eventstore.EventData, len(a.Events))
			for i, e := range a.Events {
				data[i] = projectiontest.EventData(e)
			}
			res, err := in.Store.Append(ctx, a.Stream, eventstore.Exact(a.Expected), data...)
			if err != nil {
				t.Fatalf("append to %s: %v", a.Stream, err)
			}
			if r.IntN(12) == 0 {
				snaps = append(snaps, snapshot(t, in, sim, res.LastPosition))
			}
		}
	}
	return snaps
}

// snapshot waits for the read models to reach head and reads them all.
func snapshot(t *testing.T, in *audittest.Installation, sim *projectiontest.Sim, head uint64) readModels {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); ; { // WaitFor gives up after projections.WaitMax
		err := in.Runner.WaitFor(ctx, head)
		if err == nil {
			break
		}
		if !errors.Is(err, projections.ErrWaitTimeout) || time.Now().After(deadline) {
			t.Fatalf("wait for projections at %d: %v", head, err)
		}
	}
	rd := projections.NewReader(in.DB)
	s := readModels{head: head, balances: map[domain.UserID]projections.Balance{}, jobs: map[domain.JobID]projections.Job{},
		txs: map[domain.UserID][]projections.Transaction{}, usage: map[domain.UserID]int64{}}
	for i := range sim.Accounts {
		u := projectiontest.UserID(i)
		var err error
		if s.balances[u], err = rd.Balance(ctx, u); err != nil {
			t.Fatal(err)
		}
		s.txs[u] = transactions(t, rd, u)
		use, err := rd.Usage(ctx, u, projections.UsageQuery{Days: projections.UsageDaysMax, Now: usageNow})
		if err != nil {
			t.Fatal(err)
		}
		s.usage[u] = use.Total
	}
	for id, j := range sim.Jobs {
		job, err := rd.Job(ctx, j.Owner(), id)
		if errors.Is(err, domain.ErrJobNotFound) {
			continue // decided, not appended yet
		}
		if err != nil {
			t.Fatal(err)
		}
		s.jobs[id] = job
	}
	var err error
	if s.nodes, err = rd.Nodes(ctx, nil, usageNow); err != nil {
		t.Fatal(err)
	}
	return s
}

// usageNow is a "now" after every simulated event, so usage covers them.
var usageNow = time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)

func transactions(t *testing.T, rd *projections.Reader, u domain.UserID) []projections.Transaction {
	var out []projections.Transaction
	q := projections.TransactionQuery{Limit: projections.PageLimitMax}
	for {
		page, err := rd.Transactions(ctx, u, q)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, page.Transactions...)
		if page.NextCursor == "" {
			break
		}
		q.Cursor = page.NextCursor
	}
	slices.Reverse(out)
	return out
}

// compare replays the log up to s.head and checks it against s.
func compare(t *testing.T, store replay.Store, sim *projectiontest.Sim, s readModels) {
	t.Helper()
	m, err := replay.Resolve(ctx, store, replay.Until{Position: s.head})
	if err != nil {
		t.Fatal(err)
	}
	st, err := replay.StateAt(ctx, store, m, replay.Options{})
	if err != nil {
		t.Fatalf("replay to %d: %v", s.head, err)
	}
	for i := range sim.Accounts {
		compareAccount(t, store, st, s, projectiontest.UserID(i))
	}
	existing := 0
	for id, j := range st.Jobs {
		if j.Exists() {
			existing++
			compareJob(t, store, st, s, id)
		}
	}
	if existing != len(s.jobs) {
		t.Errorf("at %d: replay has %d jobs, the read model %d", s.head, existing, len(s.jobs))
	}
	compareNodes(t, st, s)
}

func compareAccount(t *testing.T, store replay.Store, st *replay.State, s readModels, u domain.UserID) {
	t.Helper()
	want := projections.Balance{}
	if a := st.Accounts[u]; a != nil {
		want = projections.Balance{Balance: int64(a.Balance()), Held: int64(a.Held()), Available: int64(a.Available())}
	}
	if got := s.balances[u]; got != want {
		t.Errorf("at %d: balance of %s: read model %+v, replay %+v", s.head, u, got, want)
	}
	acc, err := replay.AccountAt(ctx, store, u, st.Moment)
	if err != nil {
		t.Fatal(err)
	}
	if acc.Balance != domain.Credits(want.Balance) || acc.Held != domain.Credits(want.Held) || acc.Available != domain.Credits(want.Available) {
		t.Errorf("at %d: AccountAt(%s) = %d/%d/%d, StateAt %+v", s.head, u, acc.Balance, acc.Held, acc.Available, want)
	}
	var txs []projections.Transaction
	var usage int64
	for _, e := range acc.History {
		if tx, ok := transaction(e); ok {
			txs = append(txs, tx)
		}
		if e.Kind == replay.KindDeduction {
			usage += int64(e.Amount)
		}
	}
	if !slices.Equal(txs, s.txs[u]) {
		t.Errorf("at %d: transactions of %s:\nread model %+v\nreplay     %+v", s.head, u, s.txs[u], txs)
	}
	if usage != s.usage[u] {
		t.Errorf("at %d: usage of %s: read model %d, replay %d", s.head, u, s.usage[u], usage)
	}
}

// transaction returns the transaction the API shows for a history entry
// that moves credits.
func transaction(e replay.Entry) (projections.Transaction, bool) {
	if e.Kind == "" || e.Amount == 0 {
		return projections.Transaction{}, false
	}
	tx := projections.Transaction{EntryID: e.EntryID, Type: e.Kind, Amount: int64(e.Amount), Time: e.At, Position: e.Position}
	switch d := e.Event.(type) {
	case domain.CreditsPurchased:
		tx.Dev = d.Provider == domain.ProviderDev
	case domain.CreditsGranted:
		tx.Reason = d.Reason
	case domain.CreditsHeld:
		tx.JobID = string(d.JobID)
	case domain.CreditsDeducted:
		tx.JobID = string(d.JobID)
	case domain.HoldReleased:
		tx.JobID, tx.Reason = string(d.JobID), d.Reason
	case domain.CreditsRefunded:
		tx.JobID, tx.Reason = string(d.JobID), d.Reason
	}
	return tx, true
}

func compareJob(t *testing.T, store replay.Store, st *replay.State, s readModels, id domain.JobID) {
	t.Helper()
	got, ok := s.jobs[id]
	if !ok {
		t.Errorf("at %d: job %s is in the replay, not in the read model", s.head, id)
		return
	}
	j, err := replay.JobAt(ctx, store, id, st.Moment)
	if err != nil {
		t.Fatal(err)
	}
	if d := st.Jobs[id]; d.Status() != j.Status || d.Attempts() != j.Attempts || d.UpdatedAt() != latestJobEvent(j) {
		t.Errorf("at %d: JobAt(%s) disagrees with StateAt: %s/%d vs %s/%d", s.head, id, j.Status, j.Attempts, d.Status(), d.Attempts())
	}
	want := projections.Job{
		ID: string(id), Type: string(j.Type), Status: j.Status, Priority: string(j.Priority), GPURequired: j.GPU,
		NodeID: string(j.Node), Attempts: j.Attempts, LastError: j.LastError, CancelReason: j.CancelReason,
		PayloadRef: j.PayloadRef, Cost: int64(j.Cost), Deducted: int64(j.Deducted), Refunded: int64(j.Refunded),
		ResultSHA256: j.ResultSHA256, ResultBytes: j.ResultBytes,
		Cancellable: j.Status == domain.StatusQueued || j.Status == domain.StatusDispatched,
		SubmittedAt: j.SubmittedAt, DispatchedAt: optional(j.DispatchedAt), StartedAt: optional(j.StartedAt),
	}
	switch j.Status {
	case domain.StatusCompleted:
		want.CompletedAt = optional(j.FinishedAt)
	case domain.StatusFailed:
		want.FailedAt = optional(j.FinishedAt)
	case domain.StatusCancelled:
		want.CancelledAt = optional(j.FinishedAt)
	}
	want.Retrying = j.LastError != "" && (j.Status == domain.StatusQueued || j.Status == domain.StatusDispatched || j.Status == domain.StatusRunning)
	if len(got.AttemptHistory) != j.Attempts {
		t.Errorf("at %d: job %s has %d attempts in its history, the replay %d", s.head, id, len(got.AttemptHistory), j.Attempts)
	}
	got.AttemptHistory = nil
	got.UpdatedAt, got.Position = time.Time{}, 0 // bookkeeping of the read model
	// %+v prints times (pointers too) through their String method: equal
	// instants in any representation print alike.
	if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
		t.Errorf("at %d: job %s:\nread model %+v\nreplay     %+v", s.head, id, got, want)
	}
}

// latestJobEvent returns the decision time of the job's latest lifecycle
// event in its history.
func latestJobEvent(j *replay.Job) time.Time {
	var at time.Time
	for _, e := range j.History {
		if e.Stream == domain.JobStream(j.ID) {
			at = e.At
		}
	}
	return at
}

func optional(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func compareNodes(t *testing.T, st *replay.State, s readModels) {
	t.Helper()
	var want []projections.Node
	for _, id := range slices.Sorted(maps.Keys(st.Nodes)) {
		n := st.Nodes[id]
		want = append(want, projections.Node{ID: string(id), Name: n.Name(), JobTypes: n.JobTypes(), GPU: n.GPU(),
			Slots: n.Slots(), Retired: n.Retired(), EnrolledAt: n.EnrolledAt(), RetiredAt: optional(n.RetiredAt())})
	}
	if fmt.Sprintf("%+v", want) != fmt.Sprintf("%+v", s.nodes) {
		t.Errorf("at %d: nodes:\nread model %+v\nreplay     %+v", s.head, s.nodes, want)
	}
}
