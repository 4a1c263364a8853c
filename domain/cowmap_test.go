package domain

import (
	"fmt"
	"reflect"
	"testing"
	"time"
)

// sameAccount reports whether a and b hold the same state, however their
// holds are split between shared base and overlay.
func sameAccount(a, b *Account) bool {
	x, y := *a, *b
	x.holds, y.holds = cowMap[JobID, JobHold]{overlay: a.holds.flat()}, cowMap[JobID, JobHold]{overlay: b.holds.flat()}
	return reflect.DeepEqual(x, y)
}

// TestAccountSnapshotsIndependent: 1. an account with many holds is copied
// through Snapshot after every event, as the command cache does, each copy
// changing holds (new, deducted, released, refunded); 2. every copy kept
// along the way still holds exactly the holds it had when taken; 3. the
// last copy equals a replay of the whole history.
func TestAccountSnapshotsIndependent(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	a := NewAccount("u")
	var history []Event
	must := func(evs []Event, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			a.Apply(e)
			a = a.Snapshot()
		}
		history = append(history, evs...)
	}
	must(a.Grant("g", 1_000_000, "test", now))
	type frozen struct {
		acc  *Account
		want map[JobID]JobHold
	}
	var copies []frozen
	for i := range 2_000 {
		job := JobID(fmt.Sprint("job-", i))
		must(a.Hold(job, 10, now))
		switch i % 4 {
		case 1:
			must(a.Deduct(JobID(fmt.Sprint("job-", i-1)), now))
		case 2:
			must(a.Release(job, "test", now))
		case 3:
			must(a.Refund(JobID(fmt.Sprint("job-", i-3)), 4, fmt.Sprint("r-", i), "test", now))
		}
		if i%97 == 0 {
			copies = append(copies, frozen{a.Snapshot(), a.holds.flat()})
		}
	}
	for n, c := range copies {
		if got := c.acc.holds.flat(); !reflect.DeepEqual(got, c.want) {
			t.Fatalf("step 2: copy %d has %d holds, want the %d it had", n, len(got), len(c.want))
		}
	}
	replayed := NewAccount("u")
	for _, e := range history {
		replayed.Apply(e)
	}
	if !sameAccount(a, replayed) {
		t.Fatal("step 3: the copied account differs from a replay of its history")
	}
	if h, _ := a.JobHold("job-0"); h.State != HoldStateDeducted || h.Refunded != 4 {
		t.Fatalf("step 3: job-0 hold %+v, want deducted with 4 refunded", h)
	}
}
