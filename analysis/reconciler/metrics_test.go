package reconciler

import (
	"testing"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

func TestRolloutOf(t *testing.T) {
	owner := metav1.OwnerReference{APIVersion: "tugboat.dev/v1alpha1", Kind: "Rollout", Name: "web", UID: "u", Controller: ptr.To(true)}
	tests := []struct {
		name string
		meta metav1.ObjectMeta
		want string
	}{
		{name: "the controlling Rollout", meta: metav1.ObjectMeta{Name: "web-step1-x", OwnerReferences: []metav1.OwnerReference{owner}, Labels: map[string]string{v1alpha1.LabelRollout: "other"}}, want: "web"},
		{name: "the label without an owner", meta: metav1.ObjectMeta{Name: "web-step1-x", Labels: map[string]string{v1alpha1.LabelRollout: "web"}}, want: "web"},
		{name: "an owner of another kind is no Rollout", meta: metav1.ObjectMeta{Name: "ci-check", OwnerReferences: []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "Job", Name: "j", Controller: ptr.To(true)}}}, want: "ci-check"},
		{name: "a run of its own", meta: metav1.ObjectMeta{Name: "ci-check"}, want: "ci-check"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := rolloutOf(&v1alpha1.AnalysisRun{ObjectMeta: tt.meta}); got != tt.want {
				t.Errorf("rolloutOf = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestOneNumber(t *testing.T) {
	tests := []struct {
		value string
		want  float64
		ok    bool
	}{
		{value: "[0.8]", want: 0.8, ok: true},
		{value: "0.999", want: 0.999, ok: true},
		{value: "[-3e+06]", want: -3e6, ok: true},
		{value: "[1,2]"},
		{value: "[1,2,…] (12 values, min 1, max 9)"},
		{value: "[]"},
		{value: ""},
		{value: `{"state":"approved"}`},
	}
	for _, tt := range tests {
		got, ok := oneNumber(tt.value)
		if ok != tt.ok || got != tt.want {
			t.Errorf("oneNumber(%q) = %v, %v; want %v, %v", tt.value, got, ok, tt.want, tt.ok)
		}
	}
}

// run is an AnalysisRun of Rollout ro with one metric, measured last as value.
func run(name, ro string, phase argo.AnalysisPhase, value string) *v1alpha1.AnalysisRun {
	return &v1alpha1.AnalysisRun{
		ObjectMeta: metav1.ObjectMeta{Namespace: "prod", Name: name, Labels: map[string]string{v1alpha1.LabelRollout: ro}},
		Spec: v1alpha1.AnalysisRunSpec{Metrics: []v1alpha1.Metric{
			{Name: "success-rate", SuccessCondition: "result[0] >= 0.99", FailureCondition: "result[0] < 0.9"},
			{Name: "approved", SuccessCondition: "result.state == 'approved'"},
		}},
		Status: v1alpha1.AnalysisRunStatus{Phase: phase, MetricResults: []argo.MetricResult{
			{Name: "success-rate", Measurements: []argo.Measurement{{Value: "[1]"}, {Value: value}}},
		}},
	}
}

// Counters carry the run's namespace and Rollout, count each write's news
// once, and go when the Rollout's last run goes.
func TestCountersNameTheRollout(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	a, b := run("web-step1-a", "web", argo.AnalysisPhaseRunning, "[0.8]"), run("web-background-b", "web", argo.AnalysisPhaseRunning, "[0.8]")
	m.seen(a)
	m.seen(b)
	if v := testutil.ToFloat64(m.measurements.WithLabelValues("prod", "web", "Failed")); v != 0 {
		t.Errorf("before any measurement: %v Failed", v)
	}
	before := a.Status.DeepCopy()
	a.Status.MetricResults[0].Failed, a.Status.MetricResults[0].Successful = 2, 1
	a.Status.Phase = argo.AnalysisPhaseFailed
	m.written(a, before)
	m.written(a, a.Status.DeepCopy()) // written again: nothing new
	for _, c := range []struct {
		vec         *prometheus.CounterVec
		phase       string
		want        float64
		description string
	}{
		{m.measurements, "Failed", 2, "failed measurements"},
		{m.measurements, "Successful", 1, "successful measurements"},
		{m.runs, "Failed", 1, "failed runs"},
		{m.runs, "Successful", 0, "successful runs"},
	} {
		if v := testutil.ToFloat64(c.vec.WithLabelValues("prod", "web", c.phase)); v != c.want {
			t.Errorf("%s of prod/web: %v, want %v", c.description, v, c.want)
		}
	}

	m.gone(types.NamespacedName{Namespace: "prod", Name: a.Name})
	if v := testutil.ToFloat64(m.measurements.WithLabelValues("prod", "web", "Failed")); v != 2 {
		t.Errorf("with a run of web left, its count went: %v", v)
	}
	m.gone(types.NamespacedName{Namespace: "prod", Name: b.Name})
	if n := testutil.CollectAndCount(m.measurements) + testutil.CollectAndCount(m.runs); n != 0 {
		t.Errorf("web's last run deleted: %d series left", n)
	}
}

// The value gauge shows a running run's last value when it is one number,
// with its thresholds; nothing once the run has a verdict or is deleted.
func TestMetricValueAndThresholds(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	r := run("web-step1-a", "web", argo.AnalysisPhaseRunning, "[0.8]")
	m.measured(r)
	if v := testutil.ToFloat64(m.value.WithLabelValues("prod", "web", "web-step1-a", "success-rate")); v != 0.8 {
		t.Errorf("value %v, want 0.8", v)
	}
	if n := testutil.CollectAndCount(m.value); n != 1 {
		t.Errorf("%d value series, want 1 (the metric not measured yet has none)", n)
	}
	if v := testutil.ToFloat64(m.threshold.WithLabelValues("prod", "web", "web-step1-a", "success-rate", "success", ">=")); v != 0.99 {
		t.Errorf("success threshold %v, want 0.99", v)
	}
	if v := testutil.ToFloat64(m.threshold.WithLabelValues("prod", "web", "web-step1-a", "success-rate", "failure", "<")); v != 0.9 {
		t.Errorf("failure threshold %v, want 0.9", v)
	}
	if n := testutil.CollectAndCount(m.threshold); n != 2 {
		t.Errorf("%d threshold series, want 2 (a condition on a field has none)", n)
	}

	r.Status.MetricResults[0].Measurements = append(r.Status.MetricResults[0].Measurements, argo.Measurement{Value: "[0.9,0.95]"})
	m.measured(r)
	if n := testutil.CollectAndCount(m.value); n != 0 {
		t.Errorf("a vector of two: %d value series, want none", n)
	}

	r.Status.MetricResults[0].Measurements = append(r.Status.MetricResults[0].Measurements, argo.Measurement{Value: "[0.97]"})
	m.measured(r)
	r.Status.Phase = argo.AnalysisPhaseSuccessful
	m.measured(r)
	if n := testutil.CollectAndCount(m.value) + testutil.CollectAndCount(m.threshold); n != 0 {
		t.Errorf("decided: %d series, want none", n)
	}

	r.Status.Phase = argo.AnalysisPhaseRunning
	m.measured(r)
	m.gone(types.NamespacedName{Namespace: "prod", Name: r.Name})
	if n := testutil.CollectAndCount(m.value) + testutil.CollectAndCount(m.threshold); n != 0 {
		t.Errorf("deleted: %d series, want none", n)
	}
}
