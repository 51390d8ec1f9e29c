package reconciler_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

// successTemplate measures the exporter's success rate three times, a second apart.
func (f *fixture) successTemplate() {
	f.t.Helper()
	t := &v1alpha1.AnalysisTemplate{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "success-rate"},
		Spec: v1alpha1.AnalysisTemplateSpec{
			Args: []argo.Argument{{Name: "workload"}},
			Metrics: []v1alpha1.Metric{{
				Name:             "success-rate",
				Interval:         "1s",
				Count:            ptr.To(intstr.FromInt32(3)),
				SuccessCondition: "result[0] >= 0.99",
				Provider: v1alpha1.MetricProvider{Prometheus: &v1alpha1.PrometheusMetric{
					Query: `tugboat_test_success_rate{workload="{{args.workload}}"}`,
				}},
			}},
		},
	}
	if err := f.c.Create(f.t.Context(), t); err != nil {
		f.t.Fatal(err)
	}
}

// scraped waits until Prometheus has scraped the workload's success rate, so
// that the first measurement has data.
func (f *fixture) scraped(workload string) {
	f.t.Helper()
	c, err := api.NewClient(api.Config{Address: prom.URL})
	if err != nil {
		f.t.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(f.t.Context(), 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		v, _, _, err := promv1.NewAPI(c).Query(ctx, `tugboat_test_success_rate{workload="`+workload+`"}`, time.Now())
		if err != nil {
			return false, nil
		}
		vec, ok := v.(model.Vector)
		return ok && len(vec) == 1, nil
	})
	if err != nil {
		f.t.Fatalf("prometheus never scraped %s: %v", workload, err)
	}
}

func analysisStep(workload string) v1alpha1.Step {
	return v1alpha1.Step{Analysis: &v1alpha1.Analysis{
		Templates: []v1alpha1.AnalysisTemplateRef{{TemplateName: "success-rate"}},
		Args:      []argo.AnalysisRunArgument{{Name: "workload", Value: workload}},
	}}
}

func TestAnalysisStepPromotesWithinTheSLO(t *testing.T) {
	f := given(t)
	successRate.WithLabelValues("good").Set(0.999)
	f.scraped("good")
	f.successTemplate()
	f.app("good", 1, managedRoute("good"))
	f.rollout(newRollout("good", weight(20), analysisStep("good"), weight(50)))
	f.eventually("good", "initialized", time.Minute, hasReason("Healthy"))
	f.release("good", "v2")
	canary := f.eventually("good", "analysing", time.Minute, func(ro *v1alpha1.Rollout) bool { return ro.Status.CanaryRevision != "" }).Status.CanaryRevision
	f.eventually("good", "promoted", time.Minute, stableAt(canary))

	var runs v1alpha1.AnalysisRunList
	if err := f.c.List(t.Context(), &runs, client.InNamespace(f.ns)); err != nil {
		t.Fatal(err)
	}
	if len(runs.Items) != 1 {
		t.Fatalf("want one analysis run, got %d", len(runs.Items))
	}
	run := runs.Items[0]
	if run.Status.Phase != argo.AnalysisPhaseSuccessful || len(run.Status.MetricResults) != 1 || run.Status.MetricResults[0].Successful != 3 {
		t.Errorf("analysis run: %+v", run.Status)
	}
	if q := run.Status.MetricResults[0].Metadata["ResolvedPrometheusQuery"]; q != `tugboat_test_success_rate{workload="good"}` {
		t.Errorf("resolved query %q", q)
	}
}

func TestAnalysisStepAbortsOutsideTheSLO(t *testing.T) {
	f := given(t)
	successRate.WithLabelValues("bad").Set(0.8)
	f.scraped("bad")
	f.successTemplate()
	f.app("bad", 1, managedRoute("bad"))
	f.rollout(newRollout("bad", weight(20), analysisStep("bad"), weight(50)))
	f.eventually("bad", "initialized", time.Minute, hasReason("Healthy"))
	f.release("bad", "v2")
	ro := f.eventually("bad", "aborted by analysis", time.Minute, hasReason("AnalysisFailed"))
	for _, want := range []string{"step 1: analysis Failed", "metric success-rate Failed", "[0.8]", "did not meet result[0] >= 0.99"} {
		if !strings.Contains(ro.Status.Message, want) {
			t.Errorf("status message %q does not explain %q", ro.Status.Message, want)
		}
	}
	f.wantWeights("bad", 100, 0)
	if !slices.Contains(f.events("bad"), "MetricFailed") {
		t.Errorf("no MetricFailed event among %v", f.events("bad"))
	}
}

func TestMissingTemplateShowsInStatus(t *testing.T) {
	f := given(t)
	f.app("mt", 1, managedRoute("mt"))
	f.rollout(newRollout("mt", weight(20), analysisStep("mt")))
	f.eventually("mt", "initialized", time.Minute, hasReason("Healthy"))
	f.release("mt", "v2")
	ro := f.eventually("mt", "invalid spec", time.Minute, hasReason("InvalidSpec"))
	if !strings.Contains(ro.Status.Message, "analysistemplate "+f.ns+"/success-rate not found") {
		t.Errorf("status message %q does not name the template", ro.Status.Message)
	}
	// Creating it lets the rollout go on.
	successRate.WithLabelValues("mt").Set(1)
	f.scraped("mt")
	f.successTemplate()
	f.eventually("mt", "promoted", 2*time.Minute, func(ro *v1alpha1.Rollout) bool { return ro.Status.CanaryRevision == "" && reason(ro) == "Healthy" })
}
