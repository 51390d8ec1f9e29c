package status

import (
	"strings"
	"testing"
	"time"

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

func TestSetRolledBack(t *testing.T) {
	since := metav1.NewTime(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
	pin := &v1alpha1.RolloutRollback{Request: "r1", Revision: "s0", Number: 1, From: "s2", Target: "s2", Reason: "bad schema", RequestedBy: "jane", Since: since}
	var conds []metav1.Condition
	SetRolledBack(&conds, nil, 1)
	if len(conds) != 0 {
		t.Errorf("never rolled back: %+v", conds)
	}
	for _, tt := range []struct {
		name   string
		pin    *v1alpha1.RolloutRollback
		status metav1.ConditionStatus
		reason string
		says   string
	}{
		{"on its way through the steps: not rolled back yet", func() *v1alpha1.RolloutRollback { p := *pin; p.ThroughSteps = true; return &p }(),
			metav1.ConditionFalse, "RollingBack", "rolling back to revision 1 (s0) from s2 through the steps by jane: bad schema"},
		{"holds", pin, metav1.ConditionTrue, "RolledBack", "revision 1 (s0), rolled back to from s2 by jane: bad schema; pinned since 2026-12-01T09:00:00Z"},
		{"ended", nil, metav1.ConditionFalse, "Unpinned", "no rollback holds"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			SetRolledBack(&conds, tt.pin, 2)
			c := meta.FindStatusCondition(conds, ConditionRolledBack)
			if c == nil || c.Status != tt.status || c.Reason != tt.reason || !strings.Contains(c.Message, tt.says) {
				t.Errorf("%+v", c)
			}
		})
	}
}
