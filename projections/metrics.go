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

// metricPrefix begins every projection metric's name.
const metricPrefix = "rendertrust_projection_"

// newMetrics makes the runner's metrics and registers them with reg (nil
// registers none). It fails when reg already holds them.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	var all []prometheus.Collector
	gauge := func(name, help string) *prometheus.GaugeVec {
		g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: metricPrefix + name, Help: help}, []string{"projection"})
		all = append(all, g)
		return g
	}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricPrefix + name, Help: help}, labels)
		all = append(all, c)
		return c
	}
	m := &metrics{
		position:   gauge("position", "Last log position the projection has applied."),
		generation: gauge("generation", "Generation of the projection's tables that queries read."),
		lagEvents:  gauge("lag_events", "Events committed to the log that the projection has not applied yet."),
		lagSeconds: gauge("lag_seconds", "While behind the head, the age of the first event of the last applied batch; 0 when caught up."),
		skipped: counter("skipped_events_total",
			"Events skipped because the domain does not know their type or schema version.", "projection", "type"),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: metricPrefix + "batch_failures_total",
			Help: "Batches rolled back by an error; they are retried with backoff.",
		}),
		sanitized: counter("sanitized_events_total",
			"Events applied with their control characters replaced by spaces (the log keeps them as written).", "type"),
		failing: gauge("failing", "1 while the projection's last batch failed; the others go on, it is retried with backoff."),
		projectionFailures: counter("failures_total",
			"Batches one projection failed to apply (rolled back for it alone).", "projection"),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    metricPrefix + "batch_seconds",
			Help:    "Time to apply and commit one batch of events.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range append(all, m.failures, m.batch) {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register projection metrics (one runner per registry): %w", err)
		}
	}
	return m, nil
}
