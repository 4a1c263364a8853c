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
	store := openWatchStore(t)
	now := func() time.Time { return registryEpoch }
	d := New(now, 0, nil)
	w := d.Watch(store)
	appendEvents := func(stream string, version uint64, ids []string, events ...domain.Event) eventstore.AppendResult {
		t.Helper()
		data := make([]eventstore.EventData, len(events))
		for i, e := range events {
			data[i] = encodeEvent(t, e, ids[i])
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

// hideMulti is a store without AppendMulti (as EventStoreDB's).
type hideMulti struct{ eventstore.Store }

// TestWatchMulti: 1. a store with an atomic multi-stream append is watched
// as one, one without as one without (the write side then takes its
// per-stream path); 2. a job part of an AppendMulti (the submission's hold
// and job in one commit) is observed before it returns: the job is
// assigned; 3. a duplicate AppendMulti changes nothing.
func TestWatchMulti(t *testing.T) {
	ctx := context.Background()
	store := openWatchStore(t)
	d := New(func() time.Time { return registryEpoch }, 0, nil)
	if _, ok := d.Watch(hideMulti{store}).(eventstore.MultiAppender); ok {
		t.Fatal("step 1: a store without AppendMulti watched as one with it")
	}
	w, ok := d.Watch(store).(eventstore.MultiAppender)
	if !ok {
		t.Fatal("step 1: the SQLite store's AppendMulti hidden by the watch")
	}
	encode := func(e domain.Event, id string) eventstore.EventData { return encodeEvent(t, e, id) }
	enrolled := domain.NodeEnrolled{NodeID: "node-a", JobTypes: domain.JobTypes(), Slots: 1, At: registryEpoch}
	if _, err := d.Watch(store).Append(ctx, domain.NodeStream("node-a"), eventstore.NoStream, encode(enrolled, eventstore.NewEventID())); err != nil {
		t.Fatal(err)
	}
	d.Registry().Heartbeat("node-a", registryEpoch)

	job := submitted(1, domain.JobRender, domain.PriorityNormal, false)
	a := domain.NewAccount("u1")
	grant, err := a.Grant("g1", 10, "welcome", registryEpoch)
	if err != nil {
		t.Fatal(err)
	}
	parts := []eventstore.StreamAppend{
		{Stream: domain.AccountStream("u1"), Expected: eventstore.NoStream, Events: []eventstore.EventData{encode(grant[0], eventstore.NewEventID())}},
		{Stream: domain.JobStream(job.JobID), Expected: eventstore.NoStream, Events: []eventstore.EventData{
			encode(job, eventstore.NewEventID()), encode(domain.JobDispatched{JobID: job.JobID, NodeID: "node-a", At: registryEpoch}, eventstore.NewEventID())}},
	}
	if _, err := w.AppendMulti(ctx, parts...); err != nil {
		t.Fatal(err)
	}
	if got := d.Registry().JobNode(job.JobID); got != "node-a" {
		t.Fatalf("step 2: job node %q after AppendMulti; want node-a", got)
	}
	res, err := w.AppendMulti(ctx, parts...)
	if err != nil || !res[1].Duplicate {
		t.Fatalf("step 3: re-append %+v, %v; want a duplicate", res, err)
	}
	if got := d.Registry().Assigned("node-a"); !slices.Equal(got, []domain.JobID{job.JobID}) {
		t.Fatalf("step 3: assigned %v; want [%s]", got, job.JobID)
	}
}

// TestFollowAssignmentsOnly: a dispatcher that follows assignments only
// 1. does not observe its own process's appends (the log's order alone
// builds its registry); 2. keeps no waiting job when the log's submission
// is observed; 3. keeps a job from its dispatch on, waking long polls; 4.
// forgets it once ended and pruned.
func TestFollowAssignmentsOnly(t *testing.T) {
	ctx := context.Background()
	store := openWatchStore(t)
	d := New(func() time.Time { return registryEpoch }, 0, nil)
	d.FollowAssignmentsOnly()
	if d.Leading() {
		t.Fatal("a dispatcher following assignments only leads")
	}
	reg := d.Registry()
	job := submitted(1, domain.JobRender, domain.PriorityNormal, false)
	dispatched := domain.JobDispatched{JobID: job.JobID, NodeID: "node-a", At: registryEpoch}

	// 1.
	data := []eventstore.EventData{encodeEvent(t, job, eventstore.NewEventID()), encodeEvent(t, dispatched, eventstore.NewEventID())}
	if _, err := d.Watch(store).Append(ctx, domain.JobStream(job.JobID), eventstore.NoStream, data...); err != nil {
		t.Fatal(err)
	}
	if got := reg.JobNode(job.JobID); got != "" {
		t.Fatalf("step 1: own append observed: job on %q", got)
	}

	// 2.
	reg.Observe(job, 1, 1)
	if n := reg.WaitingCount(); n != 0 {
		t.Fatalf("step 2: %d waiting jobs, want none", n)
	}

	// 3.
	woken := reg.Changed()
	reg.Observe(dispatched, 2, 2)
	if got := reg.Assigned("node-a"); !slices.Equal(got, []domain.JobID{job.JobID}) {
		t.Fatalf("step 3: assigned %v, want [%s]", got, job.JobID)
	}
	select {
	case <-woken:
	default:
		t.Fatal("step 3: long polls not woken by the dispatch")
	}
	reg.Observe(domain.JobStarted{JobID: job.JobID, NodeID: "node-a", At: registryEpoch}, 3, 3)
	if got := reg.JobsOf("node-a"); !slices.Equal(got, []domain.JobID{job.JobID}) {
		t.Fatalf("step 3: running %v, want [%s]", got, job.JobID)
	}

	// 4.
	reg.Observe(domain.JobCompleted{JobID: job.JobID, NodeID: "node-a", At: registryEpoch}, 4, 4)
	reg.Prune(4)
	if got := reg.JobsOf("node-a"); len(got) != 0 || reg.JobNode(job.JobID) != "" {
		t.Fatalf("step 4: the completed job still on the node: %v", got)
	}
	reg.mu.Lock()
	defer reg.mu.Unlock()
	if len(reg.jobs) != 0 {
		t.Fatalf("step 4: %d jobs kept after the prune, want none", len(reg.jobs))
	}
}

// openWatchStore opens a SQLite event store in the test's directory.
func openWatchStore(t *testing.T) eventstore.Store {
	t.Helper()
	store, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}

// encodeEvent is e as the write side appends it, with event id id.
func encodeEvent(t *testing.T, e domain.Event, id string) eventstore.EventData {
	t.Helper()
	b, err := domain.EncodeEvent(e)
	if err != nil {
		t.Fatal(err)
	}
	return eventstore.EventData{ID: id, Type: e.EventType(), SchemaVersion: domain.SchemaVersion, Data: b}
}
