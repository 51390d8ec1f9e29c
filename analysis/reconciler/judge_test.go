package reconciler

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/tugboatdev/tugboat/analysis"
	"github.com/tugboatdev/tugboat/analysis/prometheus"
	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/sandbox/promserver"
)

// TestJudgeMetricAgainstPrometheus judges canaries against a stable
// baseline over series backfilled into a real Prometheus every 15s: twice
// the errors fails, the same errors pass, and a canary with a minute of
// data is Inconclusive, saying how many more samples would decide.
func TestJudgeMetricAgainstPrometheus(t *testing.T) {
	now := time.Now().Add(-time.Minute).Truncate(time.Second)
	var om strings.Builder
	om.WriteString("# TYPE tugboat_error_ratio gauge\n")
	for i, w := range []struct {
		workload string
		mean     float64
		since    time.Duration
	}{{"stable", 0.01, time.Hour}, {"twice", 0.02, time.Hour}, {"same", 0.01, time.Hour}, {"young", 0.02, time.Minute}} {
		r := rand.New(rand.NewPCG(uint64(i), 7))
		for ts := now.Add(-w.since); !ts.After(now); ts = ts.Add(15 * time.Second) {
			fmt.Fprintf(&om, "tugboat_error_ratio{workload=%q} %g %d\n", w.workload, w.mean*(1+0.1*r.NormFloat64()), ts.Unix())
		}
	}
	srv := promserver.Start(t, promserver.Options{OpenMetrics: om.String()})
	r := &Reconciler{Measurer: &prometheus.Provider{DefaultAddress: srv.URL, Guard: prometheus.Guard{AllowLoopback: true}}, Now: time.Now}
	for _, tt := range []struct {
		name       string
		canary     string
		sequential *bool
		started    time.Duration // before the measurement
		phase      argo.AnalysisPhase
		value      string
		message    []string
	}{{
		name: "twice the errors, judged since the run started", canary: "twice", started: 30 * time.Minute,
		phase:   argo.AnalysisPhaseFailed,
		value:   `{"classification":"High"`,
		message: []string{"the sequential test over 61 canary and 61 baseline samples since the run started found it High", "last window High (shift 0.01", "21 canary and 21 baseline samples"},
	}, {
		name: "twice the errors, in the window alone", canary: "twice", sequential: ptr.To(false),
		phase:   argo.AnalysisPhaseFailed,
		value:   `{"classification":"High"`,
		message: []string{"errors: High (shift 0.01", "mean ratio 2"},
	}, {
		name: "the same errors", canary: "same", started: 30 * time.Minute,
		phase:   argo.AnalysisPhaseSuccessful,
		value:   `{"classification":"Pass"`,
		message: []string{"errors: Pass (shift ", "is within 25% of the baseline"},
	}, {
		name: "a minute of data", canary: "young",
		phase:   argo.AnalysisPhaseInconclusive,
		value:   `{"classification":"Inconclusive"}`,
		message: []string{"canary has 3 samples and baseline 21, fewer than the 5 needed on each side", "more canary samples would be needed"},
	}} {
		t.Run(tt.name, func(t *testing.T) {
			run := &v1alpha1.AnalysisRun{Spec: v1alpha1.AnalysisRunSpec{
				Args: []argo.Argument{{Name: "canary", Value: ptr.To(tt.canary)}, {Name: "stable", Value: ptr.To("stable")}},
				Metrics: []v1alpha1.Metric{{Name: "errors", Provider: v1alpha1.MetricProvider{Judge: &v1alpha1.JudgeMetric{
					Canary:   `tugboat_error_ratio{workload="{{args.canary}}"}`,
					Baseline: `tugboat_error_ratio{workload="{{args.stable}}"}`,
					Lookback: "10m", Step: "30s", Direction: "increase", Sequential: tt.sequential,
				}}}},
			}}
			run.Status.StartedAt = &metav1.Time{Time: now.Add(-tt.started)}
			measureOnce(t, r, run, now)
			got := lastMeasurement(t, run)
			if got.Phase != tt.phase || !strings.HasPrefix(got.Value, tt.value) {
				t.Errorf("measured %s %s, want %s %s…: %s", got.Phase, got.Value, tt.phase, tt.value, got.Message)
			}
			for _, w := range tt.message {
				if !strings.Contains(got.Message, w) {
					t.Errorf("message does not say %q:\n%s", w, got.Message)
				}
			}
			want := `canary: tugboat_error_ratio{workload="` + tt.canary + `"}; baseline: tugboat_error_ratio{workload="stable"}`
			if q := run.Status.MetricResults[0].Metadata[analysis.MetadataJudgeQueries]; q != want {
				t.Errorf("status shows the queries as %q, want %q", q, want)
			}
		})
	}
}
