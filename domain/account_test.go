package domain

import (
	"testing"
	"time"
)

// fundedAccount returns an account of user "u" that bought 100 credits and
// holds 10 for job "open", has job "charged" deducted (10) and job "released"
// released (5): balance 90, held 10, available 80.
func fundedAccount(tb testing.TB) *Account {
	tb.Helper()
	a := NewAccount("u")
	pkg, _ := LookupPackage("credits_100")
	steps := []func() ([]Event, error){
		func() ([]Event, error) { return a.Purchase(pkg.Purchase("p1", ProviderStripe, "cs_1"), t0) },
		func() ([]Event, error) { return a.Hold("open", 10, t0) },
		func() ([]Event, error) { return a.Hold("charged", 10, t0) },
		func() ([]Event, error) { return a.Deduct("charged", t0) },
		func() ([]Event, error) { return a.Hold("released", 5, t0) },
		func() ([]Event, error) { return a.Release("released", "cancelled", t0) },
	}
	for _, step := range steps {
		events, err := step()
		mustDecide(tb, a, events, err)
	}
	return a
}

func TestAccountFunded(t *testing.T) {
	a := fundedAccount(t)
	got := [...]Credits{a.Balance(), a.Held(), a.Available(), a.Purchased(), a.Deducted()}
	want := [...]Credits{90, 10, 80, 100, 10}
	if got != want {
		t.Errorf("balance, held, available, purchased, deducted = %v, want %v", got, want)
	}
	if a.Version() != 6 {
		t.Errorf("Version() = %d, want 6", a.Version())
	}
	if h, ok := a.JobHold("charged"); !ok || h.State != HoldStateDeducted || h.Deducted() != 10 {
		t.Errorf("JobHold(charged) = %+v, %v", h, ok)
	}
}

func TestAccountErrors(t *testing.T) {
	pkg, _ := LookupPackage("credits_100")
	buy := func(mod func(*Purchase)) func(a *Account) ([]Event, error) {
		return func(a *Account) ([]Event, error) {
			p := pkg.Purchase("p2", ProviderDev, "cs_2")
			mod(&p)
			return a.Purchase(p, t0)
		}
	}
	tests := []struct {
		name    string
		decide  func(a *Account) ([]Event, error)
		wantErr error
	}{
		{"ErrInsufficientCredits", func(a *Account) ([]Event, error) { return a.Hold("j", 81, t0) }, ErrInsufficientCredits},
		{"ErrHoldExists open", func(a *Account) ([]Event, error) { return a.Hold("open", 1, t0) }, ErrHoldExists},
		{"ErrHoldExists released", func(a *Account) ([]Event, error) { return a.Hold("released", 1, t0) }, ErrHoldExists},
		{"ErrInvalidAmount negative hold", func(a *Account) ([]Event, error) { return a.Hold("j", -1, t0) }, ErrInvalidAmount},
		{"ErrInvalidID job", func(a *Account) ([]Event, error) { return a.Hold("a:b", 1, t0) }, ErrInvalidID},
		{"ErrAlreadyDeducted deduct", func(a *Account) ([]Event, error) { return a.Deduct("charged", t0) }, ErrAlreadyDeducted},
		{"ErrAlreadyDeducted release", func(a *Account) ([]Event, error) { return a.Release("charged", "x", t0) }, ErrAlreadyDeducted},
		{"ErrNoOpenHold deduct released", func(a *Account) ([]Event, error) { return a.Deduct("released", t0) }, ErrNoOpenHold},
		{"ErrNoOpenHold deduct unknown", func(a *Account) ([]Event, error) { return a.Deduct("nope", t0) }, ErrNoOpenHold},
		{"ErrNoOpenHold release twice", func(a *Account) ([]Event, error) { return a.Release("released", "x", t0) }, ErrNoOpenHold},
		{"ErrInvalidReason release", func(a *Account) ([]Event, error) { return a.Release("open", " ", t0) }, ErrInvalidReason},
		{"ErrNotDeducted open", func(a *Account) ([]Event, error) { return a.Refund("open", 1, "r", "x", t0) }, ErrNotDeducted},
		{"ErrNotDeducted released", func(a *Account) ([]Event, error) { return a.Refund("released", 1, "r", "x", t0) }, ErrNotDeducted},
		{"ErrRefundExceedsDeduction", func(a *Account) ([]Event, error) { return a.Refund("charged", 11, "r", "x", t0) }, ErrRefundExceedsDeduction},
		{"ErrInvalidAmount refund", func(a *Account) ([]Event, error) { return a.Refund("charged", 0, "r", "x", t0) }, ErrInvalidAmount},
		{"ErrInvalidReason refund", func(a *Account) ([]Event, error) { return a.Refund("charged", 1, "r", "", t0) }, ErrInvalidReason},
		{"ErrInvalidID refund", func(a *Account) ([]Event, error) { return a.Refund("charged", 1, "", "x", t0) }, ErrInvalidID},
		{"ErrInvalidAmount grant", func(a *Account) ([]Event, error) { return a.Grant("g", 0, "x", t0) }, ErrInvalidAmount},
		{"ErrInvalidAmount grant huge", func(a *Account) ([]Event, error) { return a.Grant("g", creditsMax+1, "x", t0) }, ErrInvalidAmount},
		{"ErrInvalidReason grant", func(a *Account) ([]Event, error) { return a.Grant("g", 1, "", t0) }, ErrInvalidReason},
		{"ErrUnknownPackage", buy(func(p *Purchase) { p.PackageID = "credits_7" }), ErrUnknownPackage},
		{"ErrInvalidPurchase credits", buy(func(p *Purchase) { p.Credits = 101 }), ErrInvalidPurchase},
		{"ErrInvalidPurchase currency", buy(func(p *Purchase) { p.Currency = "eur" }), ErrInvalidPurchase},
		{"ErrInvalidPurchase provider", buy(func(p *Purchase) { p.Provider = "paypal" }), ErrInvalidPurchase},
		{"ErrInvalidPurchase negative price", buy(func(p *Purchase) { p.AmountCents = -1 }), ErrInvalidPurchase},
		{"ErrInvalidPurchase huge price", buy(func(p *Purchase) { p.AmountCents = amountCentsMax + 1 }), ErrInvalidPurchase},
		{"ErrInvalidID purchase", buy(func(p *Purchase) { p.PurchaseID = "" }), ErrInvalidID},
		{"ErrInvalidID session", buy(func(p *Purchase) { p.CheckoutSessionID = "" }), ErrInvalidID},
		{"ErrIdempotencyConflict session", buy(func(p *Purchase) { p.CheckoutSessionID = "cs_1" }), ErrIdempotencyConflict},
		{"ErrIdempotencyConflict purchase", buy(func(p *Purchase) { p.PurchaseID = "p1" }), ErrIdempotencyConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := fundedAccount(t)
			before := a.Snapshot()
			events, err := tt.decide(a)
			wantErr(t, events, err, tt.wantErr)
			if !sameAccount(a, before) {
				t.Errorf("a failed decision changed the account")
			}
		})
	}
}

func TestAccountIdempotency(t *testing.T) {
	pkg, _ := LookupPackage("credits_500")
	tests := []struct {
		name   string
		first  func(a *Account) ([]Event, error)
		repeat func(a *Account) ([]Event, error)
		other  func(a *Account) ([]Event, error)
	}{
		{
			"purchase",
			func(a *Account) ([]Event, error) { return a.Purchase(pkg.Purchase("p9", ProviderStripe, "cs_9"), t0) },
			func(a *Account) ([]Event, error) {
				return a.Purchase(pkg.Purchase("p9", ProviderStripe, "cs_9"), t0.Add(time.Hour))
			},
			func(a *Account) ([]Event, error) { return a.Purchase(pkg.Purchase("p9", ProviderDev, "cs_9"), t0) },
		},
		{
			"grant",
			func(a *Account) ([]Event, error) { return a.Grant("g1", 50, "welcome", t0) },
			func(a *Account) ([]Event, error) { return a.Grant("g1", 50, " welcome ", t0) },
			func(a *Account) ([]Event, error) { return a.Grant("g1", 51, "welcome", t0) },
		},
		{
			"refund",
			func(a *Account) ([]Event, error) { return a.Refund("charged", 4, "r1", "dispute", t0) },
			func(a *Account) ([]Event, error) { return a.Refund("charged", 4, "r1", "dispute", t0) },
			func(a *Account) ([]Event, error) { return a.Refund("charged", 5, "r1", "dispute", t0) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := fundedAccount(t)
			events, err := tt.first(a)
			mustDecide(t, a, events, err)
			if len(events) != 1 {
				t.Fatalf("first: got %d events, want 1", len(events))
			}
			before := a.Snapshot()
			events, err = tt.repeat(a)
			if err != nil || len(events) != 0 {
				t.Errorf("repeat: got %d events, %v; want none, nil", len(events), err)
			}
			events, err = tt.other(a)
			wantErr(t, events, err, ErrIdempotencyConflict)
			if !sameAccount(a, before) {
				t.Errorf("repeats changed the account")
			}
		})
	}
}

func TestAccountZeroCostJob(t *testing.T) {
	a := NewAccount("u")
	events, err := a.Hold("echo1", 0, t0)
	mustDecide(t, a, events, err)
	if ps := PostingsOf(events[0]); len(ps) != 0 {
		t.Errorf("zero hold postings = %v, want none", ps)
	}
	events, err = a.Deduct("echo1", t0)
	mustDecide(t, a, events, err)
	if h, _ := a.JobHold("echo1"); h.State != HoldStateDeducted || a.Balance() != 0 {
		t.Errorf("hold = %+v, balance %d; want deducted, 0", h, a.Balance())
	}
	events, err = a.Refund("echo1", 1, "r", "x", t0)
	wantErr(t, events, err, ErrRefundExceedsDeduction)
}

func TestAccountPostings(t *testing.T) {
	a := NewAccount("u")
	pkg, _ := LookupPackage("credits_100")
	tests := []struct {
		name   string
		decide func() ([]Event, error)
		want   Posting
	}{
		{"dev purchase", func() ([]Event, error) { return a.Purchase(pkg.Purchase("p", ProviderDev, "cs"), t0) },
			Posting{AccountDevProvider, "user:u", 100}},
		{"grant", func() ([]Event, error) { return a.Grant("g", 7, "promo", t0) },
			Posting{AccountPromotions, "user:u", 7}},
		{"hold", func() ([]Event, error) { return a.Hold("j", 10, t0) }, Posting{"user:u", "user:u:held", 10}},
		{"deduct", func() ([]Event, error) { return a.Deduct("j", t0) }, Posting{"user:u:held", AccountRevenue, 10}},
		{"refund", func() ([]Event, error) { return a.Refund("j", 3, "r", "sorry", t0) }, Posting{AccountRevenue, "user:u", 3}},
		{"hold 2", func() ([]Event, error) { return a.Hold("k", 5, t0) }, Posting{"user:u", "user:u:held", 5}},
		{"release", func() ([]Event, error) { return a.Release("k", "failed", t0) }, Posting{"user:u:held", "user:u", 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events, err := tt.decide()
			mustDecide(t, a, events, err)
			got := PostingsOf(events[0])
			if len(got) != 1 || got[0] != tt.want {
				t.Errorf("postings = %v, want [%v]", got, tt.want)
			}
		})
	}
	if a.Balance() != 100 || a.Available() != 100 {
		t.Errorf("balance %d available %d, want 100 100", a.Balance(), a.Available())
	}
}

func TestAccountSnapshotIsIndependent(t *testing.T) {
	a := fundedAccount(t)
	snap := a.Snapshot()
	events, err := a.Deduct("open", t0)
	mustDecide(t, a, events, err)
	if h, _ := snap.JobHold("open"); h.State != HoldStateOpen || snap.Version() != 6 {
		t.Errorf("snapshot changed with the account: hold %+v, version %d", h, snap.Version())
	}
}
