package dispatch

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/rendertrust/rendertrust/domain"
)

var registryEpoch = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// newTestRegistry returns a registry with one healthy node of slots slots
// that runs every job type, without a GPU.
func newTestRegistry(slots int) (*Registry, domain.NodeID) {
	r := NewRegistry(registryEpoch)
	r.Observe(domain.NodeEnrolled{NodeID: "node-a", JobTypes: domain.JobTypes(), Slots: slots, At: registryEpoch}, 1, 1)
	r.Heartbeat("node-a", registryEpoch)
	return r, "node-a"
}

// submitted makes the event of a job submitted i seconds after the epoch.
func submitted(i int, typ domain.JobType, pr domain.Priority, gpu bool) domain.JobSubmitted {
	return domain.JobSubmitted{JobID: domain.JobID(fmt.Sprintf("job-%06d", i)), Type: typ, Priority: pr, GPU: gpu, At: registryEpoch.Add(time.Duration(i) * time.Second)}
}

// TestReserveNextOrder: over random backlogs, the dispatcher takes waiting
// jobs in exactly the order a full sort gives (priority, age, id), skips the
// classes no node can run, and never takes a job that left the queue.
func TestReserveNextOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	priorities := []domain.Priority{domain.PriorityLow, domain.PriorityNormal, domain.PriorityHigh}
	for round := range 50 {
		r, _ := newTestRegistry(1_000)
		var want []*jobState
		for i := range 1 + rng.IntN(200) {
			e := submitted(rng.IntN(50), domain.JobTypes()[rng.IntN(len(domain.JobTypes()))], priorities[rng.IntN(3)], rng.IntN(4) == 0)
			e.JobID = domain.JobID(fmt.Sprintf("job-%d-%d", round, i))
			r.Observe(e, 1, uint64(i+2))
			j := r.jobs[e.JobID]
			if rng.IntN(5) == 0 { // cancelled while waiting
				r.Observe(domain.JobCancelled{JobID: e.JobID}, 2, uint64(i+2))
				continue
			}
			if !j.gpu { // the node has no GPU: GPU jobs wait on
				want = append(want, j)
			}
		}
		slices.SortFunc(want, func(a, b *jobState) int {
			if goesFirst(a, b) {
				return -1
			}
			return 1
		})
		var got []domain.JobID
		for {
			id, _, ok := r.reserveNext(registryEpoch)
			if !ok {
				break
			}
			got = append(got, id)
		}
		if len(got) != len(want) {
			t.Fatalf("round %d: dispatched %d jobs, want %d", round, len(got), len(want))
		}
		for i := range got {
			if got[i] != want[i].id {
				t.Fatalf("round %d: dispatch %d is %s, want %s", round, i, got[i], want[i].id)
			}
		}
	}
}

// TestPruneForgetsOnlyEnded: Prune forgets the jobs that ended at or
// before the position and keeps every other.
func TestPruneForgetsOnlyEnded(t *testing.T) {
	r, node := newTestRegistry(10)
	for i := range 6 {
		r.Observe(submitted(i, domain.JobEcho, domain.PriorityNormal, false), 1, uint64(10+i))
	}
	r.Observe(domain.JobCancelled{JobID: "job-000001"}, 2, 20)
	r.Observe(domain.JobDispatched{JobID: "job-000002", NodeID: node, Attempt: 1}, 2, 21)
	r.Observe(domain.JobCompleted{JobID: "job-000002", NodeID: node}, 3, 30)
	r.Prune(25)
	if _, ok := r.jobs["job-000001"]; ok {
		t.Error("job-000001 ended at 20 and is still kept after Prune(25)")
	}
	if _, ok := r.jobs["job-000002"]; !ok {
		t.Error("job-000002 ended at 30 and was forgotten by Prune(25)")
	}
	r.Prune(30)
	if len(r.jobs) != 4 || r.ended.Len() != 0 {
		t.Errorf("after Prune(30): %d jobs kept and %d ended pending, want 4 and 0", len(r.jobs), r.ended.Len())
	}
}

// BenchmarkSubmitWithBacklog measures the registry's share of one queued
// submission — observing it, a dispatch pass that finds every slot busy,
// and the reactor's prune — with 0 and 100,000 jobs already waiting: the
// cost must not grow with the backlog.
func BenchmarkSubmitWithBacklog(b *testing.B) {
	for _, backlog := range []int{0, 100_000} {
		b.Run(fmt.Sprintf("waiting=%d", backlog), func(b *testing.B) {
			r, node := newTestRegistry(1)
			r.Observe(submitted(0, domain.JobRender, domain.PriorityNormal, false), 1, 2)
			r.Observe(domain.JobDispatched{JobID: "job-000000", NodeID: node, Attempt: 1}, 2, 3)
			for i := 1; i <= backlog; i++ {
				r.Observe(submitted(i, domain.JobRender, domain.PriorityNormal, false), 1, uint64(3+i))
			}
			b.ResetTimer()
			for i := range b.N {
				pos := uint64(backlog + 4 + i)
				r.Observe(submitted(backlog+1+i, domain.JobRender, domain.PriorityNormal, false), 1, pos)
				if _, _, ok := r.reserveNext(registryEpoch); ok {
					b.Fatal("reserved a slot on a full node")
				}
				r.Prune(pos)
			}
		})
	}
}
