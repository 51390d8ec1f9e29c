package reconciler_test

import (
	"context"
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
	canary := f.release("good", "v2")
	ro := f.eventually("good", "promoted", time.Minute, stableAt(canary))

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

	// The promoted Rollout keeps the explanation of its last rollout's analysis.
	if len(ro.Status.Analysis) != 1 {
		t.Fatalf("status.analysis: %+v", ro.Status.Analysis)
	}
	a := ro.Status.Analysis[0]
	if a.Run != run.Name || ptr.Deref(a.Step, -1) != 1 || a.Background || a.Phase != argo.AnalysisPhaseSuccessful || len(a.Metrics) != 1 {
		t.Errorf("status.analysis[0]: %+v", a)
	}
	if m := a.Metrics[0]; m.Phase != argo.AnalysisPhaseSuccessful || m.Counters.Successful != 3 || m.Value != "[0.999]" || m.Since == nil {
		t.Errorf("status.analysis[0].metrics[0]: %+v", m)
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

	// The explanation: step, metric, resolved query, value, condition,
	// counters against limits, since when.
	if len(ro.Status.Analysis) != 1 {
		t.Fatalf("status.analysis: %+v", ro.Status.Analysis)
	}
	a := ro.Status.Analysis[0]
	if ptr.Deref(a.Step, -1) != 1 || a.Phase != argo.AnalysisPhaseFailed || len(a.Metrics) != 1 {
		t.Fatalf("status.analysis[0]: %+v", a)
	}
	m := a.Metrics[0]
	if m.Name != "success-rate" || m.Phase != argo.AnalysisPhaseFailed || m.Query != `tugboat_test_success_rate{workload="bad"}` ||
		m.Value != "[0.8]" || m.SuccessCondition != "result[0] >= 0.99" || m.Message != "did not meet result[0] >= 0.99" {
		t.Errorf("metric explanation: %+v", m)
	}
	if m.Counters.Failed != 1 || m.Limits == nil || m.Limits.FailureLimit != 0 || m.Limits.Count != 3 {
		t.Errorf("counters %+v against limits %+v", m.Counters, m.Limits)
	}
	if m.Since == nil || m.Since.Before(ro.Status.StartedAt) {
		t.Errorf("failed since %v, before the rollout started at %v", m.Since, ro.Status.StartedAt)
	}
	f.wantEvent("bad", "MetricFailed")
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
	// Creating it lets the rollout go on, at once: templates are watched.
	successRate.WithLabelValues("mt").Set(1)
	f.scraped("mt")
	f.successTemplate()
	f.eventually("mt", "going on", 10*time.Second, func(ro *v1alpha1.Rollout) bool { return reason(ro) != "InvalidSpec" })
	f.eventually("mt", "promoted", 2*time.Minute, func(ro *v1alpha1.Rollout) bool { return ro.Status.CanaryRevision == "" && reason(ro) == "Healthy" })
}

// Successful measurements of a background analysis change no verdict, so they
// cost the Rollout no write; the explanation catches up with the next write
// the Rollout needs anyway.
func TestBackgroundAnalysisCostsNoRolloutWrites(t *testing.T) {
	f := given(t)
	successRate.WithLabelValues("bg").Set(0.999)
	f.scraped("bg")
	tmpl := &v1alpha1.AnalysisTemplate{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "success-rate-ongoing"},
		Spec: v1alpha1.AnalysisTemplateSpec{
			Metrics: []v1alpha1.Metric{{
				Name:             "success-rate",
				Interval:         "1s",
				SuccessCondition: "result[0] >= 0.99",
				Provider: v1alpha1.MetricProvider{Prometheus: &v1alpha1.PrometheusMetric{
					Query: `tugboat_test_success_rate{workload="bg"}`,
				}},
			}},
		},
	}
	if err := f.c.Create(t.Context(), tmpl); err != nil {
		t.Fatal(err)
	}
	f.app("bg", 1, managedRoute("bg"))
	ro := newRollout("bg", weight(20), pause(""))
	ro.Spec.Analysis = &v1alpha1.BackgroundAnalysis{Analysis: v1alpha1.Analysis{
		Templates: []v1alpha1.AnalysisTemplateRef{{TemplateName: "success-rate-ongoing"}},
	}}
	f.rollout(ro)
	f.eventually("bg", "initialized", time.Minute, hasReason("Healthy"))
	f.release("bg", "v2")
	paused := f.eventually("bg", "paused", time.Minute, hasReason("WaitingForPromotion"))

	successes := func(n int32) *v1alpha1.AnalysisRun {
		t.Helper()
		var run v1alpha1.AnalysisRun
		err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			var runs v1alpha1.AnalysisRunList
			if err := f.c.List(ctx, &runs, client.InNamespace(f.ns)); err != nil || len(runs.Items) != 1 {
				return false, err
			}
			run = runs.Items[0]
			return len(run.Status.MetricResults) == 1 && run.Status.MetricResults[0].Successful >= n, nil
		})
		if err != nil {
			t.Fatalf("waiting for %d successful measurements: %v", n, err)
		}
		return &run
	}
	first := successes(1).Status.MetricResults[0]
	before := f.eventually("bg", "paused", 10*time.Second, hasReason("WaitingForPromotion"))
	run := successes(first.Successful + 5)
	after := f.eventually("bg", "paused", 10*time.Second, hasReason("WaitingForPromotion"))
	// An erring measurement (a slow Prometheus on a busy machine) is a
	// verdict change, and rightly written.
	onlySuccesses := run.Status.MetricResults[0].Error == first.Error && run.Status.MetricResults[0].Inconclusive == first.Inconclusive
	if after.ResourceVersion != before.ResourceVersion && onlySuccesses {
		t.Errorf("the Rollout was written while its background analysis only succeeded (%d successes): %+v", run.Status.MetricResults[0].Successful, after.Status.Analysis)
	}
	if paused.Status.CurrentStepIndex == nil || *paused.Status.CurrentStepIndex != 1 {
		t.Fatalf("paused at %v", paused.Status.CurrentStepIndex)
	}

	f.annotate("bg", v1alpha1.AnnotationPromote, "1")
	ro = f.eventually("bg", "promoted", time.Minute, stableAt(paused.Status.CanaryRevision))
	if len(ro.Status.Analysis) != 1 || !ro.Status.Analysis[0].Background {
		t.Fatalf("status.analysis: %+v", ro.Status.Analysis)
	}
	if m := ro.Status.Analysis[0].Metrics[0]; m.Counters.Successful < run.Status.MetricResults[0].Successful || m.Value != "[0.999]" {
		t.Errorf("the explanation did not catch up at promotion: %+v (the run had %d successes)", m, run.Status.MetricResults[0].Successful)
	}
	if msg := ro.Status.Analysis[0].Message; msg != "stopped measuring: the rollout ended (Promoted)" {
		t.Errorf("the background run after promotion: %q", msg)
	}
}

// A run the Rollout would use that another owner holds is never adopted:
// the Rollout holds with a message that names it, and traffic stays on
// stable.
func TestARunNotOwnedIsNotAdopted(t *testing.T) {
	f := given(t)
	successRate.WithLabelValues("own").Set(1)
	f.scraped("own")
	f.successTemplate()
	f.update(&v1alpha1.AnalysisTemplate{}, "success-rate", func(o client.Object) {
		o.(*v1alpha1.AnalysisTemplate).Spec.Metrics[0].Count = ptr.To(intstr.FromInt32(120)) // still running when disowned
	})
	f.app("own", 1, managedRoute("own"))
	f.rollout(newRollout("own", weight(20), analysisStep("own"), weight(50)))
	f.eventually("own", "initialized", time.Minute, hasReason("Healthy"))
	f.release("own", "v2")
	var runs v1alpha1.AnalysisRunList
	err := pollUntil(t, time.Minute, func() bool {
		return f.c.List(t.Context(), &runs, client.InNamespace(f.ns)) == nil && len(runs.Items) == 1
	})
	if err != nil {
		t.Fatalf("the step's run was never created: %v", err)
	}
	name := runs.Items[0].Name
	f.update(&v1alpha1.AnalysisRun{}, name, func(o client.Object) { o.SetOwnerReferences(nil) })

	ro := f.eventually("own", "held", 30*time.Second, hasReason("InvalidSpec"))
	if want := "analysisrun " + f.ns + "/" + name + " exists and is not this Rollout's"; !strings.Contains(ro.Status.Message, want) {
		t.Errorf("status message %q does not say %q", ro.Status.Message, want)
	}
	f.wantWeights("own", 80, 20) // held where it was, not promoted
	var run v1alpha1.AnalysisRun
	f.get(&run, name)
	if len(run.OwnerReferences) != 0 {
		t.Errorf("the run was adopted: %+v", run.OwnerReferences)
	}
}

// A run the API server refuses to create (a label value over 63
// characters) is not retried for ever in silence: the Rollout holds with
// the server's reason, and fixing the spec lets it go on.
func TestARunThatCannotBeCreatedShowsInStatus(t *testing.T) {
	f := given(t)
	successRate.WithLabelValues("lbl").Set(1)
	f.scraped("lbl")
	f.successTemplate()
	f.app("lbl", 1, managedRoute("lbl"))
	step := analysisStep("lbl")
	step.Analysis.AnalysisRunMetadata = &argo.AnalysisRunMetadata{Labels: map[string]string{"team": strings.Repeat("x", 64)}}
	f.rollout(newRollout("lbl", weight(20), step))
	f.eventually("lbl", "initialized", time.Minute, hasReason("Healthy"))
	canary := f.release("lbl", "v2")
	ro := f.eventually("lbl", "held", time.Minute, hasReason("InvalidSpec"))
	for _, want := range []string{"create analysisrun", "metadata.labels", "must be no more than 63"} {
		if !strings.Contains(ro.Status.Message, want) {
			t.Errorf("status message %q does not say %q", ro.Status.Message, want)
		}
	}
	f.update(&v1alpha1.Rollout{}, "lbl", func(o client.Object) {
		o.(*v1alpha1.Rollout).Spec.Steps[1].Analysis.AnalysisRunMetadata.Labels["team"] = "payments"
	})
	f.eventually("lbl", "promoted", time.Minute, stableAt(canary))
}
