package domain

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// accountModel tracks, from the emitted events alone, what the account
// invariants are about: ledger balances per account and per-job charges.
type accountModel struct {
	ledger   map[AccountRef]Credits
	charges  map[JobID]int
	charged  map[JobID]Credits
	refunded map[JobID]Credits
}

// randomAccountOp returns one random account command at step k. Ids come
// from pools that grow slowly with k, so that fresh ids keep coming while
// repeats, conflicts and races between commands stay common. Purchases are
// rare and holds frequent, so available credits often run out.
func randomAccountOp(r *rand.Rand, a *Account, k int, now time.Time) (string, []Event, error) {
	id := func(prefix string, per int) string {
		return fmt.Sprintf("%s%d", prefix, r.IntN(k/per+3))
	}
	job := JobID(id("j", 4))
	switch n := r.IntN(20); {
	case n < 1:
		pkgs := Packages()
		pid := id("p", 40)
		p := pkgs[r.IntN(len(pkgs))].Purchase(pid, []Provider{ProviderStripe, ProviderDev}[r.IntN(2)], "cs_"+pid)
		ev, err := a.Purchase(p, now)
		return "purchase " + pid, ev, err
	case n < 3:
		gid := id("g", 20)
		ev, err := a.Grant(gid, Credits(r.IntN(30)), "promo", now)
		return "grant " + gid, ev, err
	case n < 10:
		ev, err := a.Hold(job, Credits(r.IntN(40)), now)
		return "hold " + string(job), ev, err
	case n < 14:
		ev, err := a.Deduct(job, now)
		return "deduct " + string(job), ev, err
	case n < 17:
		ev, err := a.Release(job, "failed", now)
		return "release " + string(job), ev, err
	default:
		rid := id("r", 8)
		ev, err := a.Refund(job, Credits(r.IntN(8)), rid, "dispute", now)
		return "refund " + rid, ev, err
	}
}

// checkAccountEvent checks one emitted event and folds it into the model.
func checkAccountEvent(tb testing.TB, m *accountModel, e Event) {
	tb.Helper()
	ps := PostingsOf(e)
	if err := Balanced(ps); err != nil {
		tb.Fatalf("%s postings %v: %v", e.EventType(), ps, err)
	}
	for acct, n := range NetBalances(ps) {
		m.ledger[acct] += n
	}
	switch e := e.(type) {
	case CreditsDeducted:
		m.charges[e.JobID]++
		m.charged[e.JobID] += e.Amount
		if m.charges[e.JobID] > 1 {
			tb.Fatalf("job %s charged %d times", e.JobID, m.charges[e.JobID])
		}
	case CreditsRefunded:
		m.refunded[e.JobID] += e.Amount
		if m.refunded[e.JobID] > m.charged[e.JobID] {
			tb.Fatalf("job %s refunded %d of a %d charge", e.JobID, m.refunded[e.JobID], m.charged[e.JobID])
		}
	}
}

// checkAccountState checks the account invariants against the model.
func checkAccountState(tb testing.TB, a *Account, m *accountModel) {
	tb.Helper()
	if a.Available() < 0 || a.Held() < 0 {
		tb.Fatalf("available %d, held %d: must not be negative", a.Available(), a.Held())
	}
	if want := a.Purchased() + a.Granted() + a.Refunded() - a.Deducted(); a.Balance() != want {
		tb.Fatalf("balance %d, want purchases+grants+refunds-deductions = %d", a.Balance(), want)
	}
	if got := m.ledger[UserAccount(a.User())]; got != a.Available() {
		tb.Fatalf("ledger user:%s = %d, want available %d", a.User(), got, a.Available())
	}
	if got := m.ledger[UserHeldAccount(a.User())]; got != a.Held() {
		tb.Fatalf("ledger held = %d, want held %d", got, a.Held())
	}
	var open Credits
	a.holds.all(func(job JobID, h JobHold) {
		if h.State == HoldStateOpen {
			open += h.Amount
		}
		if h.Refunded > h.Deducted() || m.charged[job] != h.Deducted() {
			tb.Fatalf("job %s: %+v, model charged %d", job, h, m.charged[job])
		}
	})
	if open != a.Held() {
		tb.Fatalf("open holds sum to %d, Held() = %d", open, a.Held())
	}
}

// TestAccountProperties runs random command histories against an account and
// checks after every step that postings balance, available never goes below
// zero, the balance formula holds, no job is charged twice and refunds never
// exceed the charge; at the end, rebuilding from the (encoded and decoded)
// events gives an equal account.
func TestAccountProperties(t *testing.T) {
	seeds, steps := uint64(200), 300
	if testing.Short() {
		seeds = 20
	}
	for seed := range seeds {
		r := rand.New(rand.NewPCG(seed, 0x5eed))
		a := NewAccount("u")
		m := &accountModel{map[AccountRef]Credits{}, map[JobID]int{}, map[JobID]Credits{}, map[JobID]Credits{}}
		var history []Event
		now := t0
		for step := range steps {
			now = now.Add(time.Duration(r.IntN(5000)) * time.Millisecond)
			before := a.Snapshot()
			op, events, err := randomAccountOp(r, a, step, now)
			if err != nil {
				var appErr *Error
				if !errors.As(err, &appErr) || appErr.Code == CodeInternal || len(events) != 0 {
					t.Fatalf("seed %d step %d %s: err %v with %d events", seed, step, op, err, len(events))
				}
			}
			for _, e := range events {
				checkAccountEvent(t, m, e)
				a.Apply(e)
			}
			history = append(history, events...)
			if err != nil && !sameAccount(a, before) {
				t.Fatalf("seed %d step %d %s: failed command changed the account", seed, step, op)
			}
			checkAccountState(t, a, m)
		}
		mustRoundTrip(t, history)
		if got := loadAccount("u", history); !sameAccount(got, a) {
			t.Fatalf("seed %d: rebuilt account differs from live account", seed)
		}
		if a.Version() != uint64(len(history)) {
			t.Fatalf("seed %d: version %d, want %d", seed, a.Version(), len(history))
		}
	}
}
