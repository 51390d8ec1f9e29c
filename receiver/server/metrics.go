package server

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics count the trigger endpoint's requests by result.
type Metrics struct {
	requests *prometheus.CounterVec
}

// NewMetrics registers the endpoint's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{requests: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tugboat_receiver_requests_total",
		Help: "Requests to the trigger endpoint by result: accepted, unsigned (no such receiver, its key unreadable, no or a wrong signature), refused (stale, malformed, not allowed, replayed, too many), failed.",
	}, []string{"result"})}
	reg.MustRegister(m.requests)
	return m
}

func (m *Metrics) count(result string) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(result).Inc()
}

func (a answer) result(code int) string {
	switch {
	case a.Accepted:
		return "accepted"
	case code == http.StatusUnauthorized:
		return "unsigned"
	case code == http.StatusBadRequest, code == http.StatusForbidden, code == http.StatusConflict, code == http.StatusRequestEntityTooLarge, code == http.StatusTooManyRequests:
		return "refused"
	}
	return "failed"
}
