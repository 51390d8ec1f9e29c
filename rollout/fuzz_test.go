package rollout

import (
	"testing"
	"time"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	"k8s.io/utils/ptr"
)

// FuzzDecide feeds Decide any progress status can hold (hand-edited status
// included) and any observation: it never panics, traffic always splits 100
// ways, primary is only promoted once status calls the canary promoting, and
// the step recorded is one the spec has.
func FuzzDecide(f *testing.F) {
	f.Add(int32(3), uint8(0b0101), uint8(0b1011), uint16(0), int64(90), uint8(1))
	f.Add(int32(6), uint8(0b0011), uint8(0b0111), uint16(0b1), int64(400), uint8(2))
	f.Add(int32(-7), uint8(0xff), uint8(0xff), uint16(0xffff), int64(-5), uint8(3))
	f.Add(int32(1<<30), uint8(0), uint8(0), uint16(0b100), int64(1<<40), uint8(0))
	revs := []string{"", "s1", "c1", "c2"}
	phases := []argo.AnalysisPhase{"", argo.AnalysisPhaseRunning, argo.AnalysisPhaseSuccessful, argo.AnalysisPhaseFailed, argo.AnalysisPhaseError, argo.AnalysisPhaseInconclusive}
	f.Fuzz(func(t *testing.T, step int32, revBits, flags uint8, requests uint16, seconds int64, phaseBits uint8) {
		p := Progress{
			StableRevision: revs[revBits&3],
			CanaryRevision: revs[(revBits>>2)&3],
			Step:           ptr.To(step),
			StepStart:      t0,
			StartedAt:      t0,
			Promoting:      flags&1 != 0,
		}
		if flags&2 != 0 {
			p.Abort = &Abort{Reason: AnalysisFailed, Message: "failed"}
		}
		if flags&4 != 0 {
			p.StepsHash = "other"
		}
		if flags&8 != 0 {
			p.Step = nil
		}
		o := Observed{
			Now:             t0.Add(time.Duration(seconds%(1<<33)) * time.Second),
			TargetRevision:  revs[1+int((revBits>>4)&3)%3], // observe always sees the target's, unless it is gone
			PrimaryRevision: revs[(revBits>>6)&3],
			PrimaryReady:    flags&16 != 0,
			CanaryReady:     flags&32 != 0,
			Replicas:        int32(requests>>8) % 50,
			Paused:          flags&64 != 0,
			StableRecorded:  flags&128 != 0,
			Analysis:        phases[int(phaseBits&7)%len(phases)],
			Background:      phases[int(phaseBits>>3&7)%len(phases)],
		}
		if requests&1 != 0 {
			o.Requests.Promote = "p"
		}
		if requests&2 != 0 {
			o.Requests.PromoteFull = "f"
		}
		if requests&4 != 0 {
			o.Requests.Abort = "a"
		}
		if requests&8 != 0 {
			o.Requests.Retry = "r"
		}
		if requests&16 != 0 {
			o.WindowClosed, o.WindowOpens = "closed", o.Now.Add(time.Hour)
		}
		if requests&32 != 0 {
			o.Problem = Invalid("broken")
		}
		if requests&64 != 0 {
			o.Problem, o.TargetRevision, o.CanaryReady = TargetMissing("gone"), "", false
		}
		if requests&128 != 0 { // pinned by a rollback, on any revision, held off any
			p.Pin = &Pin{Request: "r0", Revision: p.StableRevision, Number: 1, From: "c1", Target: revs[(requests>>9)&3], Since: t0}
		}
		if requests&256 != 0 {
			o.Requests.RollbackCancel = "x"
		}
		if phaseBits&64 != 0 { // rolling back through the steps, to the canary's revision
			p.Pin = &Pin{Request: "r0", Revision: p.CanaryRevision, Number: 1, From: p.StableRevision, Target: revs[(requests>>9)&3], Since: t0, ThroughSteps: true}
		}
		o.CanaryRecorded = o.StableRecorded
		if requests&(1<<11) != 0 { // a rollback request, to any revision, recorded or not, at once or through the steps, or refused
			o.Requests.Rollback = "r1"
			o.Rollback = &RollbackTo{ID: "r1", Revision: revs[(requests>>12)&3], Number: 2, Recorded: requests&(1<<14) != 0, ThroughSteps: phaseBits&128 != 0}
			if requests&(1<<15) != 0 {
				o.Rollback.Refused = "refused"
			}
		}
		s := spec
		s.StepsHash = "steps"
		plan := Decide(s, p, o)
		if tr := plan.Traffic; tr != nil {
			if tr.Split.Stable+tr.Split.Canary != 100 || tr.Split.Canary < 0 || tr.Split.Canary > 100 {
				t.Fatalf("split %v", tr.Split)
			}
		}
		if plan.PromotePrimary && !plan.Next.Promoting {
			t.Fatalf("primary promoted while status does not call the canary promoting: %+v", plan)
		}
		if plan.PromotePrimary && plan.RestorePrimary || plan.RollBackPrimary && (plan.PromotePrimary || plan.RestorePrimary) {
			t.Fatalf("primary given two templates: %+v", plan)
		}
		n := plan.Next
		atOnce := n.Pin != nil && !n.Pin.ThroughSteps && o.Rollback != nil && n.StableRevision == o.Rollback.Revision && !n.InRollout() && o.Rollback.Recorded
		promotedBack := n.RollingBackThroughSteps() && n.Promoting && n.CanaryRevision == n.Pin.Revision && o.CanaryRecorded
		if plan.RollBackPrimary && !atOnce && !promotedBack {
			t.Fatalf("primary rolled back to an unrecorded revision, without a pin, or before the steps are done: %+v", plan.Next)
		}
		if plan.PromotePrimary && n.RollingBackThroughSteps() {
			t.Fatalf("primary given the target's template while rolling back through the steps: %+v", plan.Next)
		}
		if n.RollingBackThroughSteps() && (n.CanaryRevision != n.Pin.Revision || n.StableRevision == "") {
			t.Fatalf("rolling back through the steps to %s while rolling out %q: %+v", n.Pin.Revision, n.CanaryRevision, n)
		}
		if o.Rollback != nil && p.StableRevision != "" && !o.Deleting && (plan.Next.Requests.Rollback != o.Rollback.ID || plan.Next.RollbackAnswer == nil) {
			// Answered, whatever holds, once there is a revision to go back from.
			t.Fatalf("rollback request not answered: %+v", plan.Next)
		}
		if plan.Next.Pin != nil && !plan.Next.Pin.ThroughSteps && (plan.Next.InRollout() || plan.Traffic == nil || plan.Traffic.Split.Canary != 0) && o.Problem == nil {
			t.Fatalf("pinned with a rollout under way or traffic on the canary: %+v %+v", plan.Next, plan.Traffic)
		}
		if st := plan.Next.Step; st != nil && (*st < 0 || int(*st) > len(s.Steps)) {
			t.Fatalf("step %d recorded for %d steps", *st, len(s.Steps))
		}
		if plan.Next.Promoting && (plan.Next.Abort != nil || !plan.Next.InRollout()) {
			t.Fatalf("promoting recorded with abort %v, canary %q", plan.Next.Abort, plan.Next.CanaryRevision)
		}
	})
}
