package reconciler

import (
	"strconv"
	"strings"
	"sync"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tugboatdev/tugboat/analysis"
	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

// Metrics are the controller's own metrics about the AnalysisRuns it drives.
// Every series names the run's namespace and, as name, the Rollout the run
// belongs to (see rolloutOf). A nil *Metrics records nothing.
//
// The counters of a Rollout are deleted once none of its runs is left (the
// runs go with the Rollout, by garbage collection); the value and threshold
// gauges of a run only live while it measures.
type Metrics struct {
	measurements *prometheus.CounterVec
	runs         *prometheus.CounterVec
	value        *prometheus.GaugeVec
	threshold    *prometheus.GaugeVec

	mu sync.Mutex
	// live maps each run seen, and not deleted since, to its name label.
	live map[types.NamespacedName]string
}

var verdicts = []argo.AnalysisPhase{argo.AnalysisPhaseSuccessful, argo.AnalysisPhaseFailed, argo.AnalysisPhaseInconclusive, argo.AnalysisPhaseError}

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		measurements: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tugboat_analysis_measurements_total",
			Help: "Measurements recorded in AnalysisRuns, by the run's namespace, its Rollout (name) and phase (Successful, Failed, Inconclusive, Error); dry-run metrics included.",
		}, []string{"namespace", "name", "phase"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tugboat_analysis_runs_completed_total",
			Help: "AnalysisRuns that reached a verdict, by the run's namespace, its Rollout (name) and phase. A run stopped early with nothing decided is Successful, as in Argo Rollouts.",
		}, []string{"namespace", "name", "phase"}),
		value: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tugboat_analysis_metric_value",
			Help: "The last value measured by each metric of a running AnalysisRun, when it was one number; absent otherwise, and once the run has a verdict.",
		}, []string{"namespace", "name", "analysisrun", "metric"}),
		threshold: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tugboat_analysis_metric_threshold",
			Help: "The number a running AnalysisRun's success or failure condition (condition) compares the metric's value with, by operator (op), for conditions of the form result[0] <op> <number>.",
		}, []string{"namespace", "name", "analysisrun", "metric", "condition", "op"}),
		live: map[types.NamespacedName]string{},
	}
	reg.MustRegister(m.measurements, m.runs, m.value, m.threshold)
	return m
}

// rolloutOf is the name label of a run's series: the Rollout that controls
// it, else the Rollout its tugboat.dev/rollout label names, else (a run
// nobody's Rollout made) the run's own name.
func rolloutOf(run *v1alpha1.AnalysisRun) string {
	if ref := metav1.GetControllerOf(run); ref != nil && ref.Kind == "Rollout" && strings.HasPrefix(ref.APIVersion, v1alpha1.GroupVersion.Group+"/") {
		return ref.Name
	}
	if name := run.Labels[v1alpha1.LabelRollout]; name != "" {
		return name
	}
	return run.Name
}

// seen notes a run that exists; its Rollout's counters show, at zero for
// the phases not counted yet, so that increase() sees the first count.
func (m *Metrics) seen(run *v1alpha1.AnalysisRun) {
	if m == nil {
		return
	}
	name := rolloutOf(run)
	m.mu.Lock()
	m.live[types.NamespacedName{Namespace: run.Namespace, Name: run.Name}] = name
	m.mu.Unlock()
	for _, p := range verdicts {
		m.measurements.WithLabelValues(run.Namespace, name, string(p))
		m.runs.WithLabelValues(run.Namespace, name, string(p))
	}
}

// gone forgets a deleted run: its gauges, and its Rollout's counters once
// no run of that Rollout is left.
func (m *Metrics) gone(key types.NamespacedName) {
	if m == nil {
		return
	}
	m.value.DeletePartialMatch(prometheus.Labels{"namespace": key.Namespace, "analysisrun": key.Name})
	m.threshold.DeletePartialMatch(prometheus.Labels{"namespace": key.Namespace, "analysisrun": key.Name})
	m.mu.Lock()
	defer m.mu.Unlock()
	name, ok := m.live[key]
	if !ok {
		return
	}
	delete(m.live, key)
	for k, n := range m.live {
		if k.Namespace == key.Namespace && n == name {
			return // another run of the Rollout still counts here
		}
	}
	rollout := prometheus.Labels{"namespace": key.Namespace, "name": name}
	m.measurements.DeletePartialMatch(rollout)
	m.runs.DeletePartialMatch(rollout)
}

// written counts what a status write recorded: the measurements it added,
// from the metrics' counters (which retention never trims), and the verdict
// it reached. Measurements held in memory count once they are written, so
// one taken again after a conflict or a restart counts once.
func (m *Metrics) written(run *v1alpha1.AnalysisRun, before *v1alpha1.AnalysisRunStatus) {
	if m == nil {
		return
	}
	name, after := rolloutOf(run), &run.Status
	was := map[string]argo.MetricResult{}
	for _, r := range before.MetricResults {
		was[r.Name] = r
	}
	for _, r := range after.MetricResults {
		b := was[r.Name]
		for phase, n := range map[argo.AnalysisPhase]int32{
			argo.AnalysisPhaseSuccessful:   r.Successful - b.Successful,
			argo.AnalysisPhaseFailed:       r.Failed - b.Failed,
			argo.AnalysisPhaseInconclusive: r.Inconclusive - b.Inconclusive,
			argo.AnalysisPhaseError:        r.Error - b.Error,
		} {
			if n > 0 {
				m.measurements.WithLabelValues(run.Namespace, name, string(phase)).Add(float64(n))
			}
		}
	}
	if after.Phase.Completed() && !before.Phase.Completed() {
		m.runs.WithLabelValues(run.Namespace, name, string(after.Phase)).Inc()
	}
}

// measured shows the last value of each of the run's metrics and the
// thresholds its conditions hold them against, as status has them now
// (measurements not written yet included): a value only while it is one
// number, and nothing once the run has a verdict.
func (m *Metrics) measured(run *v1alpha1.AnalysisRun) {
	if m == nil {
		return
	}
	ofRun := prometheus.Labels{"namespace": run.Namespace, "analysisrun": run.Name}
	if run.Status.Phase.Completed() {
		m.value.DeletePartialMatch(ofRun)
		m.threshold.DeletePartialMatch(ofRun)
		return
	}
	name := rolloutOf(run)
	for _, res := range run.Status.MetricResults {
		v, ok := 0.0, false
		if n := len(res.Measurements); n > 0 {
			v, ok = oneNumber(res.Measurements[n-1].Value)
		}
		if ok {
			m.value.WithLabelValues(run.Namespace, name, run.Name, res.Name).Set(v)
		} else {
			m.value.DeleteLabelValues(run.Namespace, name, run.Name, res.Name)
		}
	}
	for _, mt := range run.Spec.Metrics {
		for condition, expr := range map[string]string{"success": mt.SuccessCondition, "failure": mt.FailureCondition} {
			if t, ok := analysis.ThresholdOf(expr); ok {
				m.threshold.WithLabelValues(run.Namespace, name, run.Name, mt.Name, condition, t.Op).Set(t.Value)
			}
		}
	}
}

// oneNumber reads a measurement's value when it is one number: "0.99" (a
// web metric's answer) or "[0.99]" (a query's one value). A vector of more,
// no data or an error has none.
func oneNumber(value string) (float64, bool) {
	s := value
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		s = s[1 : len(s)-1]
	}
	v, err := strconv.ParseFloat(s, 64)
	return v, err == nil
}
