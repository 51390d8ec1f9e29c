package reconciler

import (
	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

// Metrics are the controller's own metrics about the AnalysisRuns it drives.
// A nil *Metrics records nothing.
type Metrics struct {
	measurements *prometheus.CounterVec
	runs         *prometheus.CounterVec
}

var verdicts = []argo.AnalysisPhase{argo.AnalysisPhaseSuccessful, argo.AnalysisPhaseFailed, argo.AnalysisPhaseInconclusive, argo.AnalysisPhaseError}

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		measurements: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tugboat_analysis_measurements_total",
			Help: "Measurements recorded in AnalysisRuns, by phase (Successful, Failed, Inconclusive, Error); dry-run metrics included.",
		}, []string{"phase"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tugboat_analysis_runs_completed_total",
			Help: "AnalysisRuns that reached a verdict, by phase. A run stopped early with nothing decided is Successful, as in Argo Rollouts.",
		}, []string{"phase"}),
	}
	for _, p := range verdicts {
		m.measurements.WithLabelValues(string(p)) // every phase shows, at zero
		m.runs.WithLabelValues(string(p))
	}
	reg.MustRegister(m.measurements, m.runs)
	return m
}

// written counts what a status write recorded: the measurements it added,
// from the metrics' counters (which retention never trims), and the verdict
// it reached. Measurements held in memory count once they are written, so
// one taken again after a conflict or a restart counts once.
func (m *Metrics) written(before, after *v1alpha1.AnalysisRunStatus) {
	if m == nil {
		return
	}
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
				m.measurements.WithLabelValues(string(phase)).Add(float64(n))
			}
		}
	}
	if after.Phase.Completed() && !before.Phase.Completed() {
		m.runs.WithLabelValues(string(after.Phase)).Inc()
	}
}
