package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/sandbox/demo"
)

// TestSmokeTestJob: given podinfo in a namespace of its own, whose steps
// run examples/smoke-test's Job after the first weight and whose background
// analysis runs examples/load-test's Job through the canary, when a
// release's smoke test passes the release is promoted, and when it fails
// (the sandbox's Job pod exits 1) the canary is aborted with the Job named.
func TestSmokeTestJob(t *testing.T) {
	ctx := t.Context()
	ns := "e2e-smoke"
	// Job metrics create pods: the namespace opts in.
	s := podinfoIn(t, ns, map[string]string{"tugboat.dev/analysis-jobs": "true"}, []string{"smoke-test", "load-test"}, func(spec *v1alpha1.RolloutSpec) {
		// Only the Jobs gate this Rollout: no Prometheus analysis.
		spec.Analysis = &v1alpha1.BackgroundAnalysis{Analysis: v1alpha1.Analysis{
			Templates: []v1alpha1.AnalysisTemplateRef{{TemplateName: "load-test"}},
			Args:      []argo.AnalysisRunArgument{{Name: "canary-service", Value: "podinfo-canary"}},
		}}
		spec.Steps = []v1alpha1.Step{
			{SetWeight: ptr.To[int32](20)},
			{Analysis: &v1alpha1.Analysis{
				Templates: []v1alpha1.AnalysisTemplateRef{{TemplateName: "smoke-test"}},
				Args:      []argo.AnalysisRunArgument{{Name: "canary-service", Value: "podinfo-canary"}},
			}},
			{SetWeight: ptr.To[int32](50)},
		}
	})

	passes := demo.Release{Name: "smoke passes", Image: "ghcr.io/stefanprodan/podinfo:6.7.3", ErrorRate: "0.001", LatencyMs: "45", Want: demo.Promoted}
	s.when(passes).then(demo.Promoted, func(ro *v1alpha1.Rollout) error {
		if err := lastJob(ctx, ro, "load-test", batchv1.JobComplete); err != nil {
			return err
		}
		return lastJob(ctx, ro, "smoke-test", batchv1.JobComplete)
	})

	// The smoke test fails: the sandbox fails a pod so annotated.
	err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		var tpl v1alpha1.AnalysisTemplate
		if err := box.Client().Get(ctx, client.ObjectKey{Namespace: ns, Name: "smoke-test"}, &tpl); err != nil {
			return err
		}
		raw := strings.Replace(string(tpl.Spec.Metrics[0].Provider.Job.Spec.Raw), `"template":{`, `"template":{"metadata":{"annotations":{"sandbox.tugboat.dev/exit-code":"1"}},`, 1)
		tpl.Spec.Metrics[0].Provider.Job.Spec = runtime.RawExtension{Raw: []byte(raw)}
		return box.Client().Update(ctx, &tpl)
	})
	if err != nil {
		t.Fatal(err)
	}
	fails := demo.Release{Name: "smoke fails", Image: "ghcr.io/stefanprodan/podinfo:6.7.4", ErrorRate: "0.001", LatencyMs: "45", Want: demo.Aborted}
	s.when(fails).then(demo.Aborted, func(ro *v1alpha1.Rollout) error {
		t.Logf("aborted: %s", ro.Status.Message)
		if !strings.Contains(ro.Status.Message, "metric smoke Failed") || !strings.Contains(ro.Status.Message, "BackoffLimitExceeded") {
			return fmt.Errorf("the abort does not name the failed Job: %q", ro.Status.Message)
		}
		return lastJob(ctx, ro, "smoke-test", batchv1.JobFailed)
	})
}

// lastJob checks that the last Job of an example (its component label)
// ended as want, in the Rollout's namespace, owned by its AnalysisRun.
func lastJob(ctx context.Context, ro *v1alpha1.Rollout, component string, want batchv1.JobConditionType) error {
	var jobs batchv1.JobList
	if err := box.Client().List(ctx, &jobs, client.InNamespace(ro.Namespace), client.HasLabels{"tugboat.dev/analysisrun-uid"},
		client.MatchingLabels{"app.kubernetes.io/component": component}); err != nil {
		return err
	}
	var last *batchv1.Job
	for i := range jobs.Items {
		if last == nil || jobs.Items[i].CreationTimestamp.After(last.CreationTimestamp.Time) {
			last = &jobs.Items[i]
		}
	}
	if last == nil {
		return fmt.Errorf("no %s Job in %s", component, ro.Namespace)
	}
	owner := metav1.GetControllerOf(last)
	if owner == nil || owner.Kind != "AnalysisRun" {
		return fmt.Errorf("job %s is not owned by an AnalysisRun: %v", last.Name, last.OwnerReferences)
	}
	for _, c := range last.Status.Conditions {
		if c.Type == want && c.Status == corev1.ConditionTrue {
			return nil
		}
	}
	return fmt.Errorf("job %s: %+v, want %s", last.Name, last.Status.Conditions, want)
}
