package reconciler_test

import (
	"context"
	"fmt"
	"math/rand/v2"
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

// TestJudgeMetricRuns: AnalysisRuns with a judge metric, on a real API
// server, measured by the controller against a real Prometheus holding
// error ratios up to now: a canary with twice the baseline's errors fails
// the run, one with the same errors passes it.
func TestJudgeMetricRuns(t *testing.T) {
	env := cluster.Start(t)
	now := time.Now().Truncate(time.Second)
	var om strings.Builder
	om.WriteString("# TYPE tugboat_run_errors gauge\n")
	for i, w := range []struct {
		workload string
		mean     float64
	}{{"stable", 0.01}, {"bad", 0.02}, {"good", 0.01}} {
		r := rand.New(rand.NewPCG(uint64(i), 11))
		for ts := now.Add(-20 * time.Minute); !ts.After(now); ts = ts.Add(15 * time.Second) {
			fmt.Fprintf(&om, "tugboat_run_errors{workload=%q} %g %d\n", w.workload, w.mean*(1+0.1*r.NormFloat64()), ts.Unix())
		}
	}
	srv := promserver.Start(t, promserver.Options{OpenMetrics: om.String()})
	startAnalysis(t, env, &reconciler.Reconciler{Measurer: &prometheus.Provider{DefaultAddress: srv.URL, Guard: prometheus.Guard{AllowLoopback: true}}})

	for _, canary := range []string{"bad", "good"} {
		run := &v1alpha1.AnalysisRun{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "judge-" + canary}, Spec: v1alpha1.AnalysisRunSpec{
			Args: []argo.Argument{{Name: "canary", Value: ptr.To(canary)}},
			Metrics: []v1alpha1.Metric{{Name: "errors", Interval: "1s", Count: ptr.To(intstr.FromInt32(2)),
				Provider: v1alpha1.MetricProvider{Judge: &v1alpha1.JudgeMetric{
					Canary:   `tugboat_run_errors{workload="{{args.canary}}"}`,
					Baseline: `tugboat_run_errors{workload="stable"}`,
					Lookback: "10m", Step: "30s", Direction: "increase",
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

	bad := until("judge-bad")
	res := bad.Status.MetricResults[0]
	if bad.Status.Phase != argo.AnalysisPhaseFailed || res.Failed != 1 || !strings.HasPrefix(res.Measurements[0].Value, `{"classification":"High"`) ||
		!strings.Contains(bad.Status.Message, "found it High") {
		t.Errorf("a canary with twice the errors: %+v", bad.Status)
	}
	good := until("judge-good")
	res = good.Status.MetricResults[0]
	if good.Status.Phase != argo.AnalysisPhaseSuccessful || res.Successful != 2 || !strings.HasPrefix(res.Measurements[1].Value, `{"classification":"Pass"`) {
		t.Errorf("a canary with the same errors: %+v", good.Status)
	}
	if q := res.Metadata["ResolvedJudgeQueries"]; q != `canary: tugboat_run_errors{workload="good"}; baseline: tugboat_run_errors{workload="stable"}` {
		t.Errorf("the queries shown: %q", q)
	}
}
