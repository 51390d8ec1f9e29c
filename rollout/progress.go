package rollout

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

// Progress is what a rollout has done so far. It lives in the Rollout's
// status, so a controller restarted at any moment resumes at the same step
// with the same deadlines.
type Progress struct {
	// StableRevision runs in primary; empty until primary is first Ready.
	StableRevision string
	// CanaryRevision is being rolled out; empty at rest.
	CanaryRevision string
	// Step is the index of the step under way; len(steps) means every step is
	// done and the canary is being promoted. Nil at rest.
	Step *int32
	// StepStart is when Step started.
	StepStart time.Time
	// StartedAt is when the rollout of CanaryRevision (re)started.
	StartedAt time.Time
	// StepsHash identifies the steps this rollout started with.
	StepsHash string
	// Promoting: every step is done, and primary may take CanaryRevision.
	Promoting bool
	// BackgroundAttempt numbers the background analysis runs of this
	// rollout: a person going on from an inconclusive one starts the next.
	BackgroundAttempt int32
	// NotReadySince is when the canary was last seen not Ready (or was
	// scaled up); the progress deadline counts from it. Zero while Ready.
	NotReadySince time.Time
	// Abort, when set, holds traffic on stable until a retry or a new revision.
	Abort *Abort
	// Requests are the request tokens already acted on.
	Requests v1alpha1.Requests
	// Pin, when set, holds the Rollout on a revision rolled back to.
	Pin *Pin
	// RollbackAnswer is the answer to the last rollback request.
	RollbackAnswer *v1alpha1.RollbackRequestStatus
	// Rollbacks counts the aborts and rollbacks from each revision.
	Rollbacks []v1alpha1.RevisionRollbacks
}

// ProgressFrom reads progress from status.
func ProgressFrom(s v1alpha1.RolloutStatus) Progress {
	p := Progress{
		StableRevision:    s.StableRevision,
		CanaryRevision:    s.CanaryRevision,
		Step:              s.CurrentStepIndex,
		StepsHash:         s.StepsHash,
		Promoting:         s.Promoting,
		BackgroundAttempt: s.BackgroundAttempt,
		Requests:          s.ObservedRequests,
	}
	if p.Step != nil && *p.Step < 0 {
		// Hand-edited status: start the steps again rather than index out of range.
		p.Step = ptr.To[int32](0)
	}
	if a := s.Abort; a != nil {
		p.Abort = &Abort{Reason: Outcome(a.Reason), Message: a.Message}
	}
	if r := s.Rollback; r != nil {
		p.Pin = &Pin{Request: r.Request, Revision: r.Revision, Number: r.Number, From: r.From, Target: r.Target,
			Reason: r.Reason, RequestedBy: r.RequestedBy, Since: r.Since.Time, ThroughSteps: r.ThroughSteps}
	}
	p.RollbackAnswer = s.RollbackRequest.DeepCopy()
	p.Rollbacks = s.Rollbacks
	if s.StepStartedAt != nil {
		p.StepStart = s.StepStartedAt.Time
	}
	if s.StartedAt != nil {
		p.StartedAt = s.StartedAt.Time
	}
	if s.CanaryNotReadySince != nil {
		p.NotReadySince = s.CanaryNotReadySince.Time
	}
	return p
}

// WriteTo records progress in status; weight is the canary weight in force.
func (p Progress) WriteTo(s *v1alpha1.RolloutStatus, weight int32) {
	s.StableRevision = p.StableRevision
	s.CanaryRevision = p.CanaryRevision
	s.CurrentStepIndex = p.Step
	s.StepsHash = p.StepsHash
	s.Promoting = p.Promoting
	s.BackgroundAttempt = p.BackgroundAttempt
	s.StepStartedAt = timeOrNil(p.StepStart)
	s.StartedAt = timeOrNil(p.StartedAt)
	s.CanaryNotReadySince = timeOrNil(p.NotReadySince)
	s.Abort = nil
	if a := p.Abort; a != nil {
		s.Abort = &v1alpha1.RolloutAbort{Reason: string(a.Reason), Message: a.Message}
	}
	s.ObservedRequests = p.Requests
	s.CanaryWeight = weight
	s.Rollback = nil
	if pin := p.Pin; pin != nil {
		s.Rollback = &v1alpha1.RolloutRollback{Request: pin.Request, Revision: pin.Revision, Number: pin.Number, From: pin.From, Target: pin.Target,
			Reason: pin.Reason, RequestedBy: pin.RequestedBy, Since: metav1.NewTime(pin.Since.Truncate(time.Second)), ThroughSteps: pin.ThroughSteps}
	}
	s.RollbackRequest = p.RollbackAnswer.DeepCopy()
	s.Rollbacks = p.Rollbacks
}

func timeOrNil(t time.Time) *metav1.Time {
	if t.IsZero() {
		return nil
	}
	// Status keeps whole seconds; so does the plan, so that a value read back
	// compares equal to the one written.
	mt := metav1.NewTime(t.Truncate(time.Second))
	return &mt
}

// Abort records why a rollout was aborted.
type Abort struct {
	Reason  Outcome
	Message string
}

// InRollout reports whether a revision is being rolled out (aborted or not).
func (p Progress) InRollout() bool { return p.CanaryRevision != "" }
