package notify

import (
	"testing"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	"github.com/google/go-cmp/cmp"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

func promoted() Event {
	return Event{
		Name:       Promoted,
		Object:     Object{Kind: "Rollout", Namespace: "prod", Name: "podinfo", UID: "u-1"},
		Occurrence: "5f8c/1700000000",
		Revision:   "5f8c",
	}
}

func TestIDIsDeterministicPerOccurrence(t *testing.T) {
	a, b := promoted(), promoted()
	b.Message, b.Time = "said differently", b.Time.Add(1)
	if a.ID() != b.ID() {
		t.Errorf("the same occurrence has ids %s and %s", a.ID(), b.ID())
	}
	for name, change := range map[string]func(*Event){
		"another event":      func(e *Event) { e.Name = Aborted },
		"another occurrence": func(e *Event) { e.Occurrence = "5f8c/1700000999" },
		"another object":     func(e *Event) { e.Object.UID = "u-2" },
		"another kind":       func(e *Event) { e.Object.Kind = "Preview" },
	} {
		c := promoted()
		change(&c)
		if c.ID() == a.ID() {
			t.Errorf("%s: same id %s", name, a.ID())
		}
	}
	if len(a.ID()) != 32 {
		t.Errorf("id %q: want 32 hex digits", a.ID())
	}
}

func TestTypeSourceHeadline(t *testing.T) {
	tests := []struct {
		name                        string
		e                           Event
		typ, source, subj, headline string
	}{{
		name:     "rollout promoted",
		e:        promoted(),
		typ:      "dev.tugboat.rollout.promoted.v1",
		source:   "/apis/tugboat.dev/v1alpha1/namespaces/prod/rollouts/podinfo",
		subj:     "prod/podinfo",
		headline: "Rollout prod/podinfo: revision 5f8c promoted",
	}, {
		name:     "camel-case event lowers in the type",
		e:        Event{Name: StepAdvanced, Object: Object{Kind: "Rollout", Namespace: "a", Name: "b"}},
		typ:      "dev.tugboat.rollout.stepadvanced.v1",
		source:   "/apis/tugboat.dev/v1alpha1/namespaces/a/rollouts/b",
		subj:     "a/b",
		headline: "Rollout a/b: advanced a step",
	}, {
		name:     "rolled back to a revision",
		e:        Event{Name: RolledBack, Reason: "RolledBack", Revision: "6d74", Object: Object{Kind: "Rollout", Namespace: "a", Name: "b"}},
		typ:      "dev.tugboat.rollout.rolledback.v1",
		source:   "/apis/tugboat.dev/v1alpha1/namespaces/a/rollouts/b",
		subj:     "a/b",
		headline: "Rollout a/b: rolled back to revision 6d74",
	}, {
		name:     "rolling back through the steps",
		e:        Event{Name: RolledBack, Reason: "RollingBack", Revision: "6d74", Object: Object{Kind: "Rollout", Namespace: "a", Name: "b"}},
		typ:      "dev.tugboat.rollout.rolledback.v1",
		source:   "/apis/tugboat.dev/v1alpha1/namespaces/a/rollouts/b",
		subj:     "a/b",
		headline: "Rollout a/b: rolling back to revision 6d74 through the steps",
	}, {
		name:     "preview",
		e:        Event{Name: Failed, Object: Object{Kind: "Preview", Namespace: "pr-7", Name: "web"}, Revision: "x"},
		typ:      "dev.tugboat.preview.failed.v1",
		source:   "/apis/tugboat.dev/v1alpha1/namespaces/pr-7/previews/web",
		subj:     "pr-7/web",
		headline: "Preview pr-7/web: failed its analysis",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := []string{tt.e.Type(), tt.e.Source(), tt.e.Subject(), tt.e.Headline()}
			if diff := cmp.Diff([]string{tt.typ, tt.source, tt.subj, tt.headline}, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestWants(t *testing.T) {
	tests := []struct {
		name   string
		events []string
		event  string
		want   bool
	}{
		{"empty list wants everything", nil, Promoted, true},
		{"listed", []string{Aborted, Promoted}, Promoted, true},
		{"not listed", []string{Aborted}, Promoted, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Wants(tt.events, tt.event); got != tt.want {
				t.Errorf("Wants(%v, %s) = %v", tt.events, tt.event, got)
			}
		})
	}
}

func TestFindings(t *testing.T) {
	runs := []v1alpha1.RolloutAnalysis{{Run: "r1", Metrics: []v1alpha1.MetricExplanation{
		{Name: "success-rate", Phase: argo.AnalysisPhaseFailed, Value: "[0.91]", SuccessCondition: "result[0] >= 0.99", Message: "below"},
		{Name: "latency", Phase: argo.AnalysisPhaseSuccessful, Value: "[120]", FailureCondition: "result[0] > 500"},
	}}}
	tests := []struct {
		name string
		runs []v1alpha1.RolloutAnalysis
		want []Finding
	}{{
		name: "the failed metric only",
		runs: runs,
		want: []Finding{{Run: "r1", Metric: "success-rate", Phase: "Failed", Value: "[0.91]", Condition: "success: result[0] >= 0.99", Message: "below"}},
	}, {
		name: "every metric when none went wrong",
		runs: []v1alpha1.RolloutAnalysis{{Run: "r1", Metrics: runs[0].Metrics[1:]}},
		want: []Finding{{Run: "r1", Metric: "latency", Phase: "Successful", Value: "[120]", Condition: "failure: result[0] > 500"}},
	}, {
		name: "no analysis",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, Findings(tt.runs)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
