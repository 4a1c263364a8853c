package domain

import (
	"errors"
	"testing"
	"time"
)

// TestSubmissionScenario follows one creator's money and jobs across the
// account and job aggregates, as the command handlers and the settling
// reactor will:
//  1. buy 100 credits through the dev provider;
//  2. submit a render job: price it, validate, hold 10, then submit;
//  3. the job completes, and its settlement deducts the hold;
//  4. a second job is cancelled, and its settlement releases the hold;
//  5. a support refund gives 4 credits of the first job back;
//  6. a job costing more than is available is refused before anything is held.
func TestSubmissionScenario(t *testing.T) {
	a := NewAccount("u")
	now := t0
	pkg, err := LookupPackage("credits_100")
	if err != nil {
		t.Fatal(err)
	}
	ev, err := a.Purchase(pkg.Purchase("p1", ProviderDev, "cs_1"), now)
	mustDecide(t, a, ev, err)

	submit := func(id JobID, typ JobType) *Job {
		t.Helper()
		cost, err := DefaultPrices().Cost(typ)
		if err != nil {
			t.Fatal(err)
		}
		s := Submission{Owner: a.User(), Type: typ, Payload: Payload{URI: "ipfs://bafy/x"}, Cost: cost}
		if err := s.Validate(); err != nil {
			t.Fatal(err)
		}
		ev, err := a.Hold(id, cost, now)
		mustDecide(t, a, ev, err)
		j := NewJob(id)
		ev, err = j.Submit(s, now)
		mustDecide(t, j, ev, err)
		return j
	}
	settle := func(e Event) {
		t.Helper()
		s, ok := SettlementOf(e)
		if !ok || s.Owner != a.User() {
			t.Fatalf("SettlementOf(%s) = %+v, %v", e.EventType(), s, ok)
		}
		var ev []Event
		if s.Action == SettleDeduct {
			ev, err = a.Deduct(s.Job, now)
		} else {
			ev, err = a.Release(s.Job, s.Reason, now)
		}
		mustDecide(t, a, ev, err)
	}

	j1 := submit("j1", JobRender)
	for _, decide := range []func() ([]Event, error){
		func() ([]Event, error) { return j1.Dispatch("n1", now) },
		func() ([]Event, error) { return j1.Start("n1", now) },
		func() ([]Event, error) { return j1.Complete("n1", sha, 10, now) },
	} {
		ev, err := decide()
		mustDecide(t, j1, ev, err)
		now = now.Add(time.Second)
	}
	settle(JobCompleted{JobID: "j1", Owner: "u"})

	j2 := submit("j2", JobInference)
	ev, err = j2.Cancel("not needed", now)
	settle(mustDecide(t, j2, ev, err)[0])

	ev, err = a.Refund("j1", 4, "re_1", "support", now)
	mustDecide(t, a, ev, err)

	if got := [...]Credits{a.Balance(), a.Available(), a.Held()}; got != [...]Credits{94, 94, 0} {
		t.Errorf("balance, available, held = %v, want [94 94 0]", got)
	}
	ev, err = a.Hold("j3", a.Available()+1, now)
	if !errors.Is(err, ErrInsufficientCredits) || ErrorCode(err) != CodeInsufficientCredits || len(ev) != 0 {
		t.Errorf("step 6: err = %v, want ErrInsufficientCredits", err)
	}
}
