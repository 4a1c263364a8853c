package commands_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rendertrust/rendertrust/commands"
	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/eventstore"
)

// countingStore counts the appends a service makes through it.
type countingStore struct {
	eventstore.Store
	appends, multis atomic.Int64
}

func (c *countingStore) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	c.appends.Add(1)
	return c.Store.Append(ctx, stream, expected, events...)
}

// countingMulti is a countingStore that offers the wrapped store's AppendMulti.
type countingMulti struct{ *countingStore }

func (c countingMulti) AppendMulti(ctx context.Context, parts ...eventstore.StreamAppend) ([]eventstore.AppendResult, error) {
	c.multis.Add(1)
	return c.Store.(eventstore.MultiAppender).AppendMulti(ctx, parts...)
}

// newCountingEnv is newEnv on a store that counts the service's appends.
func newCountingEnv(t *testing.T, b backend) (*env, *countingStore, bool) {
	store, db := b.open(t)
	counting := &countingStore{Store: store}
	var wrapped eventstore.Store = counting
	_, multi := store.(eventstore.MultiAppender)
	if multi {
		wrapped = countingMulti{counting}
	}
	c := &clock{now: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}
	svc, err := newService(ctx, wrapped, db, c.Now)
	if err != nil {
		t.Fatal(err)
	}
	return &env{store: wrapped, db: db, svc: svc, clock: c}, counting, multi
}

// TestSubmitIsOneAppend: 1. where the store offers AppendMulti, a
// submission (queued, or dispatched at once) is one append: the hold and
// the job in one commit, at adjacent positions; 2. otherwise it is two
// appends, hold then job.
func TestSubmitIsOneAppend(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e, counting, multi := newCountingEnv(t, b)
		e.mustNode(t, "node-a", 1, false)
		e.mustGrant(t, "u1", 100)
		for _, want := range []domain.Status{domain.StatusDispatched, domain.StatusQueued} {
			counting.appends.Store(0)
			counting.multis.Store(0)
			res := e.mustSubmit(t, "u1", domain.JobRender)
			if res.Status != want {
				t.Fatalf("status %s, want %s", res.Status, want)
			}
			appends, multis := counting.appends.Load(), counting.multis.Load()
			if multi && (appends != 0 || multis != 1) {
				t.Fatalf("step 1: %s submission made %d appends and %d multi-stream appends, want one multi-stream append", want, appends, multis)
			}
			if !multi && (appends != 2 || multis != 0) {
				t.Fatalf("step 2: %s submission made %d appends and %d multi-stream appends, want 2 appends", want, appends, multis)
			}
			recs := e.records(t)
			held, submitted := recs[len(recs)-1], recs[len(recs)-1]
			for _, r := range recs {
				switch {
				case r.Type == domain.EventCreditsHeld && containsJob(r, string(res.JobID)):
					held = r
				case r.Type == domain.EventJobSubmitted && r.Stream == domain.JobStream(res.JobID):
					submitted = r
				}
			}
			if held.Type != domain.EventCreditsHeld || submitted.Position != held.Position+1 {
				t.Fatalf("hold at %d (%s), job at %d: want the job right after its hold", held.Position, held.Type, submitted.Position)
			}
		}
	})
}

// TestSubmitOfTakenJobIDHoldsNothing: a submission naming a job id that
// another creator's job has is refused (domain.ErrJobExists); with the
// atomic append its hold is not written either, and on the per-stream path
// the hold written first is released by the orphan-hold reactor.
func TestSubmitOfTakenJobIDHoldsNothing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		e.mustNode(t, "node-a", 1, false)
		e.mustGrant(t, "u1", 100)
		e.mustGrant(t, "u2", 100)
		p, _ := domain.PayloadURI("s3://b/k")
		submit := func(owner domain.UserID) error {
			_, err := e.svc.SubmitJob(ctx, system, commands.SubmitJob{JobID: "job-taken", Owner: owner, Type: domain.JobRender, Payload: p})
			return err
		}
		if err := submit("u2"); err != nil {
			t.Fatal(err)
		}
		if err := submit("u1"); !errors.Is(err, domain.ErrJobExists) {
			t.Fatalf("submit of a taken job id: %v, want ErrJobExists", err)
		}
		acc, _ := e.svc.Account(ctx, "u1")
		if _, multi := e.store.(eventstore.MultiAppender); multi && (acc.Held() != 0 || acc.Available() != 100) {
			t.Fatalf("held %d available %d after the refusal, want 0 and 100: the hold was written without its job", acc.Held(), acc.Available())
		}
		r, stop := e.runReactor(t)
		defer stop()
		e.settle(t, r)
		e.clock.Advance(2 * commands.OrphanHoldGrace)
		r.Sweep(ctx)
		acc, _ = e.svc.Account(ctx, "u1")
		if acc.Held() != 0 || acc.Available() != 100 {
			t.Fatalf("held %d available %d after the sweep, want 0 and 100", acc.Held(), acc.Available())
		}
	})
}

// failingMulti is a real store whose AppendMulti fails as a broken disk would.
type failingMulti struct{ eventstore.Store }

var errDiskFailed = errors.New("disk failed")

func (failingMulti) AppendMulti(context.Context, ...eventstore.StreamAppend) ([]eventstore.AppendResult, error) {
	return nil, errDiskFailed
}

// TestResumedSubmitReportsStoreFailure: a submission whose hold an earlier
// attempt already wrote appends only its job; when that append fails, the
// submission fails with the store's error instead of answering success.
func TestResumedSubmitReportsStoreFailure(t *testing.T) {
	real, db := openSQLite(t)
	store := failingMulti{real} // single-stream appends work
	e := &env{store: store, db: db, clock: &clock{now: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}}
	var err error
	if e.svc, err = newService(ctx, store, db, e.clock.Now); err != nil {
		t.Fatal(err)
	}
	e.mustNode(t, "node-a", 1, false)
	e.mustGrant(t, "u1", 100)
	acc, _ := e.svc.Account(ctx, "u1")
	held, _ := acc.Hold("job-resumed", 10, e.clock.Now()) // the attempt that crashed before its job
	appendDomain(t, e, domain.AccountStream("u1"), acc.Version(), held...)
	p, _ := domain.PayloadURI("s3://b/k")
	_, err = e.svc.SubmitJob(ctx, system, commands.SubmitJob{JobID: "job-resumed", Owner: "u1", Type: domain.JobRender, Payload: p})
	if !errors.Is(err, errDiskFailed) {
		t.Fatalf("submit when the append fails: %v, want the store's error", err)
	}
}
