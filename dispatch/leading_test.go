package dispatch

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rendertrust/rendertrust/domain"
)

// recordingWriter records the dispatches a pass makes.
type recordingWriter struct{ dispatched []domain.JobID }

func (w *recordingWriter) Dispatch(_ context.Context, job domain.JobID, _ domain.NodeID) (uint64, error) {
	w.dispatched = append(w.dispatched, job)
	return uint64(len(w.dispatched)), nil
}
func (w *recordingWriter) FailLostJob(context.Context, domain.NodeID, domain.JobID, string) (uint64, error) {
	return 0, nil
}
func (w *recordingWriter) TimeOutJob(context.Context, domain.JobID) (uint64, error) { return 0, nil }

var _ Writer = (*recordingWriter)(nil)

// TestNotLeadingReservesNothing: a process that does not lead the
// dispatcher role (an api-only process) reserves no slot at submission and
// dispatches nothing in a pass, though its registry knows the node and the
// waiting job; once it leads, the same pass dispatches.
func TestNotLeadingReservesNothing(t *testing.T) {
	now := registryEpoch
	d := New(func() time.Time { return now }, 0, nil)
	d.Observe(domain.NodeEnrolled{NodeID: "node-a", JobTypes: domain.JobTypes(), Slots: 1, At: now}, 1, 1)
	d.Registry().Heard("node-a", now)
	d.SetLeading(false)

	sub := domain.Submission{Owner: "u1", Type: domain.JobEcho, Priority: domain.PriorityNormal}
	if node, ok := d.ReserveNew("job-new", sub, now); ok {
		t.Fatalf("not leading: ReserveNew reserved a slot on %s", node)
	}
	d.Observe(submitted(1, domain.JobEcho, domain.PriorityNormal, false), 1, 2)
	w := &recordingWriter{}
	if _, err := d.DispatchWaiting(context.Background(), w); err != nil || len(w.dispatched) != 0 {
		t.Fatalf("not leading: pass dispatched %v, %v", w.dispatched, err)
	}
	if !d.Registry().HealthyFor(domain.JobEcho, false, now) {
		t.Fatal("not leading: the registry should still know the node is healthy")
	}

	d.SetLeading(true)
	if _, err := d.DispatchWaiting(context.Background(), w); err != nil || len(w.dispatched) != 1 {
		t.Fatalf("leading: pass dispatched %v, %v; want the waiting job", w.dispatched, err)
	}
}

// TestHeardKeepsTheLatest: heartbeats shared by other processes arrive out
// of order; an older one never makes a node look more silent.
func TestHeardKeepsTheLatest(t *testing.T) {
	r := NewRegistry(registryEpoch)
	r.Heard("node-a", registryEpoch.Add(5*time.Second))
	r.Heard("node-a", registryEpoch.Add(2*time.Second))
	if seen, _ := r.NodeStatus("node-a"); !seen.Equal(registryEpoch.Add(5 * time.Second)) {
		t.Fatalf("last seen %v, want the later heartbeat", seen)
	}
}

// TestFenceRefusedGivesSlotsBack: a pass whose fence refuses it (the term
// ended) dispatches nothing and gives its slots back; the next pass behind
// a fence that lets it through dispatches the same job.
func TestFenceRefusedGivesSlotsBack(t *testing.T) {
	now := registryEpoch
	d := New(func() time.Time { return now }, 0, nil)
	d.Observe(domain.NodeEnrolled{NodeID: "node-a", JobTypes: domain.JobTypes(), Slots: 1, At: now}, 1, 1)
	d.Registry().Heard("node-a", now)
	d.Observe(submitted(1, domain.JobEcho, domain.PriorityNormal, false), 1, 2)
	deposed := errors.New("deposed")
	d.SetFence(func(context.Context, func() error) error { return deposed })
	w := &recordingWriter{}
	if _, err := d.DispatchWaiting(context.Background(), w); err != nil || len(w.dispatched) != 0 {
		t.Fatalf("refused pass: dispatched %v, %v; want nothing, no error", w.dispatched, err)
	}
	if _, load := d.Registry().NodeStatus("node-a"); load != 0 || d.Registry().WaitingCount() != 1 {
		t.Fatalf("refused pass kept its slot: load %d, waiting %d", load, d.Registry().WaitingCount())
	}
	var fenced int
	d.SetFence(func(_ context.Context, effect func() error) error { fenced++; return effect() })
	if _, err := d.DispatchWaiting(context.Background(), w); err != nil || len(w.dispatched) != 1 || fenced != 1 {
		t.Fatalf("fenced pass: dispatched %v (fence ran %d times), %v; want the job", w.dispatched, fenced, err)
	}
	if _, err := d.DispatchWaiting(context.Background(), w); err != nil || fenced != 1 {
		t.Fatalf("a pass with nothing to dispatch ran the fence (%d times), %v", fenced, err)
	}
}

// TestFencedLeaderReservesNothingAtSubmission: a leader behind a fence
// (one of several processes) reserves no slot for a submission, whose
// append the fence does not cover; the pass that follows it dispatches the
// job behind the fence, and a refusing fence (the term ended) lets no
// dispatch through at all.
func TestFencedLeaderReservesNothingAtSubmission(t *testing.T) {
	now := registryEpoch
	d := New(func() time.Time { return now }, 0, nil)
	d.Observe(domain.NodeEnrolled{NodeID: "node-a", JobTypes: domain.JobTypes(), Slots: 1, At: now}, 1, 1)
	d.Registry().Heard("node-a", now)
	sub := domain.Submission{Owner: "u1", Type: domain.JobEcho, Priority: domain.PriorityNormal}
	deposed := errors.New("deposed")
	d.SetFence(func(context.Context, func() error) error { return deposed })
	if node, ok := d.ReserveNew("job-new", sub, now); ok {
		t.Fatalf("behind a fence: ReserveNew reserved a slot on %s", node)
	}
	job := submitted(1, domain.JobEcho, domain.PriorityNormal, false)
	d.Observe(job, 1, 2)
	w := &recordingWriter{}
	if _, err := d.DispatchWaiting(context.Background(), w); err != nil || len(w.dispatched) != 0 {
		t.Fatalf("refusing fence: dispatched %v, %v", w.dispatched, err)
	}
	var fenced int
	d.SetFence(func(_ context.Context, effect func() error) error { fenced++; return effect() })
	if _, err := d.DispatchWaiting(context.Background(), w); err != nil || len(w.dispatched) != 1 || w.dispatched[0] != job.JobID || fenced != 1 {
		t.Fatalf("fence letting through: dispatched %v (fence ran %d times), %v; want %s behind it", w.dispatched, fenced, err, job.JobID)
	}
	d.SetFence(nil)
	d.Observe(domain.NodeCapabilitiesChanged{NodeID: "node-a", JobTypes: domain.JobTypes(), Slots: 2, At: now}, 2, 3)
	if _, ok := d.ReserveNew("job-other", sub, now); !ok {
		t.Fatal("one process, no fence: ReserveNew declined a free slot")
	}
}
