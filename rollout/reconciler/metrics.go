package reconciler

import (
	"time"

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
	duration    *prometheus.HistogramVec
}

var phases = []v1alpha1.RolloutPhase{v1alpha1.PhaseHealthy, v1alpha1.PhaseProgressing, v1alpha1.PhasePaused, v1alpha1.PhaseDegraded}

var abortReasons = []rollout.Outcome{rollout.AnalysisFailed, rollout.AbortedByUser, rollout.ProgressDeadlineExceeded}

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
			Name: "tugboat_rollout_transitions_total", Help: "Rollout transitions (steps advanced, promotions, aborts...), by Rollout and outcome.",
		}, []string{"namespace", "name", "outcome"}),
		aborts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tugboat_rollout_aborts_total", Help: "Aborted rollouts, by Rollout and reason (AnalysisFailed, AbortedByUser, ProgressDeadlineExceeded).",
		}, []string{"namespace", "name", "reason"}),
		rollbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tugboat_rollbacks_total",
			Help: "Rollbacks from each revision: cause aborted (a rollout stopped by analysis, deadline or a person) or requested (kubectl tug rollback).",
		}, []string{"namespace", "rollout", "revision", "image", "cause"}),
		pinned: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tugboat_rollout_pinned_since_seconds",
			Help: "When the rollback pinning each Rollout was made (Unix time); absent when none holds. time() minus it is how long the pin has held.",
		}, []string{"namespace", "name"}),
		// By namespace, not by Rollout: a histogram per Rollout would be
		// buckets times Rollouts series for about one observation an hour.
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "tugboat_rollout_duration_seconds",
			Help: "How long rollouts took, from their start (or last retry) to their end, by namespace and outcome (Promoted, Aborted, RolledBack, Cancelled).",
			// One minute to one day.
			Buckets: []float64{60, 300, 600, 1800, 3600, 2 * 3600, 4 * 3600, 12 * 3600, 24 * 3600},
		}, []string{"namespace", "outcome"}),
	}
	reg.MustRegister(m.phase, m.weight, m.step, m.transitions, m.aborts, m.rollbacks, m.pinned, m.duration)
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
	for _, reason := range abortReasons {
		m.aborts.WithLabelValues(ro.Namespace, ro.Name, string(reason)) // at zero, so that increase() sees the first
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

func (m *Metrics) transition(ro *v1alpha1.Rollout, o rollout.Outcome) {
	if m == nil {
		return
	}
	m.transitions.WithLabelValues(ro.Namespace, ro.Name, string(o)).Inc()
	if o.IsTransition() && o.IsFailure() {
		m.aborts.WithLabelValues(ro.Namespace, ro.Name, string(o)).Inc()
	}
}

// ended observes the duration of the rollout that the status write of
// event ended, if it ended one. before is the status the write replaced:
// the start comes from it, so a restarted controller measures from the
// same instant, and only the one write that makes the transition (the
// optimistic lock lets no other through) observes it.
func (m *Metrics) ended(ro *v1alpha1.Rollout, before *v1alpha1.RolloutStatus, event rollout.Outcome, now time.Time) {
	if m == nil {
		return
	}
	if outcome, ok := endOf(before, event); ok {
		m.duration.WithLabelValues(ro.Namespace, outcome).Observe(max(0, now.Sub(before.StartedAt.Time).Seconds()))
	}
}

// endOf says how event ends the rollout status shows under way: Promoted,
// Aborted, RolledBack (a rollback arrived, through the steps or at once),
// or Cancelled (the target went back, a newer revision replaced it, or its
// steps changed and it started over). ok is false when none was under way
// (at rest, or aborted already) or event does not end it.
func endOf(before *v1alpha1.RolloutStatus, event rollout.Outcome) (outcome string, ok bool) {
	if before.CanaryRevision == "" || before.Abort != nil || before.StartedAt == nil {
		return "", false
	}
	switch event {
	case rollout.Promoted:
		return "Promoted", true
	case rollout.AbortedByUser, rollout.ProgressDeadlineExceeded, rollout.AnalysisFailed:
		return "Aborted", true
	case rollout.RolledBack:
		return "RolledBack", true
	case rollout.Cancelled, rollout.Restarted, rollout.StepsChanged:
		return "Cancelled", true
	}
	return "", false
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
	// Counters too: a Rollout made again under the name starts from zero,
	// which rate() and increase() read as a reset.
	of := prometheus.Labels{"namespace": key.Namespace, "name": key.Name}
	m.transitions.DeletePartialMatch(of)
	m.aborts.DeletePartialMatch(of)
	m.rollbacks.DeletePartialMatch(prometheus.Labels{"namespace": key.Namespace, "rollout": key.Name})
}
