package status

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/rollout"
)

func TestSetAndPhase(t *testing.T) {
	tests := []struct {
		outcome   rollout.Outcome
		phase     v1alpha1.RolloutPhase
		trueConds []string
	}{
		{rollout.Healthy, v1alpha1.PhaseHealthy, []string{"Ready", "Healthy"}},
		{rollout.Promoted, v1alpha1.PhaseHealthy, []string{"Ready", "Healthy"}},
		{rollout.Advanced, v1alpha1.PhaseProgressing, []string{"Reconciling", "Progressing"}},
		{rollout.Holding, v1alpha1.PhaseProgressing, []string{"Reconciling", "Progressing"}},
		{rollout.WaitingForPromotion, v1alpha1.PhasePaused, []string{"Reconciling", "Progressing", "Paused"}},
		{rollout.PausedByUser, v1alpha1.PhasePaused, []string{"Reconciling", "Progressing", "Paused"}},
		{rollout.AbortedByUser, v1alpha1.PhaseDegraded, []string{"Stalled"}},
		{rollout.AnalysisFailed, v1alpha1.PhaseDegraded, []string{"Stalled"}},
		{rollout.InvalidSpec, v1alpha1.PhaseDegraded, []string{"Stalled"}},
	}
	all := []string{"Ready", "Reconciling", "Stalled", "Progressing", "Healthy", "Paused"}
	for _, tt := range tests {
		t.Run(string(tt.outcome), func(t *testing.T) {
			var conds []metav1.Condition
			Set(&conds, tt.outcome, "msg", 7)
			if got := Phase(conds); got != tt.phase {
				t.Errorf("Phase() = %q, want %q", got, tt.phase)
			}
			for _, typ := range all {
				c := meta.FindStatusCondition(conds, typ)
				if c == nil {
					t.Fatalf("no %s condition", typ)
				}
				want := metav1.ConditionFalse
				for _, on := range tt.trueConds {
					if on == typ {
						want = metav1.ConditionTrue
					}
				}
				if c.Status != want || c.Reason != string(tt.outcome) || c.ObservedGeneration != 7 || c.Message != "msg" {
					t.Errorf("%s = %+v, want status %s", typ, c, want)
				}
			}
			if Reason(conds) != string(tt.outcome) {
				t.Errorf("Reason() = %q", Reason(conds))
			}
		})
	}
}

func TestSetKeepsTransitionTimeWhenUnchanged(t *testing.T) {
	var conds []metav1.Condition
	Set(&conds, rollout.Holding, "pausing", 1)
	first := meta.FindStatusCondition(conds, "Reconciling").LastTransitionTime
	Set(&conds, rollout.Holding, "pausing", 1)
	if got := meta.FindStatusCondition(conds, "Reconciling").LastTransitionTime; !got.Equal(&first) {
		t.Errorf("transition time moved from %v to %v without a change", first, got)
	}
}

// A message of any length is recorded, cut to a size the API server takes.
func TestSetBoundsTheMessage(t *testing.T) {
	var conds []metav1.Condition
	Set(&conds, rollout.AnalysisFailed, strings.Repeat("x", 200000), 1)
	for _, c := range conds {
		if len(c.Message) > MaxMessage || !strings.HasSuffix(c.Message, "…") {
			t.Errorf("condition %s: message of %d bytes", c.Type, len(c.Message))
		}
	}
}
