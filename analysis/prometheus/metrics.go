package prometheus

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tugboatdev/tugboat/analysis"
)

// Metrics are the provider's own metrics: the queries it sent and how they
// went, and the measurements it answered without sending one (an identical
// query was sent moments before, or was under way). A nil *Metrics records
// nothing.
type Metrics struct {
	queries  *prometheus.CounterVec
	duration prometheus.Histogram
	saved    prometheus.Counter
}

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		queries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tugboat_prometheus_queries_total",
			Help: "Queries sent to Prometheus, by result: ok, refused (the server rejected the query) or error (unreachable, timed out, ...).",
		}, []string{"result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tugboat_prometheus_query_duration_seconds",
			Help:    "How long queries sent to Prometheus took to answer.",
			Buckets: prometheus.ExponentialBucketsRange(0.005, 60, 14), // 5ms to a minute, past the 30s default timeout
		}),
		saved: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tugboat_prometheus_queries_saved_total",
			Help: "Measurements answered by an identical query sent moments before or under way, rather than a query of their own.",
		}),
	}
	for _, r := range []string{"ok", "refused", "error"} {
		m.queries.WithLabelValues(r) // every result shows, at zero
	}
	reg.MustRegister(m.queries, m.duration, m.saved)
	return m
}

func (m *Metrics) sent(took time.Duration, err error) {
	if m == nil {
		return
	}
	result := "ok"
	var refused *analysis.QueryRefused
	switch {
	case errors.As(err, &refused):
		result = "refused"
	case err != nil:
		result = "error"
	}
	m.queries.WithLabelValues(result).Inc()
	m.duration.Observe(took.Seconds())
}

func (m *Metrics) save() {
	if m != nil {
		m.saved.Inc()
	}
}
