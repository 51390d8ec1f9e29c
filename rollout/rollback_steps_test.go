package rollout

import (
	"strings"
	"testing"
	"time"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	"github.com/google/go-cmp/cmp"
	"k8s.io/utils/ptr"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

// A rollback further back than fastTrackRevisions goes through the steps: a
// canary of the old revision from history, gated by analysis, that pins the
// Rollout once promoted. Deployment windows do not hold it.
func TestRollBackThroughSteps(t *testing.T) {
	start := t0.Add(time.Hour)
	o := ready(start)
	o.TargetRevision, o.StableImages, o.CanaryImages, o.CanaryRecorded = "s2", []string{"app:2"}, []string{"app:0"}, true
	o.PrimaryRevision, o.StableRecorded = "s2", true
	o.WindowClosed, o.WindowOpens = "outside the deployment windows", start.Add(24*time.Hour)
	o.Requests.Rollback = "r1"
	o.Rollback = &RollbackTo{ID: "r1", Revision: "s0", Number: 1, Recorded: true, ThroughSteps: true, Reason: "bad schema", User: "jane"}

	// Asked at rest: the canary of revision s0 starts at the first step.
	plan := Decide(spec, Progress{StableRevision: "s2"}, o)
	n := plan.Next
	if plan.Transition != RollingBack || plan.Outcome != WaitingForCanary || n.StableRevision != "s2" || n.CanaryRevision != "s0" ||
		!n.RollingBackThroughSteps() || plan.RollBackPrimary || plan.PromotePrimary || plan.Traffic.Split.Canary != 0 {
		t.Fatalf("rollback through the steps began as %s/%s, next %+v, traffic %+v\n%s", plan.Outcome, plan.Transition, n, plan.Traffic, plan.Message)
	}
	if a := n.RollbackAnswer; a == nil || !a.Accepted || !strings.Contains(a.Message, "rolling back to revision 1 (s0) from s2 through the steps") || !strings.Contains(a.Message, "by jane: bad schema") {
		t.Errorf("answer %+v", a)
	}
	if want := []v1alpha1.RevisionRollbacks{{Revision: "s2", Images: []string{"app:2"}, Requested: 1}}; !cmp.Equal(n.Rollbacks, want) {
		t.Errorf("counts %+v, want %+v", n.Rollbacks, want)
	}
	o.Rollback, o.Requests = nil, v1alpha1.Requests{}

	// Its steps run as any canary's, windows closed or not, and the
	// GitOps tool re-applying the target's template changes nothing.
	o.Now = start.Add(time.Second)
	plan = Decide(spec, plan.Next, o)
	if plan.Outcome != Holding || plan.Traffic.Split.Canary != 10 || !plan.Next.RollingBackThroughSteps() {
		t.Fatalf("first step: %s, traffic %+v\n%s", plan.Outcome, plan.Traffic, plan.Message)
	}
	mid := plan.Next

	// Analysis failing aborts it: traffic back on stable, the abort counted
	// for the old revision with its own images, and the pin stays to be
	// retried or cancelled.
	failing := o
	failing.Now, failing.Analysis, failing.AnalysisMessage = start.Add(2*time.Minute), argo.AnalysisPhaseFailed, "error rate 0.2"
	atAnalysis := mid
	atAnalysis.Step = ptr.To[int32](3)
	aborted := Decide(spec, atAnalysis, failing)
	if aborted.Outcome != AnalysisFailed || aborted.Traffic.Split.Canary != 0 || !aborted.Next.RollingBackThroughSteps() {
		t.Fatalf("analysis failed: %s, traffic %+v, next %+v", aborted.Outcome, aborted.Traffic, aborted.Next)
	}
	if c := aborted.Next.Rollbacks[len(aborted.Next.Rollbacks)-1]; c.Revision != "s0" || c.Aborted != 1 || !cmp.Equal(c.Images, []string{"app:0"}) {
		t.Errorf("abort counted as %+v", c)
	}
	if again := Decide(spec, aborted.Next, o); again.Outcome != AnalysisFailed || !cmp.Equal(again.Next, aborted.Next) {
		t.Errorf("decided again while aborted: %s, next %+v", again.Outcome, again.Next)
	}

	// The target gone on the way stops it, saying so.
	gone := o
	gone.Problem, gone.TargetRevision = TargetMissing("deployment prod/web not found"), ""
	if plan := Decide(spec, mid, gone); plan.Outcome != TargetNotFound || plan.Next.Abort == nil || plan.Traffic.Split.Canary != 0 ||
		!strings.Contains(plan.Message, "while rolling back through the steps, so the rollback stops") {
		t.Errorf("target gone on the way: %s, abort %+v\n%s", plan.Outcome, plan.Next.Abort, plan.Message)
	}

	// Every step done: primary takes the old revision from its record, never
	// the target's template.
	promoting := mid
	promoting.Step = ptr.To(int32(len(spec.Steps)))
	plan = Decide(spec, promoting, o)
	if plan.Outcome != Promoting || !plan.RollBackPrimary || plan.PromotePrimary || !plan.Next.Promoting {
		t.Fatalf("promotion: %s, rollBackPrimary %v, promotePrimary %v\n%s", plan.Outcome, plan.RollBackPrimary, plan.PromotePrimary, plan.Message)
	}
	// Once primary runs it, Ready, the rollback holds: pinned on s0 while
	// the target is still s2.
	o.PrimaryRevision, o.Now = "s0", start.Add(5*time.Minute)
	plan = Decide(spec, plan.Next, o)
	n = plan.Next
	if plan.Outcome != RolledBack || plan.Transition != RolledBack || n.StableRevision != "s0" || n.InRollout() || n.Pin == nil || n.Pin.ThroughSteps ||
		n.Pin.Target != "s2" || n.Pin.From != "s2" || !n.Pin.Since.Equal(o.Now) || plan.Traffic.Split.Canary != 0 {
		t.Fatalf("arrived: %s/%s, next %+v, pin %+v", plan.Outcome, plan.Transition, n, n.Pin)
	}
	if again := Decide(spec, n, o); again.Outcome != RolledBack || again.Event() != "" || again.RestorePrimary {
		t.Errorf("pinned, decided again: %s/%s %+v", again.Outcome, again.Event(), again)
	}

	// On the way, what ends it: traffic back on stable, and what the target
	// holds rolls out as usual (or, at stable, rests).
	for _, tt := range []struct {
		name       string
		change     func(*Observed)
		outcome    Outcome
		transition Outcome
		says       string
	}{
		{"cancelled on request", func(o *Observed) { o.Requests.RollbackCancel = "x1" }, Healthy, Unpinned, "cancelled on request"},
		// The fix is a rollout like any other: it waits for its window.
		{"the target takes a new template (the fix)", func(o *Observed) { o.TargetRevision = "s3" }, OutsideWindow, Unpinned, "the target has a new template (s3)"},
		{"the old revision's record is gone", func(o *Observed) { o.CanaryRecorded = false }, Healthy, Unpinned, "the record of revision 1 (s0) is gone"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o := o
			o.PrimaryRevision = "s2"
			tt.change(&o)
			plan := Decide(spec, mid, o)
			if plan.Outcome != tt.outcome || plan.Transition != tt.transition || plan.Next.Pin != nil || plan.Next.StableRevision != "s2" ||
				plan.Traffic.Split.Canary != 0 || !strings.Contains(plan.Message, tt.says) {
				t.Errorf("%s/%s, next %+v, traffic %+v\n%s", plan.Outcome, plan.Transition, plan.Next, plan.Traffic, plan.Message)
			}
		})
	}

	// A rollback to a revision close enough, asked on the way, goes there at
	// once and aborts the canary of the old one.
	o.PrimaryRevision = "s2"
	o.Requests.Rollback = "r2"
	o.Rollback = &RollbackTo{ID: "r2", Revision: "s1", Number: 2, Recorded: true}
	plan = Decide(spec, mid, o)
	if plan.Outcome != RolledBack || !plan.RollBackPrimary || plan.Next.StableRevision != "s1" || plan.Next.Pin.ThroughSteps {
		t.Fatalf("at once on the way: %s %+v", plan.Outcome, plan.Next)
	}
	want := []v1alpha1.RevisionRollbacks{{Revision: "s2", Images: []string{"app:2"}, Requested: 1}, {Revision: "s0", Images: []string{"app:0"}, Aborted: 1}}
	if diff := cmp.Diff(want, plan.Next.Rollbacks); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
}

// A request to cancel a rollback is answered in status, as a rollback
// request is: lifted, or nothing to lift.
func TestCancelAnswered(t *testing.T) {
	o := ready(t0.Add(time.Hour))
	o.TargetRevision, o.PrimaryRevision, o.CanaryRecorded = "s1", "s0", true
	o.Requests.RollbackCancel = "x1"
	held := Progress{StableRevision: "s0", Pin: &Pin{Request: "r1", Revision: "s0", Number: 1, From: "s1", Target: "s1", Since: t0}}
	onTheWay := Progress{StableRevision: "s1", CanaryRevision: "s0", Step: ptr.To[int32](1), StepStart: t0, StartedAt: t0,
		Pin: &Pin{Request: "r1", Revision: "s0", Number: 1, From: "s1", Target: "s1", Since: t0, ThroughSteps: true}}
	for _, tt := range []struct {
		name     string
		p        Progress
		accepted bool
		says     string
	}{
		{"a pin that holds is lifted", held, true, "rollback to revision 1 (s0) lifted"},
		{"a rollback on its way is cancelled", onTheWay, true, "rollback to revision 1 (s0) through the steps cancelled; revision s1 serves"},
		{"nothing to cancel", Progress{StableRevision: "s1"}, false, "nothing to cancel"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n := Decide(spec, tt.p, o).Next
			a := n.RollbackAnswer
			if n.Requests.RollbackCancel != "x1" || a == nil || a.ID != "x1" || a.Accepted != tt.accepted || !strings.Contains(a.Message, tt.says) {
				t.Errorf("acknowledged %q, answer %+v", n.Requests.RollbackCancel, a)
			}
		})
	}
}
