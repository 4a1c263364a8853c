package audittest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rendertrust/rendertrust/anchor"
	"github.com/rendertrust/rendertrust/projections"
	"github.com/rendertrust/rendertrust/projections/projectiontest"
)

// The benchmark installation: the simulation the projections' benchmark
// uses (10,000 users, 20 nodes, 300 jobs submitted per 15-minute round),
// anchored every benchAnchorEvery entries.
const (
	benchUsers       = 10_000
	benchNodes       = 20
	benchSubmits     = 300
	benchStep        = 15 * time.Minute
	benchSeed        = 42
	benchAnchorEvery = 10_000
	// benchAnchorInterval anchors the tail once the load is done.
	benchAnchorInterval = 2 * time.Second
	// benchSettleTimeout bounds the audit log's catching up after the load.
	benchSettleTimeout = 30 * time.Minute
	// benchFormat names the layout of the cached installation; change it
	// when the fixture changes.
	benchFormat = "audit-v1"
	// completeFile marks a cached installation as fully built.
	completeFile = "complete"
)

// Bench returns a stopped installation of at least events events from
// the simulation, on SQLite, anchored on the dev chain about every 10,000
// entries, with the audit log and every read model caught up. It is built
// once into $TMPDIR/rendertrust-bench and reopened by later runs; building
// 1,000,000 events takes some minutes. Benchmarks only: tests use New.
func Bench(b *testing.B, events int) *Installation {
	b.Helper()
	dir := filepath.Join(os.TempDir(), "rendertrust-bench", fmt.Sprintf("%s-%d-%d", benchFormat, events, benchSeed))
	in := &Installation{Dir: dir}
	if _, err := os.Stat(filepath.Join(dir, completeFile)); err == nil {
		in.openSQLite(b)
		b.Cleanup(func() { in.DB.Close(); in.Store.Close() })
		in.openChain(b)
		in.Proofs = anchor.NewService(in.DB, in.Store, anchor.ServiceConfig{Chain: in.Chain.Client(), Trust: in.Chain.Trust()})
		return in
	}
	if err := os.RemoveAll(dir); err != nil {
		b.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	in.build(b, events)
	if err := os.WriteFile(filepath.Join(dir, completeFile), nil, 0o644); err != nil {
		b.Fatal(err)
	}
	return in
}

// build loads the simulation while the audit log follows and the worker
// anchors, then rebuilds the read models.
func (in *Installation) build(b *testing.B, events int) {
	ctx, cancel := context.WithCancel(context.Background())
	in.cancel = cancel
	in.openSQLite(b)
	b.Cleanup(func() { in.DB.Close(); in.Store.Close() })
	in.startAnchoringEvery(b, ctx, benchAnchorEvery, benchAnchorInterval)
	start := time.Now()
	sim := projectiontest.NewSim(projectiontest.Config{Users: benchUsers, Nodes: benchNodes, Submits: benchSubmits, Seed: benchSeed, Step: benchStep})
	head := in.Load(b, sim, events)
	b.Logf("fixture: appended %d events in %s", head, time.Since(start).Round(time.Second))
	in.settle(b, benchSettleTimeout)
	in.Stop()
	b.Logf("fixture: audit log and anchors caught up after %s", time.Since(start).Round(time.Second))
	res, err := projections.Rebuild(context.Background(), in.DB, in.Store, projections.RebuildOptions{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("fixture: read models rebuilt in %s; built in %s", res.Duration.Round(time.Second), time.Since(start).Round(time.Second))
}
