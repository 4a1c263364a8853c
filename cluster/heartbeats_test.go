package cluster_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/rendertrust/rendertrust/cluster"
	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/internal/pgtest"
	"github.com/rendertrust/rendertrust/internal/sqldb"
)

// heardLog keeps the last time Heartbeats reported for each node: what the
// table held at the last read.
type heardLog struct {
	mu   sync.Mutex
	last map[domain.NodeID]time.Time
}

func (h *heardLog) heard(node domain.NodeID, at time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.last[node] = at
}

func (h *heardLog) get(node domain.NodeID) time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last[node]
}

func newHeartbeats(t *testing.T, dsn string) (*cluster.Heartbeats, *heardLog) {
	t.Helper()
	db, err := sqldb.OpenPostgres(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	log := &heardLog{last: map[domain.NodeID]time.Time{}}
	hb, err := cluster.NewHeartbeats(context.Background(), db, log.heard, nil)
	if err != nil {
		t.Fatal(err)
	}
	return hb, log
}

// TestHeartbeatsShared: a heartbeat one process receives reaches another
// at its next Sync; an older heartbeat written later never moves a node's
// time back; two processes writing the same nodes at once both succeed.
func TestHeartbeatsShared(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	api, _ := newHeartbeats(t, dsn)
	leader, heard := newHeartbeats(t, dsn)
	at := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)

	api.Record("node-a", at)
	api.Record("node-a", at.Add(-time.Second)) // older: kept out of the buffer
	if err := api.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := leader.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := heard.get("node-a"); !got.Equal(at) {
		t.Fatalf("the leader heard node-a at %v, want %v", got, at)
	}

	api.Record("node-a", at.Add(-time.Minute)) // a late heartbeat from another path
	leader.Record("node-a", at.Add(time.Second))
	leader.Record("node-b", at)
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, hb := range []*cluster.Heartbeats{api, leader} {
		wg.Go(func() { errs <- hb.Sync(context.Background()) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := leader.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := heard.get("node-a"); !got.Equal(at.Add(time.Second)) {
		t.Fatalf("node-a last heard %v, want %v (the older write must not win)", got, at.Add(time.Second))
	}
	if got := heard.get("node-b"); !got.Equal(at) {
		t.Fatalf("node-b last heard %v, want %v", got, at)
	}
}
