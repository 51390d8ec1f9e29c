package rollout

import (
	"fmt"
	"slices"
	"time"

	"k8s.io/utils/ptr"

	"github.com/tugboatdev/tugboat/analysis"
	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/traffic"
)

// Pin is a rollback (status.rollback). Once it holds, primary serves
// Revision, from history, while the target's template is still Target.
// ThroughSteps, before that, is a rollback on its way: Revision is rolled out
// as a canary, from history, through the steps and their analysis, and holds
// once promoted.
type Pin struct {
	Request      string
	Revision     string
	Number       int64
	From         string
	Target       string
	Reason       string
	RequestedBy  string
	Since        time.Time
	ThroughSteps bool
}

// fits reports whether the pin belongs to progress p: one that holds pins a
// Rollout at rest, one through the steps is the rollout of its revision.
func (pin *Pin) fits(p Progress) bool {
	if pin.ThroughSteps {
		return p.StableRevision != "" && p.CanaryRevision == pin.Revision
	}
	return p.StableRevision != "" && !p.InRollout()
}

// RollingBackThroughSteps reports whether the canary of p is a revision
// rolled back to through the steps, which runs from its record rather than
// in the target's pods.
func (p Progress) RollingBackThroughSteps() bool {
	return p.Pin != nil && p.Pin.ThroughSteps && p.Pin.fits(p)
}

// RollbackTo is a pending rollback request as observe resolved it against
// the Rollout's history.
type RollbackTo struct {
	// ID is the request's id; Reason and User what it says.
	ID, Reason, User string
	// Revision and Number name the revision to go back to; Recorded says its
	// template is in history, so primary can take it.
	Revision string
	Number   int64
	Recorded bool
	// ThroughSteps: the revision lies further back than
	// spec.rollback.fastTrackRevisions, so the rollback rolls it out again,
	// as a canary, through the steps.
	ThroughSteps bool
	// Refused, when set, is why the request cannot be carried out (no such
	// revision, too old to go back to at once, unreadable); nothing changes.
	Refused string
}

// rollBack carries out a rollback request, or refuses it. An accepted one
// pins the Rollout on the revision asked for: traffic goes wholly to
// primary (a canary under way is aborted), status records the new stable
// revision, and then primary takes its recorded template, in place, as at a
// promotion.
func rollBack(s Spec, p Progress, o Observed) Plan {
	req := *o.Rollback
	refuse := func(why string) Plan {
		o.Rollback, o.Requests.Rollback = nil, ""
		plan := decide(s, p, o)
		plan.Next.Requests.Rollback = req.ID
		plan.Next.RollbackAnswer = &v1alpha1.RollbackRequestStatus{ID: req.ID, Message: shorten(why)}
		if plan.Event() == "" {
			plan.Transition = RollbackRefused
		}
		plan.Message = why + "; " + plan.Message
		return plan
	}
	switch {
	case req.Refused != "":
		return refuse(req.Refused)
	case o.Problem != nil:
		return refuse("rollback refused until this is fixed: " + o.Problem.Message)
	case req.Revision == p.StableRevision:
		return refuse(fmt.Sprintf("rollback refused: revision %d (%s) is the one serving", req.Number, req.Revision))
	case !req.Recorded:
		return refuse(fmt.Sprintf("rollback refused: revision %d (%s) has no recorded template", req.Number, req.Revision))
	}
	pin := &Pin{
		Request: req.ID, Revision: req.Revision, Number: req.Number, From: p.StableRevision, Target: o.TargetRevision,
		Reason: req.Reason, RequestedBy: req.User, Since: o.Now.Truncate(time.Second), ThroughSteps: req.ThroughSteps,
	}
	next := Progress{
		StableRevision: p.StableRevision,
		Pin:            pin,
		Requests:       acknowledge(p.Requests, o.Requests),
		Rollbacks:      p.Rollbacks,
	}
	if !p.RollingBackThroughSteps() { // which counted it already
		next.Rollbacks = countRollback(p.Rollbacks, p.StableRevision, o.StableImages, causeRequested)
	}
	next.Requests.Rollback = req.ID
	msg := pinMessage(pin)
	if pin.ThroughSteps {
		msg = fmt.Sprintf("rolling back to revision %d (%s) from %s through the steps, as a canary from history%s", pin.Number, pin.Revision, pin.From, byWhy(pin))
	}
	if p.InRollout() && p.Abort == nil {
		msg = fmt.Sprintf("rollout of %s aborted; %s", p.CanaryRevision, msg)
		next.Rollbacks = countRollback(next.Rollbacks, p.CanaryRevision, o.CanaryImages, causeAborted)
	}
	next.RollbackAnswer = &v1alpha1.RollbackRequestStatus{ID: req.ID, Accepted: true, Message: shorten(msg)}
	if pin.ThroughSteps {
		next.CanaryRevision = req.Revision
		next.Step, next.StepStart, next.StartedAt, next.NotReadySince = ptr.To[int32](0), o.Now, o.Now, o.Now
		return atFirstStep(s, o, RollingBack, msg, next)
	}
	next.StableRevision = req.Revision
	return Plan{
		Outcome:         RolledBack,
		Transition:      RolledBack,
		Message:         msg,
		Next:            next,
		Traffic:         ptr.To(traffic.AtRest()),
		CanaryReplicas:  ptr.To[int32](0),
		RollBackPrimary: true,
	}
}

// rollingBack runs a rollback through the steps: the revision rolled back to
// is rolled out as any canary is (analysis, pauses, promote and abort
// requests), except that deployment windows do not hold it, and that it
// ends, with traffic back on stable, when the target takes a new template
// or a person cancels it. Promoted, it pins the Rollout (see promote).
func rollingBack(s Spec, p Progress, o Observed) Plan {
	pin := p.Pin
	// Ended on the way: at rest on stable, as if it had never begun.
	rest := Progress{StableRevision: p.StableRevision, Requests: p.Requests, RollbackAnswer: p.RollbackAnswer, Rollbacks: p.Rollbacks}
	lift := func(why string) Plan { return unpin(s, rest, o, why) }
	switch {
	case o.Requests.RollbackCancel != "":
		return lift(fmt.Sprintf("rollback to revision %d through the steps cancelled on request, traffic back on stable", pin.Number))
	case o.TargetRevision != pin.Target:
		return lift(fmt.Sprintf("the target has a new template (%s): rollback to revision %d through the steps ends, traffic back on stable", o.TargetRevision, pin.Number))
	case !o.CanaryRecorded:
		return lift(fmt.Sprintf("the record of revision %d (%s) is gone: rollback through the steps ends, traffic back on stable", pin.Number, pin.Revision))
	case p.Abort != nil:
		return aborted(s, p, o)
	}
	o.WindowClosed, o.WindowOpens, o.WindowInvalid = "", time.Time{}, false
	return progress(s, p, o)
}

// pinned is a Rollout held on a revision rolled back to. While the target's
// template is the one rolled back from, nothing is rolled out; a new one
// (the fix, or the revision rolled back to) ends the pin, as does a request
// to cancel it.
func pinned(s Spec, p Progress, o Observed) Plan {
	pin := p.Pin
	unpinned := p
	unpinned.Pin = nil
	lift := func(why string) Plan { return unpin(s, unpinned, o, why) }
	switch {
	case o.Requests.RollbackCancel != "":
		return lift(fmt.Sprintf("rollback to revision %d lifted on request", pin.Number))
	case o.TargetRevision == pin.Revision:
		return lift(fmt.Sprintf("the target is on revision %d, the one rolled back to: the rollback ends", pin.Number))
	case o.TargetRevision != pin.Target:
		return lift(fmt.Sprintf("the target has a new template (%s): rollback to revision %d ends", o.TargetRevision, pin.Number))
	}
	next := p
	next.Requests = acknowledge(p.Requests, o.Requests) // nothing to promote, abort or retry
	return Plan{
		Outcome:        RolledBack,
		Message:        pinMessage(pin),
		Next:           next,
		Traffic:        ptr.To(traffic.AtRest()),
		CanaryReplicas: ptr.To[int32](0),
	}
}

// cancelAnswer answers a request to cancel a rollback: lifted, or nothing
// to lift.
func cancelAnswer(id string, p, next Progress) *v1alpha1.RollbackRequestStatus {
	a := &v1alpha1.RollbackRequestStatus{ID: id}
	switch pin := p.Pin; {
	case pin != nil && next.Pin == nil && pin.ThroughSteps:
		a.Accepted, a.Message = true, fmt.Sprintf("rollback to revision %d (%s) through the steps cancelled; revision %s serves", pin.Number, pin.Revision, next.StableRevision)
	case pin != nil && next.Pin == nil:
		a.Accepted, a.Message = true, fmt.Sprintf("rollback to revision %d (%s) lifted; the target's template rolls out as usual", pin.Number, pin.Revision)
	case next.Pin != nil:
		a.Message = fmt.Sprintf("the rollback to revision %d (%s) was not lifted", next.Pin.Number, next.Pin.Revision)
	default:
		a.Message = "nothing to cancel: no rollback pins the Rollout"
	}
	return a
}

// unpin decides on progress p, a pin's end, saying why it ended; with no
// other change, the end of the pin is the transition.
func unpin(s Spec, p Progress, o Observed, why string) Plan {
	plan := decide(s, p, o)
	if plan.Transition == "" && !plan.Outcome.IsTransition() {
		plan.Transition = Unpinned
	}
	plan.Message = why + "; " + plan.Message
	return plan
}

func pinMessage(pin *Pin) string {
	return fmt.Sprintf("rolled back to revision %d (%s) from %s%s; pinned while the target's template is %s (a new template, or kubectl tug rollback --cancel, ends it)",
		pin.Number, pin.Revision, pin.From, byWhy(pin), pin.Target)
}

// byWhy says who asked for a rollback, and why.
func byWhy(pin *Pin) string {
	s := ""
	if pin.RequestedBy != "" {
		s = " by " + pin.RequestedBy
	}
	if pin.Reason != "" {
		s += ": " + pin.Reason
	}
	return s
}

// shorten bounds a message kept in status (the CRD's 4096).
func shorten(s string) string { return analysis.Shorten(s, 4096) }

// Causes of a rollback count.
type rollbackCause int

const (
	causeAborted rollbackCause = iota
	causeRequested
)

// countRollback adds one rollback from rev to the counts, keeping at most
// v1alpha1.MaxRollbackCounts revisions (the least recently counted go).
func countRollback(counts []v1alpha1.RevisionRollbacks, rev string, images []string, cause rollbackCause) []v1alpha1.RevisionRollbacks {
	if rev == "" {
		return counts
	}
	out := slices.Clone(counts)
	i := slices.IndexFunc(out, func(c v1alpha1.RevisionRollbacks) bool { return c.Revision == rev })
	if i < 0 {
		out = append(out, v1alpha1.RevisionRollbacks{Revision: rev})
		i = len(out) - 1
	}
	c := out[i]
	if len(images) > 0 {
		c.Images = nil
		for _, im := range images[:min(len(images), 32)] { // the CRD's bounds
			if len(im) > 1024 {
				im = im[:1024]
			}
			c.Images = append(c.Images, im)
		}
	}
	switch cause {
	case causeAborted:
		c.Aborted++
	case causeRequested:
		c.Requested++
	}
	// The one counted last goes last, so that trimming drops the stalest.
	out = append(slices.Delete(out, i, i+1), c)
	return out[max(0, len(out)-v1alpha1.MaxRollbackCounts):]
}
