package rollout

import (
	"fmt"
	"time"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	"k8s.io/utils/ptr"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/traffic"
)

// Observed is a snapshot of the world, gathered by the reconciler before
// Decide runs.
type Observed struct {
	Now time.Time
	// TargetRevision is the hash of the target Deployment's pod template.
	TargetRevision string
	// PrimaryRevision is the revision primary's template was copied from.
	PrimaryRevision string
	// PrimaryReady: primary has all its replicas Ready at PrimaryRevision.
	PrimaryReady bool
	// CanaryReady: the canary's Deployment (the target, or the rollback
	// canary) has the replicas it was asked for, all Ready at the canary's
	// revision.
	CanaryReady bool
	// Replicas is the full size of the application (primary's replicas).
	Replicas int32
	// Requests are people's pending requests.
	Requests v1alpha1.Requests
	// Paused: a person paused the rollout.
	Paused bool
	// Analysis is the verdict of the current analysis step's run; empty while
	// there is none. AnalysisMessage explains it.
	Analysis        argo.AnalysisPhase
	AnalysisMessage string
	// Background is the verdict of the background analysis, once it runs.
	Background        argo.AnalysisPhase
	BackgroundMessage string
	// WindowClosed says why the deployment windows keep the rollout from
	// advancing now; empty when they do not. WindowOpens is when they next
	// let it, zero if not within a year.
	WindowClosed string
	WindowOpens  time.Time
	// WindowInvalid: the windows do not parse (WindowClosed says why); the
	// rollout holds as if they were closed, and reports an invalid spec.
	WindowInvalid bool
	// StableRecorded: the stable revision's template is recorded (as a
	// ControllerRevision), so primary can be put back on it.
	StableRecorded bool
	// Problem, when set, is why the rollout cannot go on as its spec says:
	// it holds where it is, and aborts still act.
	Problem *SpecError
	// Deleting: the Rollout is being deleted, and Deletion is what its
	// hand-back sees.
	Deleting bool
	Deletion Deletion
	// Rollback is the pending rollback request, resolved against history.
	Rollback *RollbackTo
	// StableImages and CanaryImages are the images of the stable revision
	// and of the canary (the target's template, or the recorded one of a
	// revision rolled back to through the steps), for the rollback counts.
	StableImages, CanaryImages []string
	// CanaryRecorded: rolling back through the steps, the record of the
	// revision rolled back to is there to run the canary from.
	CanaryRecorded bool
}

// Plan is everything the reconciler must do; Decide never does it itself.
type Plan struct {
	Outcome Outcome
	Message string
	// Next is the progress to record in status.
	Next Progress
	// Traffic to put on the mesh; nil leaves the mesh as it is.
	Traffic *traffic.Desired
	// CanaryReplicas is the size to give the target; nil leaves it.
	CanaryReplicas *int32
	// PromotePrimary copies the canary's template into primary. It is carried
	// out after the status recording Next (which calls the canary promoting)
	// is written: primary never runs a revision that status does not call
	// stable or promoting.
	PromotePrimary bool
	// RollBackPrimary puts primary on the recorded template of the revision
	// Next's pin names, a revision rolled back to (at once, or promoted
	// through the steps). Like PromotePrimary it is carried out after status
	// records it.
	RollBackPrimary bool
	// RestorePrimary puts primary back on the stable revision's recorded
	// template: it was found running a revision that status calls neither
	// stable nor promoting.
	RestorePrimary bool
	// HandBack, for a deleted Rollout, is how its application goes back to
	// the target.
	HandBack *HandBack
	// RequeueAfter is when to look again if nothing else happens first.
	RequeueAfter time.Duration
	// Transition names the change this plan makes when Outcome alone does
	// not: reaching rest is Healthy in the conditions whether it came by
	// initializing, promoting or cancelling, so that the state reached is
	// recorded once; the event says how it came about.
	Transition Outcome
}

// Event is the transition to announce, if any.
func (p Plan) Event() Outcome {
	if p.Transition != "" {
		return p.Transition
	}
	if p.Outcome.IsTransition() {
		return p.Outcome
	}
	return ""
}

func stableMessage(rev string) string { return "revision " + rev + " is stable and serves all traffic" }

// Spec is the part of a Rollout's spec that Decide reads.
type Spec struct {
	Steps            []v1alpha1.Step
	ProgressDeadline time.Duration
	// StepsHash identifies Steps; empty leaves a rollout's recorded hash
	// unchecked.
	StepsHash string
}

// SpecFrom reads the decision inputs from a Rollout's spec.
func SpecFrom(s v1alpha1.RolloutSpec) Spec {
	deadline := 600 * time.Second
	if s.ProgressDeadlineSeconds != nil {
		deadline = time.Duration(*s.ProgressDeadlineSeconds) * time.Second
	}
	return Spec{Steps: s.Steps, ProgressDeadline: deadline, StepsHash: StepsHash(s.Steps)}
}

// Decide returns the plan for one reconcile. It is a pure function; every
// case that changes progress changes it once, so a plan carried out twice
// (a restart between acting and recording) repeats no step.
func Decide(s Spec, p Progress, o Observed) Plan {
	if o.Deleting {
		return handBack(p, o)
	}
	if p.Step != nil && (*p.Step < 0 || int(*p.Step) > len(s.Steps)) {
		// A hand-edited index: a negative one starts the steps again, one
		// past the end is the promotion it would be at the end.
		p.Step = ptr.To(min(max(*p.Step, 0), int32(len(s.Steps))))
	}
	if p.Pin != nil && !p.Pin.fits(p) {
		// Hand-edited: a pin holds only a Rollout at rest on a revision, or
		// rolls out the revision it goes back to.
		p.Pin = nil
	}
	plan := decide(s, p, o)
	n := &plan.Next
	if n.Rollbacks == nil {
		n.Rollbacks = p.Rollbacks
	}
	if n.RollbackAnswer == nil {
		n.RollbackAnswer = p.RollbackAnswer
	}
	if c := o.Requests.RollbackCancel; c != "" && n.Requests.RollbackCancel == c && n.RollbackAnswer == p.RollbackAnswer {
		n.RollbackAnswer = cancelAnswer(c, p, *n)
	}
	if n.Abort != nil && p.Abort == nil && n.CanaryRevision != "" {
		n.Rollbacks = countRollback(n.Rollbacks, n.CanaryRevision, o.CanaryImages, causeAborted)
	}
	switch {
	case !n.InRollout():
		n.StepsHash, n.Promoting, n.BackgroundAttempt = "", false, 0
	case n.Abort != nil:
		n.Promoting = false
	default:
		if n.StepsHash == "" {
			n.StepsHash = s.StepsHash
		}
		n.Promoting = n.Promoting || int(ptr.Deref(n.Step, 0)) >= len(s.Steps)
	}
	return keepPrimaryOnStatus(plan, o)
}

func decide(s Spec, p Progress, o Observed) Plan {
	switch {
	case o.Rollback != nil && p.StableRevision != "":
		// Answered whatever else holds: a person asking to go back is the
		// way out of a promotion that does not get Ready, too.
		return rollBack(s, p, o)
	case promotionCommitted(s, p, o):
		// Primary runs the canary's template and status called it
		// promoting: the promotion is committed and finishes, whatever
		// happens to the target or whoever asks for an abort meanwhile.
		// (Before primary changed, nothing is committed.)
		plan := promote(s, p, o, holdAt(s, p, o))
		if o.Problem != nil && o.Problem.Outcome == TargetNotFound && plan.Outcome == Promoting {
			// The canary's pods went with the target: primary serves meanwhile.
			plan.Traffic, plan.CanaryReplicas = ptr.To(traffic.AtRest()), nil
			plan.Message += "; the target is gone, so primary serves all traffic meanwhile"
		}
		return plan
	case o.Problem != nil:
		return held(s, p, o)
	case p.StableRevision == "":
		return initialize(p, o)
	case p.RollingBackThroughSteps():
		return rollingBack(s, p, o)
	case p.Pin != nil:
		return pinned(s, p, o)
	case o.TargetRevision == p.StableRevision:
		return atRest(p, o)
	case o.TargetRevision != p.CanaryRevision:
		return start(s, p, o)
	case p.Abort != nil:
		return aborted(s, p, o)
	}
	return progress(s, p, o)
}

func initialize(p Progress, o Observed) Plan {
	if !o.PrimaryReady {
		return Plan{Outcome: Initializing, Message: "waiting for the primary Deployment to be Ready", Next: p, RequeueAfter: 10 * time.Second}
	}
	return Plan{
		Outcome:        Healthy,
		Transition:     Initialized,
		Message:        stableMessage(o.PrimaryRevision),
		Next:           Progress{StableRevision: o.PrimaryRevision, Requests: p.Requests},
		Traffic:        ptr.To(traffic.AtRest()),
		CanaryReplicas: ptr.To[int32](0),
	}
}

func atRest(p Progress, o Observed) Plan {
	plan := Plan{
		Outcome:        Healthy,
		Message:        stableMessage(p.StableRevision),
		Next:           Progress{StableRevision: p.StableRevision, Requests: acknowledge(p.Requests, o.Requests)},
		Traffic:        ptr.To(traffic.AtRest()),
		CanaryReplicas: ptr.To[int32](0),
	}
	if p.InRollout() {
		plan.Transition = Cancelled
		plan.Message = fmt.Sprintf("the target went back to the stable revision %s; rollout of %s cancelled", p.StableRevision, p.CanaryRevision)
	}
	if o.WindowInvalid {
		// Said now, not when the next revision finds it.
		plan.Outcome, plan.Message = InvalidSpec, o.WindowClosed
	}
	return plan
}

// progress runs the steps of a rollout that is under way.
func progress(s Spec, p Progress, o Observed) Plan {
	step := int(ptr.Deref(p.Step, 0))
	hold := holdAt(s, p, o)
	switch {
	case o.Requests.Abort != "":
		return abort(p, o, AbortedByUser, "aborted on request")
	case p.StepsHash != "" && s.StepsHash != "" && p.StepsHash != s.StepsHash:
		return restartSteps(s, p, o)
	case o.Background == argo.AnalysisPhaseFailed || o.Background == argo.AnalysisPhaseError:
		return abort(p, o, AnalysisFailed, "background analysis "+string(o.Background)+": "+o.BackgroundMessage)
	case o.Background == argo.AnalysisPhaseInconclusive && o.Requests.PromoteFull == "":
		// No evidence is no pass: a person decides (promote goes on with a
		// new background analysis, promote --full skips to the end).
		if o.Requests.Promote != "" {
			hold.Next.BackgroundAttempt++
			hold.Next.Requests = acknowledge(p.Requests, o.Requests)
			hold.Outcome = InconclusiveAccepted
			hold.Message = fmt.Sprintf("step %d: background analysis inconclusive; going on on request, with a new background analysis", step)
			return hold
		}
		hold.Outcome = AnalysisInconclusive
		hold.Message = fmt.Sprintf("step %d: background analysis inconclusive: %s; promote to go on or abort", step, o.BackgroundMessage)
		return hold
	case step >= len(s.Steps) && (o.WindowClosed == "" || o.Requests.Promote != "" || o.Requests.PromoteFull != ""):
		return promote(s, p, o, hold)
	case !o.CanaryReady:
		// The deadline counts from when the canary stopped being Ready (or
		// was scaled up), not from the step's start: a pod restarting an
		// hour into a long pause gets the whole deadline to come back.
		since := p.NotReadySince
		if since.IsZero() {
			since = o.Now
		}
		if waited := o.Now.Sub(since); waited > s.ProgressDeadline {
			return abort(p, o, ProgressDeadlineExceeded, fmt.Sprintf("the canary was not Ready within %s", s.ProgressDeadline))
		}
		hold.Next.NotReadySince = since
		hold.Outcome, hold.Message = WaitingForCanary, "rolling out revision "+p.CanaryRevision+"; waiting for the canary to be Ready"
		hold.RequeueAfter = s.ProgressDeadline - o.Now.Sub(since)
		return hold
	case o.Paused:
		hold.Outcome, hold.Message = PausedByUser, fmt.Sprintf("paused at step %d; resume to continue", step)
		return hold
	case o.Requests.PromoteFull != "":
		next := advanceTo(p, o, len(s.Steps))
		if o.WindowClosed != "" {
			// The windows would hold it after the last step: a full
			// promotion asked for by a person starts promoting now.
			plan := promote(s, next, o, holdAt(s, next, o))
			plan.Transition = Advanced
			return plan
		}
		return Plan{Outcome: Advanced, Message: "promoting on request, skipping the remaining steps", Next: next,
			Traffic: ptr.To(TrafficAfter(s.Steps, len(s.Steps))), CanaryReplicas: hold.CanaryReplicas}
	case o.Requests.Promote != "":
		return advance(s, p, o, fmt.Sprintf("step %d promoted on request", step))
	case step >= len(s.Steps):
		return waitForWindow(hold, o) // primary has not taken the new revision yet
	}

	cur := s.Steps[step]
	switch {
	case cur.Pause != nil:
		d, timed, err := PauseDuration(cur.Pause)
		if err != nil {
			hold.Outcome, hold.Message = InvalidSpec, fmt.Sprintf("step %d: %v", step, err)
			return hold
		}
		if !timed {
			hold.Outcome, hold.Message = WaitingForPromotion, fmt.Sprintf("paused at step %d until promoted", step)
			return hold
		}
		if left := d - o.Now.Sub(p.StepStart); left > 0 {
			hold.Outcome, hold.Message = Holding, fmt.Sprintf("step %d: pausing %s, until %s", step, d, p.StepStart.Add(d).UTC().Format(time.RFC3339))
			hold.RequeueAfter = left
			return hold
		}
	case cur.Analysis != nil:
		switch o.Analysis {
		case argo.AnalysisPhaseSuccessful:
		case argo.AnalysisPhaseFailed, argo.AnalysisPhaseError:
			return abort(p, o, AnalysisFailed, fmt.Sprintf("step %d: analysis %s: %s", step, o.Analysis, o.AnalysisMessage))
		case argo.AnalysisPhaseInconclusive:
			hold.Outcome, hold.Message = WaitingForPromotion, fmt.Sprintf("step %d: analysis inconclusive; promote to continue or abort", step)
			return hold
		default:
			hold.Outcome, hold.Message = WaitingForAnalysis, fmt.Sprintf("step %d: waiting for the analysis verdict", step)
			return hold
		}
	}
	if o.WindowClosed != "" {
		// Held only where it would advance: verdicts and deadlines above
		// still abort.
		return waitForWindow(hold, o)
	}
	return advance(s, p, o, fmt.Sprintf("step %d done", step))
}

// waitForWindow holds plan until the deployment windows open. Analysis goes
// on meanwhile, and a failure still aborts.
func waitForWindow(plan Plan, o Observed) Plan {
	plan.Outcome = OutsideWindow
	plan.Message = o.WindowClosed
	plan.RequeueAfter = time.Hour
	if o.WindowInvalid {
		plan.Outcome = InvalidSpec
		return plan
	}
	if !o.WindowOpens.IsZero() {
		plan.Message += "; may advance from " + o.WindowOpens.UTC().Format(time.RFC3339)
		plan.RequeueAfter = max(time.Second, min(plan.RequeueAfter, o.WindowOpens.Sub(o.Now)))
	}
	return plan
}

// holdAt is the plan that keeps a rollout where it is: the traffic and scale
// of the steps done so far.
func holdAt(s Spec, p Progress, o Observed) Plan {
	step := int(ptr.Deref(p.Step, 0))
	next := p
	next.NotReadySince = time.Time{}
	return Plan{
		Next:           next,
		Traffic:        ptr.To(TrafficAfter(s.Steps, step)),
		CanaryReplicas: ptr.To(CanaryReplicasFor(s.Steps, step, o.Replicas)),
	}
}

// advance completes the current step and every step after it that takes no
// time (weights, header routes, a scale that leaves the canary's size alone),
// and records the state of the step it lands on: one VirtualService write and
// one status write cover the whole move.
func advance(s Spec, p Progress, o Observed, msg string) Plan {
	from := int(ptr.Deref(p.Step, 0))
	ready := CanaryReplicasFor(s.Steps, from, o.Replicas) // the size CanaryReady was judged at
	n := from + 1
	// Steps that keep or shrink the canary are done in the same move (act
	// moves traffic before it shrinks the canary); one that grows it is
	// landed on, and done once the canary is Ready at its new size.
	for n < len(s.Steps) && instant(s.Steps[n]) && CanaryReplicasFor(s.Steps, n, o.Replicas) <= ready {
		n++
	}
	next := advanceTo(p, o, n)
	plan := Plan{
		Outcome:        Advanced,
		Message:        msg,
		Next:           next,
		Traffic:        ptr.To(TrafficAfter(s.Steps, n)),
		CanaryReplicas: ptr.To(CanaryReplicasFor(s.Steps, n, o.Replicas)),
	}
	if *plan.CanaryReplicas > ready {
		// Landed on the step that grows the canary, before its traffic
		// moves: the canary must be Ready at its new size first.
		return plan
	}
	// Look ahead with the requests already spent, so none acts twice, and
	// without the verdict of the step just left.
	ahead := o
	ahead.Requests = v1alpha1.Requests{}
	ahead.Analysis, ahead.AnalysisMessage = "", ""
	if la := progress(s, next, ahead); la.Outcome != Advanced && !la.Outcome.IsFailure() && la.Transition == "" {
		la.Transition = Advanced
		return la
	}
	return plan
}

// instant reports whether a step completes as soon as it is carried out.
func instant(st v1alpha1.Step) bool {
	return st.SetWeight != nil || st.SetHeaderRoute != nil || st.SetMirrorRoute != nil || st.SetCanaryScale != nil
}

func advanceTo(p Progress, o Observed, step int) Progress {
	next := p
	next.NotReadySince = time.Time{}
	next.Step = ptr.To(int32(step))
	next.StepStart = o.Now
	next.Requests = acknowledge(p.Requests, o.Requests)
	return next
}

// promote runs after the last step: primary takes the canary's template and,
// once it is Ready, all traffic; the canary is scaled to zero.
func promote(s Spec, p Progress, o Observed, hold Plan) Plan {
	hold.Next.Requests = acknowledge(p.Requests, o.Requests)
	if o.PrimaryRevision != p.CanaryRevision || !o.PrimaryReady {
		hold.Outcome, hold.Message = Promoting, "primary is taking revision "+p.CanaryRevision
		taking := o.PrimaryRevision != p.CanaryRevision
		if p.RollingBackThroughSteps() {
			hold.RollBackPrimary = taking // from its record: the target holds another
		} else {
			hold.PromotePrimary = taking
		}
		hold.RequeueAfter = s.ProgressDeadline
		return hold
	}
	if pin := p.Pin; pin != nil && pin.ThroughSteps {
		// A rollback through the steps arrives: it holds from now on.
		held := *pin
		held.ThroughSteps, held.Since = false, o.Now.Truncate(time.Second)
		msg := pinMessage(&held)
		return Plan{
			Outcome:        RolledBack,
			Transition:     RolledBack,
			Message:        msg,
			Next:           Progress{StableRevision: p.CanaryRevision, Pin: &held, Requests: hold.Next.Requests},
			Traffic:        ptr.To(traffic.AtRest()),
			CanaryReplicas: ptr.To[int32](0),
		}
	}
	return Plan{
		Outcome:        Healthy,
		Transition:     Promoted,
		Message:        stableMessage(p.CanaryRevision),
		Next:           Progress{StableRevision: p.CanaryRevision, Requests: hold.Next.Requests},
		Traffic:        ptr.To(traffic.AtRest()),
		CanaryReplicas: ptr.To[int32](0),
	}
}

// abort sends every managed route to stable, removes header routes and
// scales the canary down.
func abort(p Progress, o Observed, why Outcome, msg string) Plan {
	msg += "; traffic back on stable"
	next := p
	next.NotReadySince = time.Time{}
	next.Abort = &Abort{Reason: why, Message: msg}
	next.Requests = acknowledge(p.Requests, o.Requests)
	return Plan{
		Outcome:        why,
		Message:        msg,
		Next:           next,
		Traffic:        ptr.To(traffic.AtRest()),
		CanaryReplicas: ptr.To[int32](0),
	}
}

// acknowledge marks every pending request as acted on.
func acknowledge(done, pending v1alpha1.Requests) v1alpha1.Requests {
	pick := func(a, b string) string {
		if b != "" {
			return b
		}
		return a
	}
	return v1alpha1.Requests{
		Promote:     pick(done.Promote, pending.Promote),
		PromoteFull: pick(done.PromoteFull, pending.PromoteFull),
		Abort:       pick(done.Abort, pending.Abort),
		Retry:       pick(done.Retry, pending.Retry),
		// A rollback is acknowledged only by carrying it out or refusing
		// it; a cancel with no pin has nothing to lift.
		Rollback:       done.Rollback,
		RollbackCancel: pick(done.RollbackCancel, pending.RollbackCancel),
	}
}
