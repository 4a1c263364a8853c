package check_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rendertrust/rendertrust/audit/audittest"
	"github.com/rendertrust/rendertrust/audit/check"
)

// benchEvents is the size of the benchmarks' log.
const benchEvents = 1_000_000

// BenchmarkCheck runs the whole check over an installation of 1,000,000
// events anchored every 10,000 (audittest.Bench: built once, some minutes,
// cached in $TMPDIR/rendertrust-bench), against the dev chain. It runs only
// under -bench:
//
//	go test -run '^$' -bench Check -benchtime 1x -timeout 60m ./audit/check/
//
// It reports events/s over the whole check and the seconds of each phase.
func BenchmarkCheck(b *testing.B) {
	in := audittest.Bench(b, benchEvents)
	head, err := in.Store.Head(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	cfg := check.Config{Store: in.Store, DB: in.DB, Chain: in.Chain.Client(), TempDir: b.TempDir()}
	phases := map[string]time.Duration{}
	start := time.Now()
	for b.Loop() {
		r, err := check.Run(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		if !r.OK() || r.Events != head || r.AnchorsChecked == 0 {
			b.Fatalf("check of the benchmark installation: %d events of %d, %d anchors, findings %v", r.Events, head, r.AnchorsChecked, r.Findings)
		}
		for _, p := range r.Phases {
			phases[p.Name] += p.Duration
		}
		b.Logf("%d events, %d anchors, %d tree nodes, %d money events, projections %+v", r.Events, r.AnchorsChecked, r.TreeNodes, r.MoneyEvents, r.Projections)
	}
	n := float64(b.N)
	b.ReportMetric(float64(head)*n/time.Since(start).Seconds(), "events/s")
	for name, d := range phases {
		b.ReportMetric(d.Seconds()/n, "s-"+strings.Fields(name)[0])
	}
}
