package rollout

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/utils/ptr"
)

// Every stage of a hand-back is a plan.
func TestHandBack(t *testing.T) {
	base := Deletion{TargetName: "app", Primary: true, PrimaryReplicas: 3, StableService: "app-stable", CanaryService: "app-canary"}
	deleting := func(p Progress, edit func(*Observed)) (Progress, Observed) {
		o := Observed{Now: t0, TargetRevision: p.StableRevision, PrimaryRevision: "s1", Deleting: true, Deletion: base}
		edit(&o)
		return p, o
	}
	atRest := Progress{StableRevision: "s1"}
	goingBack := Progress{StableRevision: "s1", CanaryRevision: "s0", Step: ptr.To[int32](2), Promoting: true,
		Pin: &Pin{Revision: "s0", Number: 1, From: "s1", Target: "s1", Since: t0, ThroughSteps: true}}
	waiting := func(want int32, hb *HandBack, msg string) Plan {
		return Plan{Outcome: HandingBack, Next: atRest,
			Message:  "the Rollout is being deleted; deployment app takes the traffic back once " + msg,
			HandBack: hb, Traffic: desired(0), RequeueAfter: 30 * time.Second}
	}
	for _, tt := range []struct {
		name string
		p    Progress
		edit func(*Observed)
		want Plan
	}{{
		name: "first look: traffic stays on primary, the target gets primary's size once",
		p:    atRest,
		edit: func(o *Observed) {},
		want: waiting(3, &HandBack{RouteTo: PrimaryPods, GiveBack: true, Replicas: 3}, "3 of its pods are Ready"),
	}, {
		name: "mid-rollout, the target holds a revision whose rollout never completed: it gets stable back",
		p:    at(2, t0),
		edit: func(o *Observed) { o.TargetRevision = "c1" },
		want: Plan{Outcome: HandingBack, Transition: TargetRestored, Next: at(2, t0),
			Message:  "the Rollout is being deleted; deployment app takes the traffic back once 3 of its pods are Ready; it gets back stable revision s1: the rollout of revision c1 never completed",
			HandBack: &HandBack{RouteTo: PrimaryPods, GiveBack: true, RestoreTemplate: true, Replicas: 3}, Traffic: desired(0), RequeueAfter: 30 * time.Second},
	}, {
		name: "deleted after a rollback was recorded and before primary took it: the target gets the revision rolled back to, from its record",
		p:    Progress{StableRevision: "s0", Pin: &Pin{Revision: "s0", Number: 1, From: "s1", Target: "s1", Since: t0}},
		edit: func(o *Observed) { o.TargetRevision, o.PrimaryRevision, o.StableRecorded = "s1", "s1", true },
		want: Plan{Outcome: HandingBack, Transition: TargetRestored, Next: Progress{StableRevision: "s0", Pin: &Pin{Revision: "s0", Number: 1, From: "s1", Target: "s1", Since: t0}},
			Message:  "the Rollout is being deleted; deployment app takes the traffic back once 3 of its pods are Ready; it gets back revision s0, the one rolled back to from s1",
			HandBack: &HandBack{RouteTo: PrimaryPods, GiveBack: true, RestoreTemplate: true, FromRecord: true, Replicas: 3}, Traffic: desired(0), RequeueAfter: 30 * time.Second},
	}, {
		name: "deleted while primary takes a revision rolled back to through the steps: the target gets that revision, from primary",
		p:    goingBack,
		edit: func(o *Observed) { o.TargetRevision, o.PrimaryRevision, o.StableRecorded = "s1", "s0", true },
		want: Plan{Outcome: HandingBack, Transition: TargetRestored, Next: goingBack,
			Message:  "the Rollout is being deleted; deployment app takes the traffic back once 3 of its pods are Ready; it gets revision s0, the one a rollback through the steps was promoting, from primary",
			HandBack: &HandBack{RouteTo: PrimaryPods, GiveBack: true, RestoreTemplate: true, Replicas: 3}, Traffic: desired(0), RequeueAfter: 30 * time.Second},
	}, {
		name: "given back, the target not Ready yet: waits, traffic on primary",
		p:    atRest,
		edit: func(o *Observed) {
			o.Deletion.GivenBack, o.Deletion.TargetReplicas, o.Deletion.TargetServing = true, 3, 1
		},
		want: waiting(3, &HandBack{RouteTo: PrimaryPods}, "3 of its pods are Ready"),
	}, {
		name: "scaled down by its owner since: waits for what they set",
		p:    atRest,
		edit: func(o *Observed) {
			o.Deletion.GivenBack, o.Deletion.TargetReplicas, o.Deletion.TargetServing = true, 1, 0
		},
		want: waiting(1, &HandBack{RouteTo: PrimaryPods}, "1 of its pods are Ready"),
	}, {
		name: "the target serves: traffic and Services to it, primary deleted, the Rollout let go",
		p:    atRest,
		edit: func(o *Observed) {
			o.Deletion.GivenBack, o.Deletion.TargetReplicas, o.Deletion.TargetServing = true, 3, 3
		},
		want: Plan{Outcome: HandingBack, Transition: HandedBack, Next: atRest,
			Message: "deployment app serves all traffic again through Services app-stable and app-canary", Traffic: desired(0),
			HandBack: &HandBack{RouteTo: TargetPods, ServicesToTarget: true, DeletePrimary: true, Release: true}},
	}, {
		name: "the Services were handed over already: never back to primary",
		p:    atRest,
		edit: func(o *Observed) {
			o.Deletion.GivenBack, o.Deletion.StableOnTarget, o.Deletion.TargetReplicas, o.Deletion.TargetServing = true, true, 3, 2
		},
		want: Plan{Outcome: HandingBack, Next: atRest, HandBack: &HandBack{}, RequeueAfter: 30 * time.Second,
			Message: "the Rollout is being deleted; deployment app takes the traffic back once 3 of its pods are Ready"},
	}, {
		name: "primary gone: whatever the target can do",
		p:    atRest,
		edit: func(o *Observed) {
			o.Deletion.Primary, o.Deletion.GivenBack, o.Deletion.TargetReplicas, o.Deletion.TargetServing = false, true, 2, 2
		},
		want: Plan{Outcome: HandingBack, Transition: HandedBack, Next: atRest,
			Message: "deployment app serves all traffic again through Services app-stable and app-canary", Traffic: desired(0),
			HandBack: &HandBack{RouteTo: TargetPods, ServicesToTarget: true, Release: true}},
	}, {
		name: "the target gone, the VirtualService kept: primary keeps serving, the Rollout goes",
		p:    atRest,
		edit: func(o *Observed) { o.Deletion.TargetGone = true },
		want: Plan{Outcome: HandingBack, Transition: HandedBack, Next: atRest, Traffic: desired(0),
			Message:  "deployment app is gone, so primary keeps serving through Services app-stable and app-canary; they are yours to remove",
			HandBack: &HandBack{RouteTo: PrimaryPods, Release: true}},
	}, {
		name: "the whole application deleted: primary and Tugboat's Services go with it",
		p:    atRest,
		edit: func(o *Observed) { o.Deletion.TargetGone, o.Deletion.MeshGone = true, true },
		want: Plan{Outcome: HandingBack, Transition: HandedBack, Next: atRest,
			Message:  "the application is being deleted with its Rollout: primary and the Services Tugboat created go with it",
			HandBack: &HandBack{DeletePrimary: true, DeleteServices: true, Release: true}},
	}} {
		t.Run(tt.name, func(t *testing.T) {
			p, o := deleting(tt.p, tt.edit)
			if diff := cmp.Diff(tt.want, Decide(spec, p, o), countsApart); diff != "" {
				t.Errorf("Decide() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
