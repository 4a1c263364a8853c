package commands_test

import (
	"context"
	"errors"
	"testing"

	"github.com/rendertrust/rendertrust/commands"
	"github.com/rendertrust/rendertrust/domain"
)

// TestCommandCachesAcrossServices: two services on one store (two API
// processes), each with its own aggregate caches; every decision is made on
// the stream's latest events, whichever process wrote them:
//
//  1. A submits a render that takes all of u1's credits (A caches the
//     account with nothing available);
//  2. B grants u1 ten credits;
//  3. A's next render is accepted: A read B's grant, not its cached account;
//  4. B cancels the first job; A's cancel of it is refused as not
//     cancellable (A's cached job is still DISPATCHED);
//  5. both see the same balance.
func TestCommandCachesAcrossServices(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		e.mustNode(t, "node-a", 4, false)
		other, err := newService(context.Background(), e.store, e.db, e.clock.Now)
		if err != nil {
			t.Fatal(err)
		}
		follow(t, other, e.head(t))
		if err := other.Heartbeat(ctx, "node-a"); err != nil {
			t.Fatal(err)
		}
		cost := domain.Credits(10) // a render
		e.mustGrant(t, "u1", cost)

		// 1.
		first := e.mustSubmit(t, "u1", domain.JobRender)
		if acc, _ := e.svc.Account(ctx, "u1"); acc.Available() != 0 {
			t.Fatalf("step 1: available %d, want 0", acc.Available())
		}
		// 2.
		if _, err := other.Grant(ctx, admin, "u1", "grant-b", cost, "test"); err != nil {
			t.Fatalf("step 2: %v", err)
		}
		// 3.
		e.mustSubmit(t, "u1", domain.JobRender)
		// 4.
		owner := commands.Actor{ID: "user:u1"}
		if _, err := other.CancelJob(ctx, owner, "u1", first.JobID); err != nil {
			t.Fatalf("step 4: B's cancel: %v", err)
		}
		if _, err := e.svc.CancelJob(ctx, owner, "u1", first.JobID); !errors.Is(err, domain.ErrNotCancellable) {
			t.Fatalf("step 4: A's cancel of a cancelled job: %v, want ErrNotCancellable", err)
		}
		// 5.
		a, _ := e.svc.Account(ctx, "u1")
		bAcc, _ := other.Account(ctx, "u1")
		if a.Version() != bAcc.Version() || a.Available() != bAcc.Available() || a.Held() != bAcc.Held() {
			t.Fatalf("step 5: A sees version %d available %d held %d; B version %d available %d held %d",
				a.Version(), a.Available(), a.Held(), bAcc.Version(), bAcc.Available(), bAcc.Held())
		}
	})
}
