package shadow

import (
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tugboatdev/tugboat/analysis"
)

// Condition types of a Preview: Ready, Reconciling and Stalled as kstatus
// reads them, and Mirroring, whether copies flow.
const (
	ConditionReady       = "Ready"
	ConditionReconciling = "Reconciling"
	ConditionStalled     = "Stalled"
	ConditionMirroring   = "Mirroring"
)

// SetConditions records an outcome in a Preview's conditions: Ready once it
// Succeeded, Stalled once it ended any other way or is Denied (a person or a
// policy must act), Reconciling while it is on its way, Mirroring while its
// mirror is in force. Each condition's reason is the phase.
func SetConditions(conds *[]metav1.Condition, o Outcome, generation int64) {
	final := o.Phase.Final() || o.Phase == Denied
	for _, c := range []struct {
		typ string
		on  bool
	}{
		{ConditionReady, o.Phase == Succeeded},
		{ConditionReconciling, !final},
		{ConditionStalled, final && o.Phase != Succeeded},
		{ConditionMirroring, o.Mirror},
	} {
		status := metav1.ConditionFalse
		if c.on {
			status = metav1.ConditionTrue
		}
		meta.SetStatusCondition(conds, metav1.Condition{
			Type: c.typ, Status: status, Reason: string(o.Phase), Message: analysis.Shorten(o.Message, 1024), ObservedGeneration: generation,
		})
	}
}
