package shadow

import (
	"fmt"
	"time"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
)

// Phase is where a preview stands.
type Phase string

// The phases of a preview. Succeeded, Failed, Inconclusive and Expired are
// final: the mirror is gone, and only a new Preview (or a new spec) mirrors
// again.
const (
	Pending      Phase = "Pending"      // not decided yet (its source is missing, say)
	Denied       Phase = "Denied"       // no rule of the source's policies allows it
	Mirroring    Phase = "Mirroring"    // copies flow; analysis compares it with production
	Succeeded    Phase = "Succeeded"    // analysis passed
	Failed       Phase = "Failed"       // analysis failed (or errored)
	Inconclusive Phase = "Inconclusive" // analysis could not decide
	Expired      Phase = "Expired"      // the ttl ran out before a verdict
)

// Final reports whether the phase no longer changes.
func (p Phase) Final() bool {
	switch p {
	case Succeeded, Failed, Inconclusive, Expired:
		return true
	}
	return false
}

// Progress is what status recorded of a preview.
type Progress struct {
	Phase   Phase
	Message string
	// Generation is the spec generation the phase is for: a new spec starts
	// over.
	Generation int64
}

// Observed is what the Preview reconciler saw.
type Observed struct {
	Now        time.Time
	Generation int64
	// Expires is when the ttl runs out.
	Expires time.Time
	// Problem, when set, is why the preview cannot be decided on yet (its
	// source route is missing): it stays Pending, without a mirror.
	Problem string
	// Decision is the source policies' answer.
	Decision Decision
	// Analysis is the verdict of the preview's AnalysisRun, empty while
	// there is none; HasAnalysis says the preview asks for one.
	HasAnalysis     bool
	Analysis        argo.AnalysisPhase
	AnalysisMessage string
}

// Outcome is the phase to record and whether the mirror is in force.
type Outcome struct {
	Phase   Phase
	Message string
	// Mirror: the preview's mirror belongs on the route; false removes it.
	Mirror bool
	// Measure: the preview's AnalysisRun should run.
	Measure bool
	// RequeueAfter is when to look again if nothing else happens first.
	RequeueAfter time.Duration
}

// Decide is the preview's outcome now. A final phase holds (for the spec
// it was reached with); otherwise the ttl, a problem, the policy and the
// analysis decide, in that order, so that a policy withdrawn or a ttl run
// out stops the copies at once whatever the analysis says.
func Decide(p Progress, o Observed) Outcome {
	switch {
	case p.Phase.Final() && p.Generation == o.Generation:
		return Outcome{Phase: p.Phase, Message: p.Message}
	case !o.Now.Before(o.Expires):
		return Outcome{Phase: Expired, Message: fmt.Sprintf("the ttl ran out at %s before a verdict; the mirror is gone", o.Expires.UTC().Format(time.RFC3339))}
	case o.Problem != "":
		return Outcome{Phase: Pending, Message: o.Problem, RequeueAfter: min(time.Minute, until(o))}
	case !o.Decision.Allowed:
		return Outcome{Phase: Denied, Message: "denied: " + o.Decision.Reason, RequeueAfter: until(o)}
	}
	mirroring := Outcome{Phase: Mirroring, Mirror: true, Measure: o.HasAnalysis, RequeueAfter: until(o),
		Message: fmt.Sprintf("receiving copies, as rule %s allows, until %s", o.Decision.Rule, o.Expires.UTC().Format(time.RFC3339))}
	if !o.HasAnalysis {
		mirroring.Message += "; no analysis asked for, so no verdict"
		return mirroring
	}
	switch o.Analysis {
	case argo.AnalysisPhaseSuccessful:
		return Outcome{Phase: Succeeded, Message: "analysis Successful: the preview behaves as production does; the mirror is gone"}
	case argo.AnalysisPhaseFailed, argo.AnalysisPhaseError:
		return Outcome{Phase: Failed, Message: fmt.Sprintf("analysis %s: %s; the mirror is gone", o.Analysis, o.AnalysisMessage)}
	case argo.AnalysisPhaseInconclusive:
		return Outcome{Phase: Inconclusive, Message: "analysis Inconclusive: " + o.AnalysisMessage + "; the mirror is gone"}
	}
	return mirroring
}

// until is how long until the ttl runs out, at least a second.
func until(o Observed) time.Duration { return max(time.Second, o.Expires.Sub(o.Now)) }
