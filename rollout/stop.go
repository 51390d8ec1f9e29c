package rollout

import "github.com/tugboatdev/tugboat/api/v1alpha1"

// OnStop is what to do when a rollout cannot be decided on (stop.Outcome
// says why: a missing template, a target that is gone, a spec this
// controller cannot carry out). Traffic stays where it is, which is safe
// while the canary serves, with two exceptions:
//   - a target gone mid-rollout leaves the canary without pods, so the
//     rollout is aborted and traffic goes back to stable, even once every
//     step is done (primary serves whichever revision it has);
//   - an abort a person asked for is carried out: it needs nothing the stop
//     is about.
func OnStop(stop Plan, requests v1alpha1.Requests) Plan {
	p := stop.Next
	switch {
	case !p.InRollout():
		return stop
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
