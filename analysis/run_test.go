package analysis

import (
	"strings"
	"testing"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	"github.com/google/go-cmp/cmp"
	"k8s.io/utils/ptr"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

func TestRunSpec(t *testing.T) {
	sr := v1alpha1.AnalysisTemplateSpec{
		Args:    []argo.Argument{{Name: "workload"}, {Name: "window", Value: ptr.To("1m")}},
		Metrics: []v1alpha1.Metric{{Name: "success-rate"}},
	}
	lat := v1alpha1.AnalysisTemplateSpec{
		Args:    []argo.Argument{{Name: "workload"}, {Name: "max-ms", Value: ptr.To("500")}},
		Metrics: []v1alpha1.Metric{{Name: "latency"}},
		DryRun:  []argo.DryRun{{MetricName: "latency"}},
	}
	got, err := RunSpec([]v1alpha1.AnalysisTemplateSpec{sr, lat}, []argo.Argument{{Name: "workload", Value: ptr.To("podinfo")}, {Name: "window", Value: ptr.To("2m")}})
	if err != nil {
		t.Fatal(err)
	}
	want := v1alpha1.AnalysisRunSpec{
		Metrics: []v1alpha1.Metric{{Name: "success-rate"}, {Name: "latency"}},
		Args: []argo.Argument{{Name: "workload", Value: ptr.To("podinfo")}, {Name: "window", Value: ptr.To("2m")},
			{Name: "max-ms", Value: ptr.To("500")}},
		DryRun: []argo.DryRun{{MetricName: "latency"}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("RunSpec (-want +got):\n%s", diff)
	}

	_, err = RunSpec([]v1alpha1.AnalysisTemplateSpec{sr, sr}, nil)
	if err == nil || !strings.Contains(err.Error(), `metric "success-rate" is defined by more than one template`) || !strings.Contains(err.Error(), `argument "workload" has no value`) {
		t.Errorf("want clash and missing-value errors, got %v", err)
	}
}
