package rollout

// Outcome names what Decide concluded. It becomes the Reason of the Rollout's
// conditions and of the event recorded on a transition.
type Outcome string

// Outcomes at rest.
const (
	Initializing Outcome = "Initializing" // primary created, not Ready yet
	Initialized  Outcome = "Initialized"  // primary Ready, serving all traffic
	Healthy      Outcome = "Healthy"      // at rest on the stable revision
	Promoted     Outcome = "Promoted"     // the canary became the stable revision
	Cancelled    Outcome = "Cancelled"    // the target went back to the stable revision mid-rollout
	// RolledBack: primary serves an earlier revision from history, on a
	// person's request, and the Rollout is pinned there. The rollback itself
	// is the transition (Plan.Transition); the pin that holds is not.
	RolledBack Outcome = "RolledBack"
	// Unpinned: a rollback's pin ended (lifted on request, or the target
	// took a new template), and nothing else changed.
	Unpinned Outcome = "Unpinned"
	// RollingBack: a rollback to a revision further back than
	// spec.rollback.fastTrackRevisions began: the revision is rolled out
	// again, from history, through the steps.
	RollingBack Outcome = "RollingBack"
	// RollbackRefused: a rollback request could not be carried out; nothing
	// changed.
	RollbackRefused Outcome = "RollbackRefused"
)

// Outcomes while a rollout progresses.
const (
	Started             Outcome = "Started"             // a new revision's rollout began
	Restarted           Outcome = "Restarted"           // a newer revision replaced the one being rolled out
	Retried             Outcome = "Retried"             // an aborted rollout started again
	WaitingForCanary    Outcome = "WaitingForCanary"    // the canary is not Ready yet
	Advanced            Outcome = "Advanced"            // a step was completed
	Holding             Outcome = "Holding"             // a timed pause runs
	WaitingForAnalysis  Outcome = "WaitingForAnalysis"  // an analysis step has no verdict yet
	WaitingForPromotion Outcome = "WaitingForPromotion" // a person must promote
	PausedByUser        Outcome = "PausedByUser"        // a person paused the rollout
	Promoting           Outcome = "Promoting"           // primary is taking the canary's template
	OutsideWindow       Outcome = "OutsideWindow"       // the deployment windows hold the rollout
	StepsChanged        Outcome = "StepsChanged"        // the steps changed mid-rollout; it started again from the first
	// AnalysisInconclusive: the background analysis found no verdict (no
	// data, say); a person promotes to go on or aborts.
	AnalysisInconclusive Outcome = "AnalysisInconclusive"
	// InconclusiveAccepted: a person went on from an inconclusive background
	// analysis; a new one measures.
	InconclusiveAccepted Outcome = "InconclusiveAccepted"
)

// Outcomes that stop a rollout.
const (
	AbortedByUser            Outcome = "AbortedByUser"
	ProgressDeadlineExceeded Outcome = "ProgressDeadlineExceeded"
	AnalysisFailed           Outcome = "AnalysisFailed"
)

// Outcomes of a problem, and of a deletion.
const (
	InvalidSpec    Outcome = "InvalidSpec"
	TargetNotFound Outcome = "TargetNotFound"
	HandingBack    Outcome = "HandingBack"    // the Rollout is being deleted; the target is taking the traffic back
	HandedBack     Outcome = "HandedBack"     // the target serves again, and the Rollout is let go
	TargetRestored Outcome = "TargetRestored" // the target got the stable revision back, from a rollout that never completed
)

// IsTransition reports whether the outcome changes progress, and so deserves
// an event.
func (o Outcome) IsTransition() bool {
	switch o {
	case Initialized, Promoted, Cancelled, Unpinned, RollbackRefused, RollingBack, Started, Restarted, Retried, Advanced, StepsChanged, InconclusiveAccepted, HandedBack, TargetRestored,
		AbortedByUser, ProgressDeadlineExceeded, AnalysisFailed:
		return true
	}
	return false
}

// IsFailure reports whether the outcome is a failure: a Warning event and a
// Stalled condition rather than a Normal event.
func (o Outcome) IsFailure() bool {
	switch o {
	case AbortedByUser, ProgressDeadlineExceeded, AnalysisFailed, InvalidSpec, TargetNotFound:
		return true
	}
	return false
}

// IsWarning reports whether the event announcing the outcome is a Warning:
// a failure, or a change a person should look at.
func (o Outcome) IsWarning() bool {
	return o.IsFailure() || o == TargetRestored || o == RolledBack || o == RollbackRefused || o == RollingBack
}

// WaitsForPerson reports whether only a person can move the rollout on.
func (o Outcome) WaitsForPerson() bool {
	return o == WaitingForPromotion || o == PausedByUser || o == AnalysisInconclusive
}

// IsAtRest reports whether no rollout is under way.
func (o Outcome) IsAtRest() bool {
	switch o {
	case Initialized, Healthy, Promoted, Cancelled, RolledBack, Unpinned:
		return true
	}
	return false
}
