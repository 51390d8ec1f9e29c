package rollout

import (
	"fmt"
	"time"

	"k8s.io/utils/ptr"

	"github.com/tugboatdev/tugboat/traffic"
)

// Attempts: a rollout of a revision starts at the first step when the
// revision is new, when its steps change under it, and when a person retries
// it after an abort; each start is a new attempt, with analysis runs of its
// own.

// start begins the rollout of the target's revision, or begins it again
// when it replaced another mid-rollout.
func start(s Spec, p Progress, o Observed) Plan {
	restart := p.InRollout() && p.Abort == nil
	if o.WindowClosed != "" && !restart && o.Requests.Abort != "" {
		// A person aborts the revision that waits: it is recorded as
		// aborted, and does not start when the window opens.
		return abort(Progress{StableRevision: p.StableRevision, CanaryRevision: o.TargetRevision, Requests: p.Requests}, o,
			AbortedByUser, "revision "+o.TargetRevision+" aborted on request before it started")
	}
	if o.WindowClosed != "" && !restart && o.Requests.Promote == "" && o.Requests.PromoteFull == "" {
		// A new rollout waits for its window, unless a person promotes it.
		// (A revision replacing one mid-rollout is already running in the
		// target's pods, so traffic goes back to stable at once, and the new
		// rollout holds at its first step.)
		plan := waitForWindow(Plan{Next: p, Traffic: ptr.To(traffic.AtRest()), CanaryReplicas: ptr.To[int32](0)}, o)
		plan.Message = "revision " + o.TargetRevision + " waits for a deployment window: " + plan.Message
		return plan
	}
	outcome, msg := Started, "rolling out revision "+o.TargetRevision
	if restart {
		outcome = Restarted
		msg = fmt.Sprintf("revision %s replaced %s mid-rollout; traffic back on stable, starting from the first step", o.TargetRevision, p.CanaryRevision)
	}
	next := Progress{
		StableRevision: p.StableRevision,
		CanaryRevision: o.TargetRevision,
		Step:           ptr.To[int32](0),
		StepStart:      o.Now,
		StartedAt:      o.Now,
		NotReadySince:  o.Now,
		// Requests made for an earlier revision do not carry over.
		Requests: acknowledge(p.Requests, o.Requests),
	}
	if o.WindowClosed != "" && !restart && o.Requests.PromoteFull != "" {
		// A person promoted fully a revision that waited for its window: the
		// request stays pending, and takes it through all its steps next.
		next.Requests.PromoteFull = p.Requests.PromoteFull
	}
	return atFirstStep(s, o, outcome, msg, next)
}

// restartSteps starts a rollout again from the first step when its steps
// changed under it: a shortened list must not promote at once, and a run
// named by step index must not be reused for another analysis.
func restartSteps(s Spec, p Progress, o Observed) Plan {
	return startOver(s, p, o, StepsChanged, "the steps changed mid-rollout; traffic back on stable, rolling out revision "+p.CanaryRevision+" from the first step")
}

// startOver runs the same revision again from the first step, with the
// steps in force now, as a new attempt (new analysis runs).
func startOver(s Spec, p Progress, o Observed, why Outcome, msg string) Plan {
	next := p
	next.Abort = nil
	next.StepsHash, next.Promoting, next.BackgroundAttempt = "", false, 0
	next.Step, next.StepStart, next.StartedAt, next.NotReadySince = ptr.To[int32](0), o.Now, newAttempt(p.StartedAt, o.Now), o.Now
	next.Requests = acknowledge(p.Requests, o.Requests)
	return atFirstStep(s, o, why, msg, next)
}

// newAttempt is when an attempt that replaces the one started at was
// starts: now, or the second after was's when now is within it. Status
// keeps seconds and analysis runs are named by the attempt's start, so an
// attempt in the same second would find the runs of the one it replaces,
// verdicts and all.
func newAttempt(was, now time.Time) time.Time {
	if next := was.Truncate(time.Second).Add(time.Second); now.Before(next) {
		return next
	}
	return now
}

// atFirstStep is the plan of an attempt that starts at the first step:
// traffic on stable, the canary sized for step 0, and the progress deadline
// counting while it gets Ready.
func atFirstStep(s Spec, o Observed, why Outcome, msg string, next Progress) Plan {
	return Plan{
		Outcome:        WaitingForCanary,
		Transition:     why,
		Message:        msg + "; waiting for the canary to be Ready",
		Next:           next,
		Traffic:        ptr.To(traffic.AtRest()),
		CanaryReplicas: ptr.To(CanaryReplicasFor(s.Steps, 0, o.Replicas)),
		RequeueAfter:   s.ProgressDeadline,
	}
}

func aborted(s Spec, p Progress, o Observed) Plan {
	if o.Requests.Retry != "" {
		return startOver(s, p, o, Retried, "retrying revision "+p.CanaryRevision+" from the first step")
	}
	next := p
	// Promote and abort requests have nothing to act on while aborted.
	next.Requests = acknowledge(p.Requests, o.Requests)
	// The same outcome and message as the abort itself: nothing to write.
	return Plan{
		Outcome:        p.Abort.Reason,
		Message:        p.Abort.Message,
		Next:           next,
		Traffic:        ptr.To(traffic.AtRest()),
		CanaryReplicas: ptr.To[int32](0),
	}
}
