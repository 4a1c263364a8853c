package commands_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/rendertrust/rendertrust/commands"
	"github.com/rendertrust/rendertrust/domain"
)

// hotAccountSubmissions is how many submissions race on one account: a
// render farm submitting frames.
const hotAccountSubmissions = 256

// TestHotAccount: 1. one creator submits 256 paid jobs at once to a node
// with one slot, so almost all of them queue; 2. every submission is
// accepted (contention on one account is never an error); 3. the account
// holds exactly the accepted jobs' costs.
func TestHotAccount(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		e.mustNode(t, "node-a", 1, false)
		e.mustGrant(t, "u1", 10_000)
		errs := submitConcurrently(e.svc, "u1", hotAccountSubmissions)
		for _, err := range errs {
			t.Errorf("step 2: submit: %v", err)
		}
		acc, err := e.svc.Account(ctx, "u1")
		if err != nil {
			t.Fatal(err)
		}
		if want := domain.Credits(hotAccountSubmissions); acc.Held() != want || acc.Available() != 10_000-want {
			t.Fatalf("step 3: held %d available %d, want %d and %d", acc.Held(), acc.Available(), want, 10_000-want)
		}
	})
}

// TestHotAccountAcrossServices: two services on one store (two API
// processes) submit for one creator at the same time; contention between
// them is retried, never an error, and the balance never goes below zero.
func TestHotAccountAcrossServices(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		e.mustNode(t, "node-a", 1, false)
		other, err := newService(context.Background(), e.store, e.db, e.clock.Now)
		if err != nil {
			t.Fatal(err)
		}
		follow(t, other, e.head(t)) // the other process learns of the node from the log
		if err := other.Heartbeat(ctx, "node-a"); err != nil {
			t.Fatal(err)
		}
		const perService = 64
		e.mustGrant(t, "u1", 2*perService)
		var wg sync.WaitGroup
		var errs [2][]error
		for i, svc := range []*commands.Service{e.svc, other} {
			wg.Add(1)
			go func() { defer wg.Done(); errs[i] = submitConcurrently(svc, "u1", perService) }()
		}
		wg.Wait()
		for _, es := range errs {
			for _, err := range es {
				t.Errorf("submit: %v", err)
			}
		}
		acc, err := e.svc.Account(ctx, "u1")
		if err != nil {
			t.Fatal(err)
		}
		if acc.Held() != 2*perService || acc.Available() != 0 {
			t.Fatalf("held %d available %d, want %d and 0", acc.Held(), acc.Available(), 2*perService)
		}
	})
}

// submitConcurrently submits n cpu_benchmark jobs for user at once and
// returns the errors.
func submitConcurrently(svc *commands.Service, user domain.UserID, n int) []error {
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			p, _ := domain.PayloadURI("s3://farm/frame.blend")
			_, err := svc.SubmitJob(ctx, commands.Actor{ID: "user:" + string(user)}, commands.SubmitJob{Owner: user, Type: domain.JobCPUBenchmark, Payload: p})
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	close(start)
	wg.Wait()
	return errs
}

// follow runs a reactor of svc until it has read the log up to position.
func follow(tb testing.TB, svc *commands.Service, position uint64) {
	tb.Helper()
	r := commands.NewReactor(svc, time.Minute)
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); r.Run(rctx) }()
	defer func() { cancel(); <-done }()
	wctx, stop := context.WithTimeout(ctx, 20*time.Second)
	defer stop()
	if err := r.WaitFor(wctx, position); err != nil {
		tb.Fatalf("reactor stuck at %d of %d: %v", r.Position(), position, err)
	}
}
