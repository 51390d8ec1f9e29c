package dispatch

import "github.com/prometheus/client_golang/prometheus"

// Results a notification attempt can have, the result label.
const (
	resultDelivered  = "delivered"
	resultRetried    = "retried"
	resultFailed     = "failed"
	resultDropped    = "dropped"
	resultSuspended  = "suspended"
	resultNoProvider = "no_provider"
)

// Metrics count notifications by provider type and result.
type Metrics struct {
	notifications *prometheus.CounterVec
}

// NewMetrics registers the notification metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{notifications: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tugboat_notifications_total",
		Help: "Notification attempts by provider type and result: delivered, retried (an attempt failed; another follows), failed (given up), dropped (too many waiting), suspended, no_provider.",
	}, []string{"type", "result"})}
	reg.MustRegister(m.notifications)
	return m
}

func (m *Metrics) count(typ, result string) {
	if m == nil {
		return
	}
	m.notifications.WithLabelValues(typ, result).Inc()
}
