package rollout

import (
	"testing"
	"time"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	"github.com/google/go-cmp/cmp"
	"k8s.io/utils/ptr"
)

// A rollout with a problem only a person can fix holds where it is, and
// every abort still acts.
func TestHeld(t *testing.T) {
	later := t0.Add(90 * time.Second)
	missing := &SpecError{Outcome: InvalidSpec, Message: "analysistemplate ns/sr not found"}
	gone := &SpecError{Outcome: TargetNotFound, Message: "deployment ns/app not found"}
	with := func(o Observed, problem *SpecError, edit func(*Observed)) Observed {
		o.Problem = problem
		if edit != nil {
			edit(&o)
		}
		return o
	}
	stopped := func(p Progress, why Outcome, msg string) Plan {
		return Plan{Outcome: why, Message: msg, Next: p, RequeueAfter: 30 * time.Second}
	}
	aborted := func(p Progress, why Outcome, msg string) Plan {
		next := p
		next.Abort = &Abort{why, msg}
		return Plan{Outcome: why, Message: msg, Next: next, Traffic: desired(0), CanaryReplicas: ptr.To[int32](0), RequeueAfter: 30 * time.Second}
	}
	abortedBy := func(why Outcome, msg string) Progress {
		p := at(1, t0)
		p.Abort = &Abort{why, msg}
		return p
	}
	for _, tt := range []struct {
		name string
		p    Progress
		o    Observed
		want Plan
	}{{
		name: "at rest: nothing to protect",
		p:    Progress{StableRevision: "s1"},
		o:    with(ready(later), gone, func(o *Observed) { o.TargetRevision = "" }),
		want: stopped(Progress{StableRevision: "s1"}, TargetNotFound, "deployment ns/app not found"),
	}, {
		name: "at rest, an abort request has nothing to abort",
		p:    Progress{StableRevision: "s1"},
		o:    with(ready(later), missing, func(o *Observed) { o.Requests.Abort = "a1" }),
		want: stopped(Progress{StableRevision: "s1"}, InvalidSpec, "analysistemplate ns/sr not found"),
	}, {
		name: "mid-rollout, a missing template holds traffic where it is",
		p:    at(3, t0),
		o:    with(ready(later), missing, nil),
		want: stopped(at(3, t0), InvalidSpec, "analysistemplate ns/sr not found"),
	}, {
		name: "mid-rollout, the target gone: aborted, traffic back on stable",
		p:    at(1, t0),
		o:    with(ready(later), gone, func(o *Observed) { o.TargetRevision, o.CanaryReady = "", false }),
		want: aborted(at(1, t0), TargetNotFound, "deployment ns/app not found mid-rollout, so the canary has no pods; traffic back on stable"),
	}, {
		name: "the target gone once primary runs the canary it promotes: the promotion completes",
		p:    done(t0),
		o:    with(ready(later), gone, func(o *Observed) { o.TargetRevision, o.CanaryReady, o.PrimaryRevision = "", false, "c1" }),
		want: Plan{Outcome: Healthy, Transition: Promoted, Message: "revision c1 is stable and serves all traffic",
			Next: Progress{StableRevision: "c1"}, Traffic: desired(0), CanaryReplicas: ptr.To[int32](0)},
	}, {
		name: "the target gone with primary on the canary that status does not promote: aborted, and primary put back on stable",
		p:    at(3, t0),
		o: with(ready(later), gone, func(o *Observed) {
			o.TargetRevision, o.CanaryReady, o.PrimaryRevision, o.StableRecorded = "", false, "c1", true
		}),
		want: func() Plan {
			p := aborted(at(3, t0), TargetNotFound, "deployment ns/app not found mid-rollout, so the canary has no pods; traffic back on stable")
			p.RestorePrimary = true
			p.Message += "; primary runs revision c1, which is neither stable nor being promoted: putting stable revision s1 back"
			return p
		}(),
	}, {
		name: "mid-rollout, a person's abort is carried out",
		p:    at(3, t0),
		o:    with(ready(later), missing, func(o *Observed) { o.Requests.Abort = "a1" }),
		want: func() Plan {
			p := at(3, t0)
			p.Requests.Abort = "a1"
			return aborted(p, AbortedByUser, "aborted on request while analysistemplate ns/sr not found; traffic back on stable")
		}(),
	}, {
		name: "mid-rollout, a failed background analysis aborts",
		p:    at(3, t0),
		o: with(ready(later), missing, func(o *Observed) {
			o.Background, o.BackgroundMessage = argo.AnalysisPhaseFailed, "error-rate: 0.3 > 0.01"
		}),
		want: aborted(at(3, t0), AnalysisFailed, "background analysis Failed: error-rate: 0.3 > 0.01 (while analysistemplate ns/sr not found); traffic back on stable"),
	}, {
		name: "mid-rollout, the canary not Ready: the deadline keeps counting",
		p:    at(3, t0),
		o:    with(ready(later), missing, func(o *Observed) { o.CanaryReady = false }),
		want: func() Plan {
			p := at(3, t0)
			p.NotReadySince = later
			return stopped(p, InvalidSpec, "analysistemplate ns/sr not found")
		}(),
	}, {
		name: "mid-rollout, the canary not Ready past the deadline: aborts",
		p:    func() Progress { p := at(3, t0); p.NotReadySince = t0; return p }(),
		o:    with(ready(t0.Add(6*time.Minute)), missing, func(o *Observed) { o.CanaryReady = false }),
		want: aborted(at(3, t0), ProgressDeadlineExceeded, "the canary was not Ready within 5m0s (while analysistemplate ns/sr not found); traffic back on stable"),
	}, {
		name: "already aborted for this reason: the abort's message stays",
		p:    abortedBy(TargetNotFound, "gone; traffic back on stable"),
		o:    with(ready(later), gone, nil),
		want: stopped(abortedBy(TargetNotFound, "gone; traffic back on stable"), TargetNotFound, "gone; traffic back on stable"),
	}, {
		name: "already aborted, another problem is reported",
		p:    abortedBy(AnalysisFailed, "failed; traffic back on stable"),
		o:    with(ready(later), missing, nil),
		want: stopped(abortedBy(AnalysisFailed, "failed; traffic back on stable"), InvalidSpec, "analysistemplate ns/sr not found"),
	}} {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, Decide(spec, tt.p, tt.o), countsApart); diff != "" {
				t.Errorf("Decide() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// Primary runs only a revision that status calls stable or promoting.
func TestPrimaryFollowsStatus(t *testing.T) {
	later := t0.Add(90 * time.Second)
	onPrimary := func(rev string, recorded bool) Observed {
		o := ready(later)
		o.PrimaryRevision, o.StableRecorded = rev, recorded
		return o
	}
	for _, tt := range []struct {
		name string
		p    Progress
		o    Observed
		want func(Plan) Plan // from the plan for primary on stable
	}{{
		name: "on stable: nothing to put back",
		p:    at(1, t0),
		o:    onPrimary("s1", true),
		want: func(p Plan) Plan { return p },
	}, {
		name: "on the canary mid-rollout (a promotion whose status was lost): put back on stable",
		p:    at(1, t0),
		o:    onPrimary("c1", true),
		want: func(p Plan) Plan {
			p.RestorePrimary = true
			p.Message += "; primary runs revision c1, which is neither stable nor being promoted: putting stable revision s1 back"
			return p
		},
	}, {
		name: "on a revision nobody rolled out: put back on stable",
		p:    Progress{StableRevision: "s1"},
		o:    func() Observed { o := onPrimary("x9", true); o.TargetRevision = "s1"; return o }(),
		want: func(p Plan) Plan {
			p.RestorePrimary = true
			p.Message += "; primary runs revision x9, which is neither stable nor being promoted: putting stable revision s1 back"
			return p
		},
	}, {
		name: "no record of stable left: said, not guessed",
		p:    at(1, t0),
		o:    onPrimary("c1", false),
		want: func(p Plan) Plan {
			p.Message += "; primary runs revision c1, which is neither stable nor being promoted, and no record of stable revision s1 is left to put it back on"
			return p
		},
	}, {
		name: "after an abort, on the aborted revision: put back on stable",
		p:    func() Progress { p := at(3, t0); p.Abort = userAbort; return p }(),
		o:    onPrimary("c1", true),
		want: func(p Plan) Plan {
			p.RestorePrimary = true
			p.Message += "; primary runs revision c1, which is neither stable nor being promoted: putting stable revision s1 back"
			return p
		},
	}} {
		t.Run(tt.name, func(t *testing.T) {
			onStable := tt.o
			onStable.PrimaryRevision = tt.p.StableRevision
			want := tt.want(Decide(spec, tt.p, onStable))
			if diff := cmp.Diff(want, Decide(spec, tt.p, tt.o), countsApart); diff != "" {
				t.Errorf("Decide() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// A rollout records the steps it started with; a change mid-rollout starts
// it again from the first step.
func TestStepsChanged(t *testing.T) {
	later := t0.Add(90 * time.Second)
	s := spec
	s.StepsHash = StepsHash(s.Steps)
	started := func(p Progress) Progress { p.StepsHash = s.StepsHash; return p }
	shorter := Spec{ProgressDeadline: spec.ProgressDeadline, Steps: spec.Steps[:2]}
	shorter.StepsHash = StepsHash(shorter.Steps)
	for _, tt := range []struct {
		name string
		s    Spec
		p    Progress
		o    Observed
		want Plan
	}{{
		name: "a new rollout records its steps",
		s:    s,
		p:    Progress{StableRevision: "s1"},
		o:    ready(t0),
		want: Plan{Outcome: WaitingForCanary, Transition: Started, Message: "rolling out revision c1; waiting for the canary to be Ready",
			Next:    func() Progress { p := started(at(0, t0)); p.NotReadySince = t0; return p }(),
			Traffic: desired(0), CanaryReplicas: ptr.To[int32](4), RequeueAfter: 5 * time.Minute},
	}, {
		name: "status from before steps were recorded adopts them",
		s:    s,
		p:    at(1, t0),
		o:    ready(t0.Add(10 * time.Second)),
		want: Plan{Outcome: Holding, Message: "step 1: pausing 1m0s, until 2026-11-24T12:01:00Z", Next: started(at(1, t0)),
			Traffic: desired(10), CanaryReplicas: ptr.To[int32](4), RequeueAfter: 50 * time.Second},
	}, {
		name: "a shortened list does not promote at once: the rollout starts again",
		s:    shorter,
		p:    started(at(3, t0)),
		o:    ready(later),
		want: Plan{Outcome: WaitingForCanary, Transition: StepsChanged,
			Message: "the steps changed mid-rollout; traffic back on stable, rolling out revision c1 from the first step; waiting for the canary to be Ready",
			Next: Progress{StableRevision: "s1", CanaryRevision: "c1", Step: ptr.To[int32](0), StepStart: later, StartedAt: later, NotReadySince: later,
				StepsHash: shorter.StepsHash},
			Traffic: desired(0), CanaryReplicas: ptr.To[int32](4), RequeueAfter: 5 * time.Minute},
	}, {
		name: "a committed promotion finishes whatever the steps say now",
		s:    shorter,
		p:    started(done(t0)),
		o:    func() Observed { o := ready(later); o.PrimaryRevision = "c1"; return o }(),
		want: Plan{Outcome: Healthy, Transition: Promoted, Message: "revision c1 is stable and serves all traffic", Next: Progress{StableRevision: "c1"},
			Traffic: desired(0), CanaryReplicas: ptr.To[int32](0)},
	}} {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, Decide(tt.s, tt.p, tt.o), countsApart); diff != "" {
				t.Errorf("Decide() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// An inconclusive background analysis is no pass: it holds the rollout for a
// person, at any step, the last one included.
func TestBackgroundInconclusive(t *testing.T) {
	later := t0.Add(90 * time.Second)
	inconclusive := func(o Observed) Observed {
		o.Background, o.BackgroundMessage = argo.AnalysisPhaseInconclusive, "error-rate: no data"
		return o
	}
	for _, tt := range []struct {
		name string
		p    Progress
		o    Observed
		want Plan
	}{{
		name: "a timed pause that ran out does not advance",
		p:    at(1, t0),
		o:    inconclusive(ready(later)),
		want: Plan{Outcome: AnalysisInconclusive, Message: "step 1: background analysis inconclusive: error-rate: no data; promote to go on or abort",
			Next: at(1, t0), Traffic: desired(10), CanaryReplicas: ptr.To[int32](4)},
	}, {
		name: "every step done: primary does not take the revision",
		p:    done(t0),
		o:    inconclusive(ready(later)),
		want: Plan{Outcome: AnalysisInconclusive, Message: "step 6: background analysis inconclusive: error-rate: no data; promote to go on or abort",
			Next: done(t0), Traffic: desired(10, betaRoute), CanaryReplicas: ptr.To[int32](2)},
	}, {
		name: "a person promotes: it goes on, with a new background analysis",
		p:    at(1, t0),
		o:    func() Observed { o := inconclusive(ready(later)); o.Requests.Promote = "p1"; return o }(),
		want: Plan{Outcome: InconclusiveAccepted, Message: "step 1: background analysis inconclusive; going on on request, with a new background analysis",
			Next:    func() Progress { p := at(1, t0); p.BackgroundAttempt = 1; p.Requests.Promote = "p1"; return p }(),
			Traffic: desired(10), CanaryReplicas: ptr.To[int32](4)},
	}, {
		name: "a person aborts",
		p:    at(1, t0),
		o:    func() Observed { o := inconclusive(ready(later)); o.Requests.Abort = "a1"; return o }(),
		want: Plan{Outcome: AbortedByUser, Message: "aborted on request; traffic back on stable",
			Next:    func() Progress { p := at(1, t0); p.Abort = userAbort; p.Requests.Abort = "a1"; return p }(),
			Traffic: desired(0), CanaryReplicas: ptr.To[int32](0)},
	}, {
		name: "a failed background analysis at the last step aborts before primary changes",
		p:    done(t0),
		o: func() Observed {
			o := ready(later)
			o.Background, o.BackgroundMessage = argo.AnalysisPhaseFailed, "error-rate: 0.3"
			return o
		}(),
		want: Plan{Outcome: AnalysisFailed, Message: "background analysis Failed: error-rate: 0.3; traffic back on stable",
			Next: func() Progress {
				p := at(6, t0)
				p.Abort = &Abort{AnalysisFailed, "background analysis Failed: error-rate: 0.3; traffic back on stable"}
				return p
			}(),
			Traffic: desired(0), CanaryReplicas: ptr.To[int32](0)},
	}} {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, Decide(spec, tt.p, tt.o), countsApart); diff != "" {
				t.Errorf("Decide() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// A step index edited by hand into status never panics: a negative one
// starts the steps again, one past the end is the promotion.
func TestHandEditedStep(t *testing.T) {
	later := t0.Add(90 * time.Second)
	for _, tt := range []struct {
		name string
		step int32
		want Outcome
	}{
		{"negative", -3, Holding},
		{"far past the end", 1 << 30, Promoting},
	} {
		t.Run(tt.name, func(t *testing.T) {
			plan := Decide(spec, at(tt.step, t0), ready(later))
			if plan.Outcome != tt.want || plan.Next.Step == nil || *plan.Next.Step < 0 || int(*plan.Next.Step) > len(spec.Steps) {
				t.Errorf("Decide() = %s at step %v, want %s within the steps", plan.Outcome, plan.Next.Step, tt.want)
			}
		})
	}
}
