package projections

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are a runner's Prometheus metrics.
type metrics struct {
	position   *prometheus.GaugeVec
	generation *prometheus.GaugeVec
	lagEvents  *prometheus.GaugeVec
	lagSeconds *prometheus.GaugeVec
	skipped    *prometheus.CounterVec
	failures   prometheus.Counter
	batch      prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	perProjection := []string{"projection"}
	m := &metrics{
		position: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "rendertrust_projection_position",
			Help: "Last log position the projection has applied.",
		}, perProjection),
		generation: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "rendertrust_projection_generation",
			Help: "Generation of the projection's tables that queries read.",
		}, perProjection),
		lagEvents: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "rendertrust_projection_lag_events",
			Help: "Events committed to the log that the projection has not applied yet.",
		}, perProjection),
		lagSeconds: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "rendertrust_projection_lag_seconds",
			Help: "While behind the head, the age of the first event of the last applied batch; 0 when caught up.",
		}, perProjection),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rendertrust_projection_skipped_events_total",
			Help: "Events skipped because the domain does not know their type or schema version.",
		}, []string{"projection", "type"}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rendertrust_projection_batch_failures_total",
			Help: "Batches rolled back by an error; they are retried with backoff.",
		}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "rendertrust_projection_batch_seconds",
			Help:    "Time to apply and commit one batch of events.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.position, m.generation, m.lagEvents, m.lagSeconds, m.skipped, m.failures, m.batch} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register projection metrics (one runner per registry): %w", err)
		}
	}
	return m, nil
}
