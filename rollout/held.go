package rollout

import (
	"fmt"
	"time"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
)

// held is the plan for a rollout with a problem only a person can fix. It
// stays where it is, with what it did reported, except that aborts still
// act: a person's, a failed background analysis, the progress deadline, and
// a target gone mid-rollout (which takes the canary's pods with it).
func held(s Spec, p Progress, o Observed) Plan {
	why, msg := o.Problem.Outcome, o.Problem.Message
	stop := Plan{Outcome: why, Message: msg, Next: p, RequeueAfter: 30 * time.Second}
	if !p.InRollout() {
		return stop
	}
	if p.Abort != nil {
		if p.Abort.Reason == why {
			stop.Message = p.Abort.Message // already said, with what was done
		}
		return stop
	}
	var plan Plan
	since := p.NotReadySince
	if since.IsZero() {
		since = o.Now
	}
	switch {
	case why == TargetNotFound && p.RollingBackThroughSteps():
		// The rollback canary's pods are there, but what they stand in for
		// is not: the rollback stops, traffic on stable.
		plan = abort(p, o, TargetNotFound, msg+" while rolling back through the steps, so the rollback stops")
	case why == TargetNotFound:
		plan = abort(p, o, TargetNotFound, msg+" mid-rollout, so the canary has no pods")
	case o.Requests.Abort != "":
		plan = abort(p, o, AbortedByUser, "aborted on request while "+msg)
	case o.Background == argo.AnalysisPhaseFailed || o.Background == argo.AnalysisPhaseError:
		plan = abort(p, o, AnalysisFailed, "background analysis "+string(o.Background)+": "+o.BackgroundMessage+" (while "+msg+")")
	case !o.CanaryReady && o.Now.Sub(since) > s.ProgressDeadline:
		plan = abort(p, o, ProgressDeadlineExceeded, fmt.Sprintf("the canary was not Ready within %s (while %s)", s.ProgressDeadline, msg))
	default:
		// The deadline keeps counting while held.
		stop.Next.NotReadySince = time.Time{}
		if !o.CanaryReady {
			stop.Next.NotReadySince = since
			stop.RequeueAfter = min(stop.RequeueAfter, max(time.Second, s.ProgressDeadline-o.Now.Sub(since)))
		}
		return stop
	}
	plan.RequeueAfter = stop.RequeueAfter
	return plan
}
