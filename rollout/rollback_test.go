package rollout

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"k8s.io/utils/ptr"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

// countsApart leaves the rollback counts out of plan comparisons;
// TestRollbackCounts checks them.
var countsApart = cmpopts.IgnoreFields(Progress{}, "Rollbacks")

func TestRollBack(t *testing.T) {
	later := t0.Add(time.Hour)
	atRest := func(target string) Observed {
		o := ready(later)
		o.TargetRevision, o.StableImages, o.CanaryImages = target, []string{"app:2"}, []string{"app:" + target}
		return o
	}
	askingAs := func(id string, o Observed, to RollbackTo) Observed {
		to.ID = id
		o.Requests.Rollback, o.Rollback = id, &to
		return o
	}
	asking := func(o Observed, to RollbackTo) Observed { return askingAs("r1", o, to) }
	pin := &Pin{Request: "r1", Revision: "s0", Number: 1, From: "s1", Target: "s1", Reason: "bad build", RequestedBy: "jane", Since: later}
	pinnedAt := Progress{StableRevision: "s0", Pin: pin, Requests: v1alpha1.Requests{Rollback: "r1"}}

	for _, tt := range []struct {
		name string
		p    Progress
		o    Observed
		// check the parts of the plan that matter
		outcome, transition Outcome
		stable              string
		pinned              bool
		rollBackPrimary     bool
		canaryWeight        int32
		answer              string // in RollbackAnswer.Message
		accepted            bool
	}{{
		name:    "at rest, to a recorded revision: pinned there, primary takes it after status",
		p:       Progress{StableRevision: "s1"},
		o:       asking(atRest("s1"), RollbackTo{Revision: "s0", Number: 1, Recorded: true, Reason: "bad build", User: "jane"}),
		outcome: RolledBack, transition: RolledBack, stable: "s0", pinned: true, rollBackPrimary: true, accepted: true,
		answer: "rolled back to revision 1 (s0) from s1 by jane: bad build",
	}, {
		name:    "mid-rollout: the canary is aborted, traffic all on primary, then back",
		p:       at(2, t0),
		o:       asking(atRest("c1"), RollbackTo{Revision: "s0", Number: 1, Recorded: true}),
		outcome: RolledBack, transition: RolledBack, stable: "s0", pinned: true, rollBackPrimary: true, accepted: true,
		answer: "rollout of c1 aborted; rolled back to revision 1 (s0) from s1",
	}, {
		name:    "a revision not in history is refused, nothing changes",
		p:       Progress{StableRevision: "s1"},
		o:       asking(atRest("s1"), RollbackTo{Number: 7, Refused: "rollback refused: revision 7 is not in the history of rollout ns/app (revisions 1 to 2)"}),
		outcome: Healthy, transition: RollbackRefused, stable: "s1",
		answer: "revision 7 is not in the history",
	}, {
		name:    "the revision serving is refused",
		p:       Progress{StableRevision: "s1"},
		o:       asking(atRest("s1"), RollbackTo{Revision: "s1", Number: 2, Recorded: true}),
		outcome: Healthy, transition: RollbackRefused, stable: "s1",
		answer: "revision 2 (s1) is the one serving",
	}, {
		name:    "refused mid-rollout: the rollout goes on",
		p:       at(0, later),
		o:       asking(atRest("c1"), RollbackTo{Number: 9, Refused: "rollback refused: no such revision"}),
		outcome: Holding, transition: Advanced, stable: "s1", canaryWeight: 10, // its own event; the refusal is in the answer
		answer: "no such revision",
	}, {
		name: "during a committed promotion that does not get Ready: the way out",
		p:    done(t0),
		o: func() Observed {
			o := asking(atRest("c1"), RollbackTo{Revision: "s0", Number: 1, Recorded: true})
			o.PrimaryRevision, o.PrimaryReady = "c1", false
			return o
		}(),
		outcome: RolledBack, transition: RolledBack, stable: "s0", pinned: true, rollBackPrimary: true, accepted: true,
		answer: "rollout of c1 aborted",
	}, {
		name: "under a problem only a person can fix: refused, saying which",
		p:    Progress{StableRevision: "s1"},
		o: func() Observed {
			o := asking(atRest("s1"), RollbackTo{Revision: "s0", Number: 1, Recorded: true})
			o.Problem = Invalid("virtualservice ns/app has no route primary")
			return o
		}(),
		outcome: InvalidSpec, transition: RollbackRefused, stable: "s1",
		answer: "rollback refused until this is fixed: virtualservice ns/app has no route primary",
	}, {
		name:    "pinned: the target still on the revision rolled back from is not rolled out",
		p:       pinnedAt,
		o:       atRest("s1"),
		outcome: RolledBack, stable: "s0", pinned: true,
	}, {
		name:    "pinned: a GitOps re-apply of the same template changes nothing, requests have nothing to act on",
		p:       pinnedAt,
		o:       func() Observed { o := atRest("s1"); o.Requests.Promote, o.Requests.Abort = "p1", "a1"; return o }(),
		outcome: RolledBack, stable: "s0", pinned: true,
	}, {
		name:    "pinned: a new template (the fix) starts a normal rollout and ends the pin",
		p:       pinnedAt,
		o:       atRest("s2"),
		outcome: WaitingForCanary, transition: Started, stable: "s0",
	}, {
		name:    "pinned: the target reverted to the revision rolled back to ends the pin at rest",
		p:       pinnedAt,
		o:       atRest("s0"),
		outcome: Healthy, transition: Unpinned, stable: "s0",
	}, {
		name:    "pinned: cancel lifts the pin, and the target's template rolls out",
		p:       pinnedAt,
		o:       func() Observed { o := atRest("s1"); o.Requests.RollbackCancel = "x1"; return o }(),
		outcome: WaitingForCanary, transition: Started, stable: "s0",
	}, {
		name:    "pinned: rolled back again, further",
		p:       pinnedAt,
		o:       askingAs("r2", atRest("s1"), RollbackTo{Revision: "sm1", Number: 1, Recorded: true}),
		outcome: RolledBack, transition: RolledBack, stable: "sm1", pinned: true, rollBackPrimary: true, accepted: true,
	}} {
		t.Run(tt.name, func(t *testing.T) {
			plan := Decide(spec, tt.p, tt.o)
			n := plan.Next
			if plan.Outcome != tt.outcome || plan.Transition != tt.transition || n.StableRevision != tt.stable || (n.Pin != nil) != tt.pinned || plan.RollBackPrimary != tt.rollBackPrimary {
				t.Errorf("outcome %s, transition %q, stable %s, pin %+v, rollBackPrimary %v\n%s", plan.Outcome, plan.Transition, n.StableRevision, n.Pin, plan.RollBackPrimary, plan.Message)
			}
			if held := plan.Outcome == InvalidSpec; plan.Traffic == nil && !held || plan.Traffic != nil && plan.Traffic.Split.Canary != tt.canaryWeight {
				t.Errorf("traffic %+v, want %d%% on the canary", plan.Traffic, tt.canaryWeight)
			}
			if tt.o.Rollback != nil {
				a := n.RollbackAnswer
				if n.Requests.Rollback != tt.o.Rollback.ID || a == nil || a.ID != tt.o.Rollback.ID || a.Accepted != tt.accepted || !strings.Contains(a.Message, tt.answer) {
					t.Errorf("request %q acknowledged as %q, answer %+v; want accepted %v, saying %q", tt.o.Rollback.ID, n.Requests.Rollback, a, tt.accepted, tt.answer)
				}
			}
			if tt.pinned && plan.CanaryReplicas == nil || tt.pinned && *plan.CanaryReplicas != 0 {
				t.Errorf("canary replicas %v while pinned", plan.CanaryReplicas)
			}
			// Decided again on what it recorded, with the request answered,
			// the plan changes nothing more.
			o2 := tt.o
			o2.Rollback, o2.Requests = nil, v1alpha1.Requests{}
			if plan.RollBackPrimary {
				o2.PrimaryRevision = n.StableRevision
			}
			again := Decide(spec, n, o2)
			if again.RollBackPrimary || again.RestorePrimary || !cmp.Equal(again.Next.Pin, n.Pin) || again.Event() != "" && tt.pinned {
				t.Errorf("decided again: %+v", again)
			}
		})
	}
}

// While status records the rollback and primary still runs the revision
// rolled back from (the controller stopped in between), primary is put on
// the recorded revision: it never serves one status does not call stable
// for longer than a reconcile.
func TestRollBackFinishedAfterARestart(t *testing.T) {
	p := Progress{StableRevision: "s0", Pin: &Pin{Revision: "s0", Number: 1, From: "s1", Target: "s1", Since: t0}}
	o := ready(t0.Add(time.Minute))
	o.TargetRevision, o.PrimaryRevision, o.StableRecorded = "s1", "s1", true
	if plan := Decide(spec, p, o); !plan.RestorePrimary || plan.Outcome != RolledBack {
		t.Errorf("%+v", plan)
	}
}

func TestRollbackCounts(t *testing.T) {
	o := ready(t0.Add(time.Hour))
	o.CanaryImages, o.StableImages = []string{"app:3"}, []string{"app:2"}
	// An analysis failure counts an abort of the canary.
	p := at(3, t0)
	o.Analysis = "Failed"
	plan := Decide(spec, p, o)
	want := []v1alpha1.RevisionRollbacks{{Revision: "c1", Images: []string{"app:3"}, Aborted: 1}}
	if diff := cmp.Diff(want, plan.Next.Rollbacks); diff != "" {
		t.Errorf("after an abort (-want +got):\n%s", diff)
	}
	// Decided again while aborted, it is not counted twice.
	o.Analysis = ""
	if diff := cmp.Diff(want, Decide(spec, plan.Next, o).Next.Rollbacks); diff != "" {
		t.Errorf("decided again (-want +got):\n%s", diff)
	}
	// A requested rollback counts the stable revision it leaves.
	at := Progress{StableRevision: "s1", Rollbacks: want}
	o.TargetRevision, o.Requests.Rollback = "s1", "r1"
	o.Rollback = &RollbackTo{ID: "r1", Revision: "s0", Number: 1, Recorded: true}
	got := Decide(spec, at, o).Next.Rollbacks
	want = append(want, v1alpha1.RevisionRollbacks{Revision: "s1", Images: []string{"app:2"}, Requested: 1})
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("after a rollback (-want +got):\n%s", diff)
	}
	// One mid-rollout also counts the rollout it aborts.
	o.TargetRevision = "c2"
	mid := Progress{StableRevision: "s1", CanaryRevision: "c2", Step: ptr.To[int32](1), StepStart: t0, StartedAt: t0}
	got = Decide(spec, mid, o).Next.Rollbacks
	want = []v1alpha1.RevisionRollbacks{{Revision: "s1", Images: []string{"app:2"}, Requested: 1}, {Revision: "c2", Images: []string{"app:3"}, Aborted: 1}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("after a rollback mid-rollout (-want +got):\n%s", diff)
	}
	// Counts are bounded; the stalest go first.
	var many []v1alpha1.RevisionRollbacks
	for i := range v1alpha1.MaxRollbackCounts + 5 {
		many = countRollback(many, string(rune('a'+i%26))+strings.Repeat("x", i/26), nil, causeAborted)
	}
	last := v1alpha1.MaxRollbackCounts + 4
	if len(many) != v1alpha1.MaxRollbackCounts || many[len(many)-1].Revision != string(rune('a'+last%26))+strings.Repeat("x", last/26) {
		t.Errorf("%d counts kept, last %+v", len(many), many[len(many)-1])
	}
}
