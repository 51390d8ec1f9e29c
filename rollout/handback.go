package rollout

import (
	"fmt"
	"time"

	"k8s.io/utils/ptr"

	"github.com/tugboatdev/tugboat/traffic"
)

// Pods names a set of pods that the stable backend of the mesh can select.
type Pods int

// The pods a hand-back routes traffic to.
const (
	PrimaryPods Pods = iota + 1 // <name>-primary's
	TargetPods                  // the target Deployment's
)

func (p Pods) String() string {
	switch p {
	case PrimaryPods:
		return "primary"
	case TargetPods:
		return "target"
	}
	return fmt.Sprintf("Pods(%d)", int(p))
}

// Deletion is what a deleted Rollout's hand-back sees.
type Deletion struct {
	// TargetGone: the target is gone, being deleted, or cannot be selected.
	TargetGone bool
	// TargetName names it, for messages.
	TargetName string
	// TargetReplicas is the target's size; TargetServing how many Ready
	// pods of its current template it runs, and no others (0 otherwise).
	TargetReplicas, TargetServing int32
	// Primary: this Rollout's primary exists; PrimaryDeleting: it is going.
	Primary, PrimaryDeleting bool
	// PrimaryReplicas is primary's size.
	PrimaryReplicas int32
	// MeshGone: the VirtualService is gone or being deleted along with the
	// Rollout: the whole application is being deleted.
	MeshGone bool
	// StableOnTarget: the stable Service selects the target's pods already
	// (a hand-back got that far), or is gone.
	StableOnTarget bool
	// GivenBack: the target carries this Rollout's hand-back mark, so the
	// one-time changes were made.
	GivenBack bool
	// StableService and CanaryService name the Services, for messages.
	StableService, CanaryService string
}

// HandBack is what carrying out a hand-back involves, in act's order.
type HandBack struct {
	// RouteTo is the pods all traffic goes to; zero leaves the mesh as is.
	RouteTo Pods
	// GiveBack makes the one-time changes to the target: at least Replicas
	// replicas and, with RestoreTemplate, primary's template back (the
	// revision whose rollout never completed is not left running); it marks
	// the target as given back.
	GiveBack        bool
	RestoreTemplate bool
	// FromRecord takes the template from the stable revision's record, not
	// from primary: a rollback recorded in status that primary had not
	// taken yet when the Rollout was deleted.
	FromRecord bool
	Replicas   int32
	// ServicesToTarget points the stable and canary Services at the target's
	// pods, for good: they outlive the Rollout, so that the VirtualService
	// naming them keeps working.
	ServicesToTarget bool
	// DeletePrimary deletes primary; DeleteServices the Services Tugboat
	// created (never ones the user named).
	DeletePrimary, DeleteServices bool
	// Release removes the finalizer: the Rollout goes.
	Release bool
}

// handBack gives a deleted Rollout's application back to its target
// Deployment, then lets the Rollout go. Deleting a Rollout never takes an
// application down:
//
//  1. all traffic to stable (primary); once, the target gets primary's
//     template back if it holds a revision whose rollout never completed,
//     and at least primary's size;
//  2. once the target is Ready, all traffic and the Services go to the
//     target's pods, primary is deleted and the Rollout let go.
//
// A target that never gets Ready holds the Rollout, reported in status:
// letting go would leave no pods behind the traffic. With the target gone,
// primary keeps serving (the application is the user's to remove), unless
// the VirtualService goes too, when everything Tugboat created goes with it.
func handBack(p Progress, o Observed) Plan {
	d := o.Deletion
	switch {
	case d.TargetGone && !d.MeshGone && d.Primary:
		return Plan{
			Outcome: HandingBack, Transition: HandedBack, Next: p,
			Message: fmt.Sprintf("deployment %s is gone, so %s keeps serving through Services %s and %s; they are yours to remove",
				d.TargetName, "primary", d.StableService, d.CanaryService),
			Traffic:  ptr.To(traffic.AtRest()),
			HandBack: &HandBack{RouteTo: PrimaryPods, Release: true},
		}
	case d.TargetGone:
		return Plan{
			Outcome: HandingBack, Transition: HandedBack, Next: p,
			Message:  "the application is being deleted with its Rollout: primary and the Services Tugboat created go with it",
			HandBack: &HandBack{DeletePrimary: d.Primary, DeleteServices: true, Release: true},
		}
	}
	replicas := max(d.TargetReplicas, 1) // primary gone: whatever the target can do
	if d.Primary {
		replicas = d.PrimaryReplicas
	}
	hb := &HandBack{}
	plan := Plan{Outcome: HandingBack, Next: p, HandBack: hb, RequeueAfter: 30 * time.Second}
	if d.Primary && !d.PrimaryDeleting && !d.StableOnTarget {
		// Until the target serves, stable is primary; never back to primary
		// once the Services were handed over (a step after that failed).
		hb.RouteTo, plan.Traffic = PrimaryPods, ptr.To(traffic.AtRest())
	}
	targetReplicas := d.TargetReplicas
	// Primary serves the stable revision, or the one a rollback through the
	// steps is promoting (committed: primary took it).
	serves := p.StableRevision
	goingBack := p.RollingBackThroughSteps() && p.Promoting && o.PrimaryRevision == p.CanaryRevision
	if goingBack {
		serves = p.CanaryRevision
	}
	if !d.GivenBack {
		hb.GiveBack, hb.Replicas = true, replicas
		onServing := d.Primary && o.PrimaryRevision == serves
		hb.RestoreTemplate = serves != "" && o.TargetRevision != serves && (onServing || p.Pin != nil && o.StableRecorded)
		hb.FromRecord = hb.RestoreTemplate && !onServing
		targetReplicas = max(targetReplicas, replicas)
		if hb.RestoreTemplate {
			plan.Transition = TargetRestored
		}
	}
	want := max(1, min(replicas, targetReplicas))
	if hb.GiveBack || d.TargetServing < want {
		plan.Message = fmt.Sprintf("the Rollout is being deleted; deployment %s takes the traffic back once %d of its pods are Ready", d.TargetName, want)
		switch {
		case hb.RestoreTemplate && goingBack:
			plan.Message += fmt.Sprintf("; it gets revision %s, the one a rollback through the steps was promoting, from primary", serves)
		case hb.RestoreTemplate && p.Pin != nil && !p.Pin.ThroughSteps:
			plan.Message += fmt.Sprintf("; it gets back revision %s, the one rolled back to from %s", p.StableRevision, o.TargetRevision)
		case hb.RestoreTemplate:
			plan.Message += fmt.Sprintf("; it gets back stable revision %s: the rollout of revision %s never completed", p.StableRevision, o.TargetRevision)
		}
		return plan
	}
	return Plan{
		Outcome: HandingBack, Transition: HandedBack, Next: p,
		Message:  fmt.Sprintf("deployment %s serves all traffic again through Services %s and %s", d.TargetName, d.StableService, d.CanaryService),
		Traffic:  ptr.To(traffic.AtRest()),
		HandBack: &HandBack{RouteTo: TargetPods, ServicesToTarget: true, DeletePrimary: d.Primary, Release: true},
	}
}
