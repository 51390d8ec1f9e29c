package reconciler_test

import (
	"context"
	"strings"
	"testing"
	"time"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tugboatdev/tugboat/analysis/prometheus"
	"github.com/tugboatdev/tugboat/analysis/reconciler"
	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/sandbox/cluster"
	"github.com/tugboatdev/tugboat/sandbox/promserver"
)

// TestBurnRateMetricRuns: AnalysisRuns with a burn-rate metric, on a real
// API server, measured by the controller against a real Prometheus holding
// request counters up to now: a canary burning its budget 20 times too
// fast fails the run, one like the stable passes it.
func TestBurnRateMetricRuns(t *testing.T) {
	env := cluster.Start(t)
	now := time.Now().Truncate(time.Second)
	srv := promserver.Start(t, promserver.Options{OpenMetrics: promserver.Requests("tugboat_run_requests_total", now, 70*time.Minute, map[string]promserver.Traffic{
		"stable": {PerSecond: 10, ErrorRatio: 0.002},
		"bad":    {PerSecond: 10, ErrorRatio: 0.02},
		"good":   {PerSecond: 10, ErrorRatio: 0.002},
	})})
	startAnalysis(t, env, &reconciler.Reconciler{Measurer: &prometheus.Provider{DefaultAddress: srv.URL, Guard: prometheus.Guard{AllowLoopback: true}}})

	for _, canary := range []string{"bad", "good"} {
		run := &v1alpha1.AnalysisRun{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "burnrate-" + canary}, Spec: v1alpha1.AnalysisRunSpec{
			Args: []argo.Argument{{Name: "canary", Value: ptr.To(canary)}},
			Metrics: []v1alpha1.Metric{{Name: "slo", Interval: "1s", Count: ptr.To(intstr.FromInt32(2)),
				Provider: v1alpha1.MetricProvider{BurnRate: &v1alpha1.BurnRateMetric{
					Objective:           0.999,
					Errors:              `sum(increase(tugboat_run_requests_total{workload="{{args.canary}}",code=~"5.."}[{{window}}]))`,
					Total:               `sum(increase(tugboat_run_requests_total{workload="{{args.canary}}"}[{{window}}]))`,
					BaselineErrors:      `sum(increase(tugboat_run_requests_total{workload="stable",code=~"5.."}[{{window}}]))`,
					BaselineTotal:       `sum(increase(tugboat_run_requests_total{workload="stable"}[{{window}}]))`,
					ShortWindow:         "5m",
					LongWindow:          "1h",
					MaxBurnRate:         14.4,
					MaxRelativeBurnRate: ptr.To(2.0),
				}}}},
		}}
		if err := env.Client.Create(t.Context(), run); err != nil {
			t.Fatal(err)
		}
	}
	until := func(name string) *v1alpha1.AnalysisRun {
		t.Helper()
		var run v1alpha1.AnalysisRun
		if err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, &run); err != nil {
				return false, err
			}
			return run.Status.Phase.Completed(), nil
		}); err != nil {
			t.Fatalf("run %s: %v; status %+v", name, err, run.Status)
		}
		return &run
	}

	bad := until("burnrate-bad")
	res := bad.Status.MetricResults[0]
	if bad.Status.Phase != argo.AnalysisPhaseFailed || res.Failed != 1 || !strings.HasPrefix(res.Measurements[0].Value, `{"short":20,"long":20,`) ||
		!strings.Contains(bad.Status.Message, "above maxBurnRate 14.4 over both windows") {
		t.Errorf("a canary burning 20: %+v", bad.Status)
	}
	good := until("burnrate-good")
	res = good.Status.MetricResults[0]
	if good.Status.Phase != argo.AnalysisPhaseSuccessful || res.Successful != 2 || res.Measurements[1].Value != `{"short":2,"long":2,"baselineShort":2,"baselineLong":2}` {
		t.Errorf("a canary like the stable: %+v", good.Status)
	}
	if q := res.Metadata["ResolvedBurnRateQueries"]; !strings.HasPrefix(q, `errors: sum(increase(tugboat_run_requests_total{workload="good",code=~"5.."}[{{window}}]))`) {
		t.Errorf("the queries shown: %q", q)
	}
}
