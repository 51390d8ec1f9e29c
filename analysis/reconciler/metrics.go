package reconciler

import (
	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	"github.com/prometheus/client_golang/prometheus"
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
			Help: "Measurements taken, by phase (Successful, Failed, Inconclusive, Error); dry-run metrics included.",
		}, []string{"phase"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tugboat_analysis_runs_completed_total",
			Help: "AnalysisRuns that reached a verdict, by phase.",
		}, []string{"phase"}),
	}
	for _, p := range verdicts {
		m.measurements.WithLabelValues(string(p)) // every phase shows, at zero
		m.runs.WithLabelValues(string(p))
	}
	reg.MustRegister(m.measurements, m.runs)
	return m
}

func (m *Metrics) measured(p argo.AnalysisPhase) {
	if m != nil {
		m.measurements.WithLabelValues(string(p)).Inc()
	}
}

func (m *Metrics) completed(p argo.AnalysisPhase) {
	if m != nil {
		m.runs.WithLabelValues(string(p)).Inc()
	}
}
