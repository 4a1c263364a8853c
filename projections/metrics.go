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
	// sanitized counts events applied with control characters replaced.
	sanitized *prometheus.CounterVec
	// failing is 1 while a projection's last batch failed.
	failing *prometheus.GaugeVec
	// projectionFailures counts the batches each projection failed.
	projectionFailures *prometheus.CounterVec
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
		sanitized: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rendertrust_projection_sanitized_events_total",
			Help: "Events applied with their control characters replaced by spaces (the log keeps them as written).",
		}, []string{"type"}),
		failing: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "rendertrust_projection_failing",
			Help: "1 while the projection's last batch failed; the others go on, it is retried with backoff.",
		}, perProjection),
		projectionFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rendertrust_projection_failures_total",
			Help: "Batches one projection failed to apply (rolled back for it alone).",
		}, perProjection),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "rendertrust_projection_batch_seconds",
			Help:    "Time to apply and commit one batch of events.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.position, m.generation, m.lagEvents, m.lagSeconds, m.skipped, m.failures, m.batch, m.sanitized, m.failing, m.projectionFailures} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register projection metrics (one runner per registry): %w", err)
		}
	}
	return m, nil
}
