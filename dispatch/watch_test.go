package dispatch

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/eventstore"
	"github.com/rendertrust/rendertrust/eventstore/sqlite"
)

// TestWatch: 1. a node enrolled through the watched store is known to the
// registry when the append returns; 2. a job submitted and dispatched in
// one append is assigned to it, and long-polling nodes are woken, before
// the append returns; 3. a duplicate re-append changes nothing; 4. the next
// event of the job (its stream version 3) is observed as such: the job runs.
func TestWatch(t *testing.T) {
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	now := func() time.Time { return registryEpoch }
	d := New(now, 0, nil)
	w := d.Watch(store)
	appendEvents := func(stream string, version uint64, ids []string, events ...domain.Event) eventstore.AppendResult {
		t.Helper()
		data := make([]eventstore.EventData, len(events))
		for i, e := range events {
			b, err := domain.EncodeEvent(e)
			if err != nil {
				t.Fatal(err)
			}
			data[i] = eventstore.EventData{ID: ids[i], Type: e.EventType(), SchemaVersion: domain.SchemaVersion, Data: b}
		}
		res, err := w.Append(ctx, stream, eventstore.Exact(version), data...)
		if err != nil {
			t.Fatalf("append to %s: %v", stream, err)
		}
		return res
	}

	appendEvents(domain.NodeStream("node-a"), 0, []string{eventstore.NewEventID()},
		domain.NodeEnrolled{NodeID: "node-a", JobTypes: domain.JobTypes(), Slots: 1, At: registryEpoch})
	d.Registry().Heartbeat("node-a", registryEpoch)
	if !d.Registry().HealthyFor(domain.JobRender, false, registryEpoch) {
		t.Fatal("step 1: the enrolled node is unknown to the registry")
	}

	woken := d.Registry().Changed()
	ids := []string{eventstore.NewEventID(), eventstore.NewEventID()}
	job := submitted(1, domain.JobRender, domain.PriorityNormal, false)
	dispatched := domain.JobDispatched{JobID: job.JobID, NodeID: "node-a", At: registryEpoch}
	appendEvents(domain.JobStream(job.JobID), 0, ids, job, dispatched)
	if got := d.Registry().JobNode(job.JobID); got != "node-a" {
		t.Fatalf("step 2: job node %q; want node-a", got)
	}
	select {
	case <-woken:
	default:
		t.Fatal("step 2: long-polling nodes not woken by the dispatch")
	}

	if res := appendEvents(domain.JobStream(job.JobID), 0, ids, job, dispatched); !res.Duplicate {
		t.Fatalf("step 3: re-append %+v; want a duplicate", res)
	}
	if got := d.Registry().Assigned("node-a"); !slices.Equal(got, []domain.JobID{job.JobID}) {
		t.Fatalf("step 3: assigned %v; want [%s]", got, job.JobID)
	}

	appendEvents(domain.JobStream(job.JobID), 2, []string{eventstore.NewEventID()},
		domain.JobStarted{JobID: job.JobID, NodeID: "node-a", At: registryEpoch})
	if got := d.Registry().Assigned("node-a"); len(got) != 0 {
		t.Fatalf("step 4: assigned and not started %v; want none (the job runs)", got)
	}
	if got := d.Registry().JobNode(job.JobID); got != "node-a" {
		t.Fatalf("step 4: job node %q; want node-a", got)
	}
}
