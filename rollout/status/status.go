// Package status turns a rollout's outcome into the Rollout's conditions and
// derives its phase from them. It is pure.
//
// Ready, Reconciling and Stalled follow kstatus, so that Flux and Argo CD
// read a Rollout right: Stalled is a failure (aborted or invalid), not "still
// working". Progressing, Healthy and Paused are Tugboat's own, positive-polarity.
package status

import (
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tugboatdev/tugboat/analysis"
	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/rollout"
)

// MaxMessage bounds a condition's message, well inside the API's 32768, so
// that a verdict explained at length is still recorded.
const MaxMessage = 4096

// Set records outcome and message in conds for the given spec generation.
// Only conditions whose status, reason or message change get a new
// transition time, so a reconcile that changes nothing writes nothing.
func Set(conds *[]metav1.Condition, outcome rollout.Outcome, message string, generation int64) {
	message = Shorten(message)
	atRest := outcome.IsAtRest()
	failed := outcome.IsFailure()
	working := !atRest && !failed
	for _, c := range []struct {
		typ string
		on  bool
	}{
		{v1alpha1.ConditionReady, atRest},
		{v1alpha1.ConditionReconciling, working},
		{v1alpha1.ConditionStalled, failed},
		{v1alpha1.ConditionProgressing, working},
		{v1alpha1.ConditionHealthy, atRest},
		{v1alpha1.ConditionPaused, outcome.WaitsForPerson()},
	} {
		meta.SetStatusCondition(conds, metav1.Condition{
			Type:               c.typ,
			Status:             boolStatus(c.on),
			Reason:             string(outcome),
			Message:            message,
			ObservedGeneration: generation,
		})
	}
}

// ConditionRolledBack is True while a rollback pins the Rollout, with who
// asked, why and since when; False (reason RollingBack) while one goes
// through the steps, and once a pin has ended.
const ConditionRolledBack = "RolledBack"

// SetRolledBack records the rollback in force, if any, in conds. A Rollout
// never rolled back has no such condition.
func SetRolledBack(conds *[]metav1.Condition, pin *v1alpha1.RolloutRollback, generation int64) {
	if pin == nil {
		if meta.FindStatusCondition(*conds, ConditionRolledBack) == nil {
			return
		}
		meta.SetStatusCondition(conds, metav1.Condition{Type: ConditionRolledBack, Status: metav1.ConditionFalse, Reason: "Unpinned",
			Message: "no rollback holds", ObservedGeneration: generation})
		return
	}
	by := ""
	if pin.RequestedBy != "" {
		by += " by " + pin.RequestedBy
	}
	if pin.Reason != "" {
		by += ": " + pin.Reason
	}
	if pin.ThroughSteps {
		// On its way: the revision rolled back from still serves.
		msg := fmt.Sprintf("rolling back to revision %d (%s) from %s through the steps%s, asked at %s", pin.Number, pin.Revision, pin.From, by, pin.Since.UTC().Format(time.RFC3339))
		meta.SetStatusCondition(conds, metav1.Condition{Type: ConditionRolledBack, Status: metav1.ConditionFalse, Reason: "RollingBack", Message: Shorten(msg), ObservedGeneration: generation})
		return
	}
	msg := fmt.Sprintf("revision %d (%s), rolled back to from %s%s", pin.Number, pin.Revision, pin.From, by)
	msg += fmt.Sprintf("; pinned since %s while the target's template is %s", pin.Since.UTC().Format(time.RFC3339), pin.Target)
	c := metav1.Condition{Type: ConditionRolledBack, Status: metav1.ConditionTrue, Reason: "RolledBack", Message: Shorten(msg), ObservedGeneration: generation}
	if old := meta.FindStatusCondition(*conds, ConditionRolledBack); old == nil || old.Status != metav1.ConditionTrue || old.Message != c.Message {
		c.LastTransitionTime = pin.Since // since the rollback, not since this write
	}
	meta.SetStatusCondition(conds, c)
}

// Shorten cuts a message to MaxMessage bytes.
func Shorten(message string) string { return analysis.Shorten(message, MaxMessage) }

// Phase is the one-word summary of the conditions shown by kubectl get.
func Phase(conds []metav1.Condition) v1alpha1.RolloutPhase {
	switch {
	case meta.IsStatusConditionTrue(conds, v1alpha1.ConditionStalled):
		return v1alpha1.PhaseDegraded
	case meta.IsStatusConditionTrue(conds, v1alpha1.ConditionPaused):
		return v1alpha1.PhasePaused
	case meta.IsStatusConditionTrue(conds, v1alpha1.ConditionReady):
		return v1alpha1.PhaseHealthy
	case len(conds) == 0:
		return ""
	}
	return v1alpha1.PhaseProgressing
}

// Reason returns the outcome last recorded, from the Ready condition.
func Reason(conds []metav1.Condition) string {
	if c := meta.FindStatusCondition(conds, v1alpha1.ConditionReady); c != nil {
		return c.Reason
	}
	return ""
}

func boolStatus(b bool) metav1.ConditionStatus {
	if b {
		return metav1.ConditionTrue
	}
	return metav1.ConditionFalse
}
