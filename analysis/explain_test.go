package analysis

import (
	"strings"
	"testing"
	"time"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

func TestExplain(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *metav1.Time { return &metav1.Time{Time: now.Add(d)} }
	run := &v1alpha1.AnalysisRun{
		ObjectMeta: metav1.ObjectMeta{Name: "app-step1-x"},
		Spec: v1alpha1.AnalysisRunSpec{
			Args: []argo.Argument{{Name: "limit", Value: ptr.To("2")}, {Name: "token"}},
			Metrics: []v1alpha1.Metric{
				{Name: "success-rate", SuccessCondition: "result[0] >= 0.99", FailureLimit: ptr.To(intstr.FromString("{{args.limit}}")), Interval: "10s"},
				{Name: "latency", FailureCondition: "result[0] > 500", Count: ptr.To(intstr.FromInt32(3))},
				{Name: "not-measured-yet"},
			},
			DryRun: []argo.DryRun{{MetricName: "latency"}},
		},
		Status: v1alpha1.AnalysisRunStatus{
			Phase:   argo.AnalysisPhaseFailed,
			Message: "metric success-rate Failed",
			MetricResults: []argo.MetricResult{
				{
					Name: "success-rate", Phase: argo.AnalysisPhaseFailed, Message: "did not meet result[0] >= 0.99",
					Successful: 4, Failed: 3, Error: 1,
					Metadata: map[string]string{"ResolvedPrometheusQuery": `rate{app="a"}`},
					Measurements: []argo.Measurement{
						{Phase: argo.AnalysisPhaseSuccessful, Value: "[0.995]", FinishedAt: at(-20 * time.Second)},
						{Phase: argo.AnalysisPhaseFailed, Value: "[0.8]", FinishedAt: at(-10*time.Second + 300*time.Millisecond)},
					},
				},
				{Name: "latency", Phase: argo.AnalysisPhaseRunning, Successful: 1, Measurements: []argo.Measurement{{Value: "[120]", FinishedAt: at(-5 * time.Second)}}},
			},
		},
	}

	got := Explain(run, nil, now)
	if got.Run != "app-step1-x" || got.Phase != argo.AnalysisPhaseFailed || got.Message != "metric success-rate Failed" || len(got.Metrics) != 3 {
		t.Fatalf("explanation %+v", got)
	}
	sr, lat, none := got.Metrics[0], got.Metrics[1], got.Metrics[2]
	if sr.Phase != argo.AnalysisPhaseFailed || sr.Query != `rate{app="a"}` || sr.Value != "[0.8]" || sr.SuccessCondition != "result[0] >= 0.99" ||
		sr.Message != "did not meet result[0] >= 0.99" || sr.DryRun {
		t.Errorf("success-rate: %+v", sr)
	}
	if sr.Counters != (v1alpha1.MetricCounters{Successful: 4, Failed: 3, Error: 1}) {
		t.Errorf("success-rate counters %+v", sr.Counters)
	}
	if sr.Limits == nil || *sr.Limits != (v1alpha1.MetricLimits{FailureLimit: 2, InconclusiveLimit: 0, ConsecutiveErrorLimit: 4}) {
		t.Errorf("success-rate limits %+v (failureLimit from an argument)", sr.Limits)
	}
	if !sr.Since.Equal(at(-10 * time.Second)) {
		t.Errorf("success-rate since %v, want its last measurement to the second", sr.Since)
	}
	if !lat.DryRun || lat.FailureCondition != "result[0] > 500" || lat.Limits.Count != 3 || lat.Value != "[120]" {
		t.Errorf("latency: %+v", lat)
	}
	if none.Phase != argo.AnalysisPhasePending || !none.Since.Equal(&metav1.Time{Time: now}) || none.Limits.Count != 1 {
		t.Errorf("a metric without results: %+v", none)
	}

	// Later, the same phases keep their Since; a new phase takes its own.
	run.Status.MetricResults[1].Phase = argo.AnalysisPhaseSuccessful
	run.Status.MetricResults[1].Measurements = append(run.Status.MetricResults[1].Measurements, argo.Measurement{Value: "[130]", FinishedAt: at(time.Minute)})
	run.Status.MetricResults[0].Measurements = append(run.Status.MetricResults[0].Measurements, argo.Measurement{Value: "[0.7]", FinishedAt: at(time.Minute)})
	later := Explain(run, &got, now.Add(2*time.Minute))
	if !later.Metrics[0].Since.Equal(sr.Since) || later.Metrics[0].Value != "[0.7]" {
		t.Errorf("a metric still Failed: since %v value %s, want since %v and the new value", later.Metrics[0].Since, later.Metrics[0].Value, sr.Since)
	}
	if !later.Metrics[1].Since.Equal(at(time.Minute)) {
		t.Errorf("a metric newly Successful: since %v", later.Metrics[1].Since)
	}
	if !later.Metrics[2].Since.Equal(none.Since) {
		t.Errorf("a metric still Pending: since %v, want %v", later.Metrics[2].Since, none.Since)
	}
}

func TestExplainShortensLongQueries(t *testing.T) {
	long := strings.Repeat("x", 5000)
	run := &v1alpha1.AnalysisRun{
		Spec:   v1alpha1.AnalysisRunSpec{Metrics: []v1alpha1.Metric{{Name: "m"}}},
		Status: v1alpha1.AnalysisRunStatus{MetricResults: []argo.MetricResult{{Name: "m", Metadata: map[string]string{"ResolvedPrometheusQuery": long}}}},
	}
	q := Explain(run, nil, time.Now()).Metrics[0].Query
	if len(q) != maxShownQuery || !strings.HasSuffix(q, "…") {
		t.Errorf("query of %d bytes shown as %d bytes ending %q", len(long), len(q), q[len(q)-5:])
	}
}

// TestExplainShowsEachKindsQueries: a web, judge or burn-rate metric's
// queries are shown as a Prometheus metric's query is.
func TestExplainShowsEachKindsQueries(t *testing.T) {
	for _, key := range []string{MetadataPrometheusQuery, MetadataWebRequest, MetadataJudgeQueries, MetadataBurnRateQueries} {
		run := &v1alpha1.AnalysisRun{
			Spec:   v1alpha1.AnalysisRunSpec{Metrics: []v1alpha1.Metric{{Name: "m"}}},
			Status: v1alpha1.AnalysisRunStatus{MetricResults: []argo.MetricResult{{Name: "m", Metadata: map[string]string{key: "shown " + key}}}},
		}
		if q := Explain(run, nil, time.Now()).Metrics[0].Query; q != "shown "+key {
			t.Errorf("%s shown as %q", key, q)
		}
	}
}

func TestSameVerdict(t *testing.T) {
	base := func() []v1alpha1.RolloutAnalysis {
		return []v1alpha1.RolloutAnalysis{{
			Run: "r", Phase: argo.AnalysisPhaseRunning,
			Metrics: []v1alpha1.MetricExplanation{{Name: "m", Phase: argo.AnalysisPhaseRunning, Value: "[1]", Counters: v1alpha1.MetricCounters{Successful: 1}}},
		}}
	}
	for _, tt := range []struct {
		name   string
		change func(a []v1alpha1.RolloutAnalysis) []v1alpha1.RolloutAnalysis
		same   bool
	}{
		{"unchanged", func(a []v1alpha1.RolloutAnalysis) []v1alpha1.RolloutAnalysis { return a }, true},
		{"another success, another value", func(a []v1alpha1.RolloutAnalysis) []v1alpha1.RolloutAnalysis {
			a[0].Metrics[0].Counters.Successful, a[0].Metrics[0].Value = 2, "[0.9]"
			return a
		}, true},
		{"pending to running", func(a []v1alpha1.RolloutAnalysis) []v1alpha1.RolloutAnalysis {
			a[0].Phase, a[0].Metrics[0].Phase = argo.AnalysisPhasePending, argo.AnalysisPhasePending
			return a
		}, true},
		{"a failure counted", func(a []v1alpha1.RolloutAnalysis) []v1alpha1.RolloutAnalysis {
			a[0].Metrics[0].Counters.Failed = 1
			return a
		}, false},
		{"an inconclusive counted", func(a []v1alpha1.RolloutAnalysis) []v1alpha1.RolloutAnalysis {
			a[0].Metrics[0].Counters.Inconclusive = 1
			return a
		}, false},
		{"an error counted", func(a []v1alpha1.RolloutAnalysis) []v1alpha1.RolloutAnalysis {
			a[0].Metrics[0].Counters.Error, a[0].Metrics[0].Counters.ConsecutiveError = 1, 1
			return a
		}, false},
		{"metric verdict", func(a []v1alpha1.RolloutAnalysis) []v1alpha1.RolloutAnalysis {
			a[0].Metrics[0].Phase = argo.AnalysisPhaseSuccessful
			return a
		}, false},
		{"run verdict", func(a []v1alpha1.RolloutAnalysis) []v1alpha1.RolloutAnalysis {
			a[0].Phase = argo.AnalysisPhaseInconclusive
			return a
		}, false},
		{"a new run with nothing decided yet waits for the next write", func(a []v1alpha1.RolloutAnalysis) []v1alpha1.RolloutAnalysis {
			return append(a, v1alpha1.RolloutAnalysis{Run: "s", Phase: argo.AnalysisPhasePending})
		}, true},
		{"a new run with a verdict", func(a []v1alpha1.RolloutAnalysis) []v1alpha1.RolloutAnalysis {
			return append(a, v1alpha1.RolloutAnalysis{Run: "s", Phase: argo.AnalysisPhaseFailed})
		}, false},
		{"a new run with a failure counted", func(a []v1alpha1.RolloutAnalysis) []v1alpha1.RolloutAnalysis {
			return append(a, v1alpha1.RolloutAnalysis{Run: "s", Metrics: []v1alpha1.MetricExplanation{{Name: "m", Counters: v1alpha1.MetricCounters{Failed: 1}}}})
		}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := SameVerdict(base(), tt.change(base())); got != tt.same {
				t.Errorf("SameVerdict = %v, want %v", got, tt.same)
			}
		})
	}
}
