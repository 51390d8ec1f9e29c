package reconciler_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tugboatdev/tugboat/analysis/reconciler"
	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/sandbox/cluster"
)

// TestJobMetrics: a job metric's measurement is its Job, created in the
// run's namespace and owned by the run, Successful when the Job completes
// and Failed when it fails (the test writes the Job's status as the Job
// controller would); a spec with a field batch/v1 lacks, or a service
// account not marked for analysis Jobs, errs naming it; and a run that ends
// stops its Jobs still running.
func TestJobMetrics(t *testing.T) {
	env := cluster.Start(t)
	startAnalysis(t, env, &reconciler.Reconciler{Measurer: &measurer{values: map[string]float64{`w="bad"`: 0.5}}})

	smoke := func(spec string) v1alpha1.Metric {
		return v1alpha1.Metric{Name: "smoke", Provider: v1alpha1.MetricProvider{Job: &v1alpha1.JobMetric{
			Metadata: v1alpha1.JobMetadata{Labels: map[string]string{"team": "shop"}},
			Spec:     runtime.RawExtension{Raw: []byte(spec)},
		}}}
	}
	const good = `{"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "smoke", "image": "curlimages/curl:8.10.1", "args": ["{{args.url}}"]}]}}}`
	start := func(name string, metrics ...v1alpha1.Metric) *v1alpha1.AnalysisRun {
		t.Helper()
		run := &v1alpha1.AnalysisRun{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
			Spec: v1alpha1.AnalysisRunSpec{Args: []argo.Argument{{Name: "url", Value: ptr.To("http://shop-canary/healthz")}}, Metrics: metrics}}
		if err := env.Client.Create(t.Context(), run); err != nil {
			t.Fatal(err)
		}
		return run
	}
	until := func(what string, cond func() bool) {
		t.Helper()
		if err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) { return cond(), nil }); err != nil {
			t.Fatalf("waiting for %s", what)
		}
	}
	runOf := func(name string) *v1alpha1.AnalysisRun {
		var run v1alpha1.AnalysisRun
		if err := env.Client.Get(t.Context(), client.ObjectKey{Namespace: "default", Name: name}, &run); err != nil {
			t.Fatal(err)
		}
		return &run
	}
	jobsOf := func(run *v1alpha1.AnalysisRun) []batchv1.Job {
		var list batchv1.JobList
		if err := env.Client.List(t.Context(), &list, client.InNamespace("default"), client.MatchingLabels{"tugboat.dev/analysisrun-uid": string(run.UID)}); err != nil {
			t.Fatal(err)
		}
		return list.Items
	}
	finish := func(job *batchv1.Job, ok bool) {
		t.Helper()
		err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
			if err := env.Client.Get(t.Context(), client.ObjectKeyFromObject(job), job); err != nil {
				return err
			}
			now := metav1.Now()
			job.Status.StartTime = &now
			if ok {
				job.Status.Succeeded, job.Status.CompletionTime = 1, &now
				job.Status.Conditions = []batchv1.JobCondition{
					{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, LastTransitionTime: now, LastProbeTime: now},
					{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, LastTransitionTime: now, LastProbeTime: now},
				}
			} else {
				job.Status.Failed = 1
				job.Status.Conditions = []batchv1.JobCondition{
					{Type: batchv1.JobFailureTarget, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded", Message: "Job has reached the specified backoff limit", LastTransitionTime: now, LastProbeTime: now},
					{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded", Message: "Job has reached the specified backoff limit", LastTransitionTime: now, LastProbeTime: now},
				}
			}
			return env.Client.Status().Update(t.Context(), job)
		})
		if err != nil {
			t.Fatal(err)
		}
	}

	// A namespace that has not opted in runs no job metric.
	run := start("not-opted-in", smoke(good))
	until("an error", func() bool { return runOf(run.Name).Status.Phase.Completed() })
	if got := runOf(run.Name); got.Status.Phase != argo.AnalysisPhaseError || !strings.Contains(got.Status.MetricResults[0].Message, "namespace default is not labelled tugboat.dev/analysis-jobs=true") {
		t.Errorf("a namespace not opted in: %s %+v", got.Status.Phase, got.Status.MetricResults)
	}
	err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		var ns corev1.Namespace
		if err := env.Client.Get(t.Context(), client.ObjectKey{Name: "default"}, &ns); err != nil {
			return err
		}
		ns.Labels["tugboat.dev/analysis-jobs"] = "true"
		return env.Client.Update(t.Context(), &ns)
	})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("a Job that completes is Successful, one that fails Failed", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			ok   bool
			want argo.AnalysisPhase
		}{{"smoke-passes", true, argo.AnalysisPhaseSuccessful}, {"smoke-fails", false, argo.AnalysisPhaseFailed}} {
			run := start(tc.name, smoke(good))
			until("the Job", func() bool { return len(jobsOf(run)) == 1 })
			job := jobsOf(run)[0]
			if !metav1.IsControlledBy(&job, run) || job.Labels["team"] != "shop" || ptr.Deref(job.Spec.ActiveDeadlineSeconds, 0) != 3600 ||
				job.Spec.Template.Spec.Containers[0].Args[0] != "http://shop-canary/healthz" {
				b, _ := json.Marshal(job)
				t.Errorf("the Job: %s", b)
			}
			if got := runOf(tc.name); got.Status.Phase.Completed() || len(got.Status.MetricResults) > 0 && len(got.Status.MetricResults[0].Measurements) > 0 {
				t.Errorf("measured before the Job ended: %+v", got.Status)
			}
			finish(&job, tc.ok)
			until(string(tc.want), func() bool { return runOf(tc.name).Status.Phase.Completed() })
			got := runOf(tc.name)
			if got.Status.Phase != tc.want || got.Status.MetricResults[0].Measurements[0].Phase != tc.want {
				t.Errorf("%s: %+v", tc.name, got.Status)
			}
			if !tc.ok && !strings.Contains(got.Status.MetricResults[0].Message, "BackoffLimitExceeded") {
				t.Errorf("a failed Job says why: %q", got.Status.MetricResults[0].Message)
			}
		}
	})

	t.Run("a spec batch/v1 cannot read, or an account not marked, errs naming it", func(t *testing.T) {
		if err := env.Client.Create(t.Context(), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "deployer"}}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
		for name, tc := range map[string]struct{ spec, want string }{
			"typo":    {`{"backofLimit": 0, "template": {"spec": {"containers": [{"name": "s", "image": "i"}]}}}`, `unknown field "backofLimit"`},
			"account": {`{"template": {"spec": {"serviceAccountName": "deployer", "restartPolicy": "Never", "containers": [{"name": "s", "image": "i"}]}}}`, "is not labelled tugboat.dev/analysis-jobs=true"},
			"refused": {`{"template": {"spec": {"restartPolicy": "Always", "containers": [{"name": "s", "image": "i"}]}}}`, "the API server refuses the Job"},
			"suspend": {`{"suspend": true, "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "s", "image": "i"}]}}}`, "provider.job.spec.suspend"},
			"host":    {`{"template": {"spec": {"hostNetwork": true, "restartPolicy": "Never", "containers": [{"name": "s", "image": "i"}]}}}`, "no host namespace"},
			"ttl":     {`{"ttlSecondsAfterFinished": 10, "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "s", "image": "i"}]}}}`, "provider.job.spec.ttlSecondsAfterFinished"},
		} {
			run := start("job-"+name, smoke(tc.spec))
			until("an error", func() bool { return runOf(run.Name).Status.Phase.Completed() })
			got := runOf(run.Name)
			if got.Status.Phase != argo.AnalysisPhaseError || !strings.Contains(got.Status.MetricResults[0].Message, tc.want) {
				t.Errorf("%s: %s %q, want Error with %q", name, got.Status.Phase, got.Status.MetricResults[0].Message, tc.want)
			}
			if jobs := jobsOf(run); len(jobs) != 0 {
				t.Errorf("%s: a Job was created: %v", name, jobs[0].Name)
			}
		}
	})

	t.Run("a run that ends stops its Jobs", func(t *testing.T) {
		bad := v1alpha1.Metric{Name: "errors", Provider: v1alpha1.MetricProvider{Prometheus: &v1alpha1.PrometheusMetric{Query: `up{w="bad"}`}}, SuccessCondition: "result[0] > 0.9"}
		run := start("ends-early", smoke(good), bad)
		until("the run to fail with its Job stopped", func() bool {
			got := runOf(run.Name)
			if got.Status.Phase != argo.AnalysisPhaseFailed {
				return false
			}
			for _, j := range jobsOf(run) {
				if j.DeletionTimestamp.IsZero() {
					return false
				}
			}
			return true
		})
	})
}
