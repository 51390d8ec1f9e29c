package reconciler

import (
	"testing"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/notify"
	"github.com/tugboatdev/tugboat/rollout"
)

func TestNoticeName(t *testing.T) {
	tests := []struct {
		name             string
		plan             rollout.Plan
		before           string
		stepInconclusive bool
		want             []string
	}{
		{"started", rollout.Plan{Outcome: rollout.Started}, "Healthy", false, []string{notify.Started}},
		{"restarted by a newer revision", rollout.Plan{Outcome: rollout.Restarted}, "Holding", false, []string{notify.Started}},
		{"retried", rollout.Plan{Outcome: rollout.Retried}, "AbortedByUser", false, []string{notify.Started}},
		{"steps changed", rollout.Plan{Outcome: rollout.StepsChanged}, "Holding", false, []string{notify.Started}},
		{"advanced", rollout.Plan{Outcome: rollout.Advanced}, "Holding", false, []string{notify.StepAdvanced}},
		{"a step advanced onto a pause", rollout.Plan{Outcome: rollout.WaitingForPromotion, Transition: rollout.Advanced}, "Holding", false, []string{notify.StepAdvanced, notify.Paused}},
		{"a step advanced onto a timed pause", rollout.Plan{Outcome: rollout.Holding, Transition: rollout.Advanced}, "Holding", false, []string{notify.StepAdvanced}},
		{"promoted", rollout.Plan{Outcome: rollout.Promoted}, "Promoting", false, []string{notify.Promoted}},
		{"aborted by a person", rollout.Plan{Outcome: rollout.AbortedByUser}, "Holding", false, []string{notify.Aborted}},
		{"aborted by the deadline", rollout.Plan{Outcome: rollout.ProgressDeadlineExceeded}, "WaitingForCanary", false, []string{notify.Aborted}},
		{"aborted by analysis", rollout.Plan{Outcome: rollout.AnalysisFailed}, "Holding", false, []string{notify.Aborted}},
		{"rolled back", rollout.Plan{Outcome: rollout.RolledBack, Transition: rollout.RolledBack}, "Healthy", false, []string{notify.RolledBack}},
		{"rolling back through the steps", rollout.Plan{Outcome: rollout.RollingBack}, "Healthy", false, []string{notify.RolledBack}},
		{"paused for promotion", rollout.Plan{Outcome: rollout.WaitingForPromotion}, "Holding", false, []string{notify.Paused}},
		{"paused by a person", rollout.Plan{Outcome: rollout.PausedByUser}, "Holding", false, []string{notify.Paused}},
		{"still paused", rollout.Plan{Outcome: rollout.WaitingForPromotion}, "WaitingForPromotion", false, nil},
		{"a pause right after a pause", rollout.Plan{Outcome: rollout.WaitingForPromotion, Transition: rollout.Advanced}, "WaitingForPromotion", false, []string{notify.StepAdvanced, notify.Paused}},
		{"still aborted, status changing meanwhile", rollout.Plan{Outcome: rollout.AnalysisFailed}, "AnalysisFailed", false, nil},
		{"aborted by a person after the analysis aborted", rollout.Plan{Outcome: rollout.AbortedByUser}, "AnalysisFailed", false, []string{notify.Aborted}},
		{"still promoted", rollout.Plan{Outcome: rollout.Promoted}, "Promoted", false, nil},
		{"step analysis inconclusive", rollout.Plan{Outcome: rollout.WaitingForPromotion}, "WaitingForAnalysis", true, []string{notify.Inconclusive}},
		{"background analysis inconclusive", rollout.Plan{Outcome: rollout.AnalysisInconclusive}, "Holding", false, []string{notify.Inconclusive}},
		{"holding is no news", rollout.Plan{Outcome: rollout.Holding}, "Advanced", false, nil},
		{"initialized is no news", rollout.Plan{Outcome: rollout.Initialized}, "Initializing", false, nil},
		{"other transitions are not subscribed to", rollout.Plan{Outcome: rollout.Cancelled}, "Holding", false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, noticeNames(tt.plan, tt.before, tt.stepInconclusive)); diff != "" {
				t.Errorf("noticeNames (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNoticeOccurrence(t *testing.T) {
	started := metav1.Unix(1700000000, 0)
	at := func(step int32, canary string) *v1alpha1.Rollout {
		return &v1alpha1.Rollout{
			ObjectMeta: metav1.ObjectMeta{Namespace: "prod", Name: "web", UID: "u"},
			Spec:       v1alpha1.RolloutSpec{Steps: make([]v1alpha1.Step, 2)},
			Status: v1alpha1.RolloutStatus{CanaryRevision: canary, StartedAt: &started, CurrentStepIndex: ptr.To(step),
				Analysis: []v1alpha1.RolloutAnalysis{{Step: ptr.To(step), Phase: argo.AnalysisPhaseInconclusive}}},
		}
	}
	advanced := rollout.Plan{Outcome: rollout.Advanced}
	e1 := notice(at(1, "r2"), at(0, "r2"), advanced, notify.StepAdvanced)
	e2 := notice(at(2, "r2"), at(1, "r2"), advanced, notify.StepAdvanced)
	again := notice(at(1, "r2"), at(0, "r2"), advanced, notify.StepAdvanced)
	if e1.ID() == e2.ID() || e1.ID() != again.ID() {
		t.Errorf("ids %s, %s, %s: want one per step, the same for the same step", e1.ID(), e2.ID(), again.ID())
	}
	// A promotion ends the attempt: status has no canary any more, and the
	// revision is the one base was rolling out.
	done := at(2, "")
	done.Status.CurrentStepIndex, done.Status.StartedAt = nil, nil
	p := notices(done, at(2, "r2"), rollout.Plan{Outcome: rollout.Promoted})
	if len(p) != 1 || p[0].Revision != "r2" || p[0].Name != notify.Promoted {
		t.Errorf("promoted: %+v", p)
	}
	inconclusive := notices(at(1, "r2"), at(1, "r2"), rollout.Plan{Outcome: rollout.WaitingForPromotion})
	if len(inconclusive) != 1 || inconclusive[0].Name != notify.Inconclusive {
		t.Errorf("a step held by its inconclusive analysis: %+v", inconclusive)
	}
	// A second inconclusive background analysis of the same step, after a
	// person went on from the first, is another occurrence.
	first := at(1, "r2")
	second := at(1, "r2")
	second.Status.BackgroundAttempt = 1
	bg := rollout.Plan{Outcome: rollout.AnalysisInconclusive}
	if a, b := notices(first, at(1, "r2"), bg), notices(second, at(1, "r2"), bg); len(a) != 1 || len(b) != 1 || a[0].ID() == b[0].ID() {
		t.Errorf("two inconclusive background analyses: %+v and %+v", a, b)
	}
	// Through the steps, a rollback's start and its arrival are two.
	pinned := at(0, "")
	pinned.Status.Rollback = &v1alpha1.RolloutRollback{Request: "q1", Revision: "r1"}
	start := notices(pinned, at(0, ""), rollout.Plan{Outcome: rollout.RollingBack})
	arrival := notices(pinned, at(0, ""), rollout.Plan{Outcome: rollout.RolledBack, Transition: rollout.RolledBack})
	if len(start) != 1 || len(arrival) != 1 || start[0].ID() == arrival[0].ID() || arrival[0].Revision != "r1" {
		t.Errorf("rollback through the steps: %+v then %+v", start, arrival)
	}
	both := notices(at(1, "r2"), at(0, "r2"), rollout.Plan{Outcome: rollout.WaitingForPromotion, Transition: rollout.Advanced})
	if len(both) != 2 || both[0].ID() == both[1].ID() || both[1].Reason != "WaitingForPromotion" || both[0].Reason != "Advanced" {
		t.Errorf("advanced onto a pause: %+v", both)
	}
}
