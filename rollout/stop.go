package rollout

import (
	"k8s.io/utils/ptr"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/traffic"
)

// OnStop is what to do when a rollout cannot be decided on (stop.Outcome
// says why: a missing template, a target that is gone, a spec this
// controller cannot carry out). Traffic stays where it is, which is safe
// while the canary serves, with two exceptions:
//   - a target gone mid-rollout leaves the canary without pods, so traffic
//     goes back to stable: the rollout is aborted or, when primary already
//     runs the canary's revision (primaryRevision), that revision is stable;
//   - an abort a person asked for is carried out: it needs nothing the stop
//     is about.
func OnStop(stop Plan, requests v1alpha1.Requests, primaryRevision string) Plan {
	p := stop.Next
	switch {
	case !p.InRollout():
		return stop
	case stop.Outcome == TargetNotFound && p.Abort == nil && primaryRevision == p.CanaryRevision:
		// The promotion was committed: it is complete, target or not.
		return Plan{
			Outcome:        TargetNotFound,
			Transition:     Promoted,
			Message:        stop.Message + "; revision " + p.CanaryRevision + ", which primary runs, is stable and serves all traffic",
			Next:           Progress{StableRevision: p.CanaryRevision, Requests: p.Requests},
			Traffic:        ptr.To(traffic.AtRest()),
			CanaryReplicas: ptr.To[int32](0),
			RequeueAfter:   stop.RequeueAfter,
		}
	case p.Abort != nil:
		if p.Abort.Reason == stop.Outcome {
			stop.Message = p.Abort.Message // already said, with what was done
		}
		return stop
	case stop.Outcome == TargetNotFound:
		plan := abort(p, Observed{}, TargetNotFound, stop.Message+" mid-rollout, so the canary has no pods")
		plan.RequeueAfter = stop.RequeueAfter
		return plan
	case requests.Abort != "":
		plan := abort(p, Observed{Requests: requests}, AbortedByUser, "aborted on request while "+stop.Message)
		plan.RequeueAfter = stop.RequeueAfter
		return plan
	}
	return stop
}
