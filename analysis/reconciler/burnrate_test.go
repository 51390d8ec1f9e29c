package reconciler

import (
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

// TestBurnRateMetricAgainstPrometheus gates canaries on their burn rate
// over 5m and 1h, objective 0.999, over request counters backfilled into a
// real Prometheus: a canary with five times the stable's errors fails
// relative to it, one burning 20 fails maxBurnRate 14.4, one like the
// stable passes, and one with 15 requests in 5m is Inconclusive, saying
// how many more are needed.
func TestBurnRateMetricAgainstPrometheus(t *testing.T) {
	now := time.Now().Add(-time.Minute).Truncate(time.Second)
	srv := promserver.Start(t, promserver.Options{OpenMetrics: promserver.Requests("tugboat_requests_total", now, 75*time.Minute, map[string]promserver.Traffic{
		"stable":  {PerSecond: 10, ErrorRatio: 0.002},
		"five":    {PerSecond: 10, ErrorRatio: 0.01},
		"burning": {PerSecond: 10, ErrorRatio: 0.02},
		"healthy": {PerSecond: 10, ErrorRatio: 0.002},
		"thin":    {PerSecond: 0.05},
	})})
	r := &Reconciler{Measurer: &prometheus.Provider{DefaultAddress: srv.URL, Guard: prometheus.Guard{AllowLoopback: true}}, Now: time.Now}
	absolute := func(b *v1alpha1.BurnRateMetric) {}
	relative := func(b *v1alpha1.BurnRateMetric) {
		b.BaselineErrors = `sum(increase(tugboat_requests_total{workload="{{args.stable}}",code=~"5.."}[{{window}}]))`
		b.BaselineTotal = `sum(increase(tugboat_requests_total{workload="{{args.stable}}"}[{{window}}]))`
		b.MaxRelativeBurnRate = ptr.To(2.0)
	}
	for _, tt := range []struct {
		name    string
		canary  string
		edit    func(*v1alpha1.BurnRateMetric)
		phase   argo.AnalysisPhase
		value   string
		message []string
	}{{
		name: "five times the stable's errors", canary: "five", edit: relative,
		phase:   argo.AnalysisPhaseFailed,
		value:   `{"short":10,"long":10,"baselineShort":2,"baselineLong":2}`,
		message: []string{"slo: burn rate 10 over 5m and 10 over 1h (30 errors in 3000 requests over 5m), above maxRelativeBurnRate 2× the stable baseline's 2 and 2"},
	}, {
		name: "burning the budget 20 times too fast", canary: "burning", edit: absolute,
		phase:   argo.AnalysisPhaseFailed,
		value:   `{"short":20,"long":20}`,
		message: []string{"slo: burn rate 20 over 5m and 20 over 1h (60 errors in 3000 requests over 5m), above maxBurnRate 14.4 over both windows"},
	}, {
		name: "as the stable", canary: "healthy", edit: relative,
		phase:   argo.AnalysisPhaseSuccessful,
		value:   `{"short":2,"long":2,"baselineShort":2,"baselineLong":2}`,
		message: []string{"not above maxBurnRate 14.4 nor maxRelativeBurnRate 2×"},
	}, {
		name: "too little traffic", canary: "thin", edit: relative,
		phase:   argo.AnalysisPhaseInconclusive,
		value:   `{"short":0,"long":0,"baselineShort":2,"baselineLong":2}`,
		message: []string{"slo: the canary had 15 requests over 5m, fewer than minEvents 100: 85 more are needed to decide"},
	}, {
		name: "no such canary", canary: "gone", edit: absolute,
		phase:   argo.AnalysisPhaseInconclusive,
		message: []string{"slo: the canary's total query returned no data over 5m; onNoData is Inconclusive"},
	}} {
		t.Run(tt.name, func(t *testing.T) {
			b := &v1alpha1.BurnRateMetric{
				Objective:   0.999,
				Errors:      `sum(increase(tugboat_requests_total{workload="{{args.canary}}",code=~"5.."}[{{window}}]))`,
				Total:       `sum(increase(tugboat_requests_total{workload="{{args.canary}}"}[{{window}}]))`,
				ShortWindow: "5m", LongWindow: "1h", MaxBurnRate: 14.4,
			}
			tt.edit(b)
			run := &v1alpha1.AnalysisRun{Spec: v1alpha1.AnalysisRunSpec{
				Args:    []argo.Argument{{Name: "canary", Value: ptr.To(tt.canary)}, {Name: "stable", Value: ptr.To("stable")}},
				Metrics: []v1alpha1.Metric{{Name: "slo", Provider: v1alpha1.MetricProvider{BurnRate: b}}},
			}}
			run.Status.StartedAt = &metav1.Time{Time: now}
			measureOnce(t, r, run, now)
			got := lastMeasurement(t, run)
			if got.Phase != tt.phase || got.Value != tt.value {
				t.Errorf("measured %s %s, want %s %s: %s", got.Phase, got.Value, tt.phase, tt.value, got.Message)
			}
			for _, w := range tt.message {
				if !strings.Contains(got.Message, w) {
					t.Errorf("message does not say %q:\n%s", w, got.Message)
				}
			}
			want := `errors: sum(increase(tugboat_requests_total{workload="` + tt.canary + `",code=~"5.."}[{{window}}])); total: `
			if q := run.Status.MetricResults[0].Metadata[analysis.MetadataBurnRateQueries]; !strings.HasPrefix(q, want) || !strings.HasSuffix(q, "; windows: 5m and 1h") {
				t.Errorf("status shows the queries as %q, want %q…", q, want)
			}
		})
	}
}
