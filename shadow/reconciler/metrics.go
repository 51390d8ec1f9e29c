package reconciler

import (
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/shadow"
)

// Metrics are the controller's metrics about the Previews it drives. A nil
// *Metrics records nothing.
type Metrics struct {
	phase     *prometheus.GaugeVec
	mirroring *prometheus.GaugeVec
}

var phases = []shadow.Phase{shadow.Pending, shadow.Denied, shadow.Mirroring, shadow.Succeeded, shadow.Failed, shadow.Inconclusive, shadow.Expired}

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		phase: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tugboat_preview_phase", Help: "1 for the phase each Preview is in, 0 for the others.",
		}, []string{"namespace", "name", "phase"}),
		mirroring: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tugboat_preview_mirror_percentage", Help: "Share of its source route's matching requests each Preview receives copies of; 0 when its mirror is off.",
		}, []string{"namespace", "name", "source"}),
	}
	reg.MustRegister(m.phase, m.mirroring)
	return m
}

func (m *Metrics) observe(p *v1alpha1.Preview) {
	if m == nil {
		return
	}
	for _, ph := range phases {
		v := 0.0
		if p.Status.Phase == string(ph) {
			v = 1
		}
		m.phase.WithLabelValues(p.Namespace, p.Name, string(ph)).Set(v)
	}
	pct := 0.0
	if p.Status.Phase == string(shadow.Mirroring) {
		pct = float64(p.Spec.Percentage)
	}
	m.mirroring.DeletePartialMatch(prometheus.Labels{"namespace": p.Namespace, "name": p.Name})
	m.mirroring.WithLabelValues(p.Namespace, p.Name, p.Status.Source).Set(pct)
}

func (m *Metrics) forget(key types.NamespacedName) {
	if m == nil {
		return
	}
	m.phase.DeletePartialMatch(prometheus.Labels{"namespace": key.Namespace, "name": key.Name})
	m.mirroring.DeletePartialMatch(prometheus.Labels{"namespace": key.Namespace, "name": key.Name})
}
