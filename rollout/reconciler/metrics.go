package reconciler

import (
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/rollout"
)

// Metrics are the controller's own metrics about the Rollouts it drives.
// Reconcile duration and errors come from controller-runtime's
// controller_runtime_reconcile_* metrics. A nil *Metrics records nothing.
type Metrics struct {
	phase       *prometheus.GaugeVec
	weight      *prometheus.GaugeVec
	step        *prometheus.GaugeVec
	transitions *prometheus.CounterVec
	aborts      *prometheus.CounterVec
	rollbacks   *prometheus.CounterVec
	pinned      *prometheus.GaugeVec
}

var phases = []v1alpha1.RolloutPhase{v1alpha1.PhaseHealthy, v1alpha1.PhaseProgressing, v1alpha1.PhasePaused, v1alpha1.PhaseDegraded}

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		phase: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tugboat_rollout_phase", Help: "1 for the phase each Rollout is in, 0 for the others.",
		}, []string{"namespace", "name", "phase"}),
		weight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tugboat_rollout_canary_weight", Help: "Percentage of the managed routes' traffic sent to the canary.",
		}, []string{"namespace", "name"}),
		step: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tugboat_rollout_step", Help: "Index of the step under way; -1 at rest.",
		}, []string{"namespace", "name"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tugboat_rollout_transitions_total", Help: "Rollout transitions (steps advanced, promotions, aborts...), by outcome.",
		}, []string{"outcome"}),
		aborts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tugboat_rollout_aborts_total", Help: "Aborted rollouts, by reason.",
		}, []string{"reason"}),
		rollbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tugboat_rollbacks_total",
			Help: "Rollbacks from each revision: cause aborted (a rollout stopped by analysis, deadline or a person) or requested (kubectl tug rollback).",
		}, []string{"namespace", "rollout", "revision", "image", "cause"}),
		pinned: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tugboat_rollout_pinned_since_seconds",
			Help: "When the rollback pinning each Rollout was made (Unix time); absent when none holds. time() minus it is how long the pin has held.",
		}, []string{"namespace", "name"}),
	}
	reg.MustRegister(m.phase, m.weight, m.step, m.transitions, m.aborts, m.rollbacks, m.pinned)
	return m
}

func (m *Metrics) observe(ro *v1alpha1.Rollout) {
	if m == nil {
		return
	}
	for _, p := range phases {
		v := 0.0
		if ro.Status.Phase == p {
			v = 1
		}
		m.phase.WithLabelValues(ro.Namespace, ro.Name, string(p)).Set(v)
	}
	m.weight.WithLabelValues(ro.Namespace, ro.Name).Set(float64(ro.Status.CanaryWeight))
	step := -1.0
	if ro.Status.CurrentStepIndex != nil {
		step = float64(*ro.Status.CurrentStepIndex)
	}
	m.step.WithLabelValues(ro.Namespace, ro.Name).Set(step)
	if pin := ro.Status.Rollback; pin != nil && !pin.ThroughSteps { // a pin that holds
		m.pinned.WithLabelValues(ro.Namespace, ro.Name).Set(float64(pin.Since.Unix()))
	} else {
		m.pinned.DeleteLabelValues(ro.Namespace, ro.Name)
	}
}

// rolledBack counts what a status write added to the rollback counts.
func (m *Metrics) rolledBack(ro *v1alpha1.Rollout, before, after []v1alpha1.RevisionRollbacks) {
	if m == nil {
		return
	}
	was := map[string]v1alpha1.RevisionRollbacks{}
	for _, c := range before {
		was[c.Revision] = c
	}
	for _, c := range after {
		image := ""
		if len(c.Images) > 0 {
			image = c.Images[0]
		}
		if n := c.Aborted - was[c.Revision].Aborted; n > 0 {
			m.rollbacks.WithLabelValues(ro.Namespace, ro.Name, c.Revision, image, "aborted").Add(float64(n))
		}
		if n := c.Requested - was[c.Revision].Requested; n > 0 {
			m.rollbacks.WithLabelValues(ro.Namespace, ro.Name, c.Revision, image, "requested").Add(float64(n))
		}
	}
}

func (m *Metrics) transition(o rollout.Outcome) {
	if m == nil {
		return
	}
	m.transitions.WithLabelValues(string(o)).Inc()
	if o.IsTransition() && o.IsFailure() {
		m.aborts.WithLabelValues(string(o)).Inc()
	}
}

func (m *Metrics) forget(key types.NamespacedName) {
	if m == nil {
		return
	}
	for _, p := range phases {
		m.phase.DeleteLabelValues(key.Namespace, key.Name, string(p))
	}
	m.weight.DeleteLabelValues(key.Namespace, key.Name)
	m.step.DeleteLabelValues(key.Namespace, key.Name)
	m.pinned.DeleteLabelValues(key.Namespace, key.Name)
}
