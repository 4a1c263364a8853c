package projections

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/eventstore"
)

// submitJob appends the submission of job id by owner at time at.
func submitJob(tb testing.TB, store eventstore.Store, owner domain.UserID, id domain.JobID, at time.Time) uint64 {
	tb.Helper()
	payload, _ := domain.PayloadURI("s3://bucket/" + string(id))
	j := domain.NewJob(id)
	ev, err := j.Submit(domain.Submission{Owner: owner, Type: domain.JobRender, Payload: payload, Cost: 10}, at)
	return mustDecide(tb, store, j, domain.JobStream(id), ev, err)
}

// TestJobPagesStableUnderInserts pages through a user's jobs while more
// are submitted between pages, newer and older, many sharing a submission
// time: every job
// that existed at the first page is seen exactly once, and no job twice.
func TestJobPagesStableUnderInserts(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, e env) {
		r := mustStart(t, e, e.db, nil)
		base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		rnd := rand.New(rand.NewPCG(1, 2))
		existing := map[string]bool{}
		for i := range 60 {
			id := fmt.Sprintf("j%03d", i)
			submitJob(t, e.store, "owner", domain.JobID(id), base.Add(time.Duration(rnd.IntN(20))*time.Second))
			existing[id] = true
		}
		submitJob(t, e.store, "other", "x-other", base)
		mustWait(t, r, e.store)

		seen := map[string]int{}
		rd := NewReader(e.db)
		cursor := ""
		for pages := 0; ; pages++ {
			page, err := rd.Jobs(context.Background(), "owner", JobQuery{Cursor: cursor, Limit: 7})
			if err != nil {
				t.Fatalf("page %d: %v", pages, err)
			}
			for _, j := range page.Jobs {
				seen[j.ID]++
			}
			if cursor = page.NextCursor; cursor == "" {
				break
			}
			for k := range 3 { // new jobs before, among and after the ones listed
				id := domain.JobID(fmt.Sprintf("k%02d%d", pages, k))
				submitJob(t, e.store, "owner", id, base.Add(time.Duration(rnd.IntN(40)-10)*time.Second))
			}
			mustWait(t, r, e.store)
		}
		for id, n := range seen {
			if n != 1 {
				t.Errorf("job %s seen %d times, want once", id, n)
			}
		}
		for id := range existing {
			if seen[id] != 1 {
				t.Errorf("existing job %s seen %d times, want once", id, seen[id])
			}
		}
		if seen["x-other"] != 0 {
			t.Errorf("another user's job was listed")
		}
	})
}

// TestTransactionPagesStableUnderInserts pages through a user's
// transactions while more are appended: no entry repeats, none of those
// present at the first page is skipped.
func TestTransactionPagesStableUnderInserts(t *testing.T) {
	t.Parallel()
	e := sqliteEnv(t)
	r := mustStart(t, e, e.db, nil)
	a := domain.NewAccount("u1")
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for i := range 40 {
		ev, err := a.Grant(fmt.Sprintf("g%d", i), 3, "promotion", now)
		mustDecide(t, e.store, a, domain.AccountStream("u1"), ev, err)
	}
	mustWait(t, r, e.store)
	seen := map[string]int{}
	rd := NewReader(e.db)
	cursor := ""
	for i := 0; ; i++ {
		page, err := rd.Transactions(context.Background(), "u1", TransactionQuery{Cursor: cursor, Limit: 6, AnchoredSize: 20})
		if err != nil {
			t.Fatalf("page %d: %v", i, err)
		}
		for _, tx := range page.Transactions {
			seen[tx.EntryID]++
			if want := tx.Position <= 20; tx.Anchored != want || tx.Type != TxGrant || tx.Amount != 3 {
				t.Errorf("transaction %+v: want a grant of 3, anchored %v", tx, want)
			}
		}
		ev, err := a.Grant(fmt.Sprintf("late%d", i), 1, "promotion", now)
		mustDecide(t, e.store, a, domain.AccountStream("u1"), ev, err)
		mustWait(t, r, e.store)
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	if len(seen) != 40 {
		t.Errorf("saw %d entries, want the 40 present at the first page", len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("entry %s seen %d times", id, n)
		}
	}
}

// TestQueryErrors checks the errors of the job and transaction queries.
func TestQueryErrors(t *testing.T) {
	t.Parallel()
	e := sqliteEnv(t)
	r := mustStart(t, e, e.db, nil)
	submitJob(t, e.store, "owner", "j1", time.Now())
	mustWait(t, r, e.store)
	rd := NewReader(e.db)
	ctx := context.Background()
	txCursor := encodeCursor(transactionCursorKind, "5")
	tests := []struct {
		name string
		run  func() error
		want error
	}{
		{"ErrJobNotFound", func() error { _, err := rd.Job(ctx, "owner", "nope"); return err }, domain.ErrJobNotFound},
		{"OtherOwnersJob", func() error { _, err := rd.Job(ctx, "intruder", "j1"); return err }, domain.ErrJobNotFound},
		{"GarbageCursor", func() error { _, err := rd.Jobs(ctx, "owner", JobQuery{Cursor: "!!"}); return err }, ErrInvalidCursor},
		{"CursorOfAnotherList", func() error { _, err := rd.Jobs(ctx, "owner", JobQuery{Cursor: txCursor}); return err }, ErrInvalidCursor},
		{"BadStatus", func() error { _, err := rd.Jobs(ctx, "owner", JobQuery{Status: "DONE"}); return err }, ErrInvalidQuery},
		{"LimitTooLarge", func() error { _, err := rd.Jobs(ctx, "owner", JobQuery{Limit: PageLimitMax + 1}); return err }, ErrInvalidQuery},
		{"NegativeLimit", func() error { _, err := rd.Transactions(ctx, "owner", TransactionQuery{Limit: -1}); return err }, ErrInvalidQuery},
		{"TransactionCursorGarbage", func() error {
			_, err := rd.Transactions(ctx, "owner", TransactionQuery{Cursor: encodeCursor(transactionCursorKind, "x")})
			return err
		}, ErrInvalidCursor},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.run(); !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
	job, err := rd.Job(ctx, "owner", "j1")
	if err != nil || job.Status != domain.StatusQueued || !job.Cancellable || job.Cost != 10 || job.DispatchedAt != nil {
		t.Errorf("Job(j1) = %+v, %v; want a cancellable QUEUED job costing 10", job, err)
	}
	page, err := rd.Jobs(ctx, "owner", JobQuery{Status: "queued"})
	if err != nil || len(page.Jobs) != 1 || page.NextCursor != "" {
		t.Errorf("Jobs(status=queued) = %+v, %v; want j1 alone", page, err)
	}
}

// heartbeats is a NodeHeartbeats of fixed answers.
type heartbeats map[domain.NodeID]time.Time

func (h heartbeats) NodeStatus(id domain.NodeID) (time.Time, int) { return h[id], len(id) }

// TestNodes checks capabilities from the log and health from heartbeats.
func TestNodes(t *testing.T) {
	t.Parallel()
	e := sqliteEnv(t)
	r := mustStart(t, e, e.db, nil)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, id := range []domain.NodeID{"n1", "n2", "n3"} {
		n := domain.NewNode(id)
		ev, err := n.Enroll(domain.Enrollment{Name: "node " + string(id), Capabilities: domain.Capabilities{
			JobTypes: []domain.JobType{domain.JobEcho, domain.JobRender}, GPU: id == "n1", Slots: 2}}, now)
		mustDecide(t, e.store, n, domain.NodeStream(id), ev, err)
		if id == "n3" {
			ev, err := n.Retire("gone", now)
			mustDecide(t, e.store, n, domain.NodeStream(id), ev, err)
		}
	}
	mustWait(t, r, e.store)
	hb := heartbeats{"n1": now.Add(-10 * time.Second), "n2": now.Add(-31 * time.Second), "n3": now}
	nodes, err := NewReader(e.db).Nodes(context.Background(), hb, now)
	if err != nil || len(nodes) != 3 {
		t.Fatalf("Nodes = %v, %v; want 3 nodes", nodes, err)
	}
	for i, want := range []struct{ healthy, retired, gpu bool }{{true, false, true}, {false, false, false}, {false, true, false}} {
		n := nodes[i]
		if n.Healthy != want.healthy || n.Retired != want.retired || n.GPU != want.gpu || n.Load != 2 || len(n.JobTypes) != 2 || n.Slots != 2 {
			t.Errorf("node %s = %+v, want healthy %v retired %v gpu %v", n.ID, n, want.healthy, want.retired, want.gpu)
		}
	}
	if _, err := NewReader(e.db).Node(context.Background(), "n9", hb, now); !errors.Is(err, domain.ErrNodeNotFound) {
		t.Errorf("Node(n9) = %v, want ErrNodeNotFound", err)
	}
}
