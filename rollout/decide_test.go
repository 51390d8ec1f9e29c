package rollout

import (
	"testing"
	"time"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/traffic"
)

var (
	t0   = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	beta = v1alpha1.SetHeaderRoute{Name: "beta", Match: []v1alpha1.HeaderRoutingMatch{{HeaderName: "x-beta", HeaderValue: v1alpha1.StringMatch{Exact: "true"}}}}
	spec = Spec{ProgressDeadline: 5 * time.Minute, Steps: []v1alpha1.Step{
		{SetWeight: ptr.To[int32](10)},                                      // 0
		{Pause: &v1alpha1.Pause{Duration: ptr.To(intstr.FromString("1m"))}}, // 1
		{SetHeaderRoute: &beta},                                             // 2
		{Analysis: &v1alpha1.Analysis{Templates: []v1alpha1.AnalysisTemplateRef{{TemplateName: "sr"}}}}, // 3
		{SetCanaryScale: &argo.SetCanaryScale{Weight: ptr.To[int32](50)}},                               // 4
		{Pause: &v1alpha1.Pause{}}, // 5
	}}
	betaRoute = traffic.HeaderRoute{Name: "beta", Match: []traffic.HeaderMatch{{Header: "x-beta", Kind: traffic.Exact, Value: "true"}}}
)

var userAbort = &Abort{AbortedByUser, "aborted on request; traffic back on stable"}

func at(step int32, start time.Time) Progress {
	return Progress{StableRevision: "s1", CanaryRevision: "c1", Step: ptr.To(step), StepStart: start, StartedAt: t0}
}

// done is progress once every step of spec is done: the canary is promoting.
func done(start time.Time) Progress {
	p := at(int32(len(spec.Steps)), start)
	p.Promoting = true
	return p
}

func desired(canary int32, routes ...traffic.HeaderRoute) *traffic.Desired {
	return &traffic.Desired{Split: traffic.CanaryAt(canary), HeaderRoutes: routes}
}

func ready(now time.Time) Observed {
	return Observed{Now: now, TargetRevision: "c1", PrimaryRevision: "s1", PrimaryReady: true, CanaryReady: true, Replicas: 4}
}

func TestDecide(t *testing.T) {
	later := t0.Add(90 * time.Second)
	tests := []struct {
		name string
		p    Progress
		o    Observed
		want Plan
	}{{
		name: "primary not Ready yet: initializing, mesh untouched",
		p:    Progress{},
		o:    Observed{Now: t0, TargetRevision: "s1", PrimaryRevision: "s1"},
		want: Plan{Outcome: Initializing, Message: "waiting for the primary Deployment to be Ready", RequeueAfter: 10 * time.Second},
	}, {
		name: "primary Ready: initialized, traffic to stable, target scaled to zero",
		p:    Progress{},
		o:    Observed{Now: t0, TargetRevision: "s1", PrimaryRevision: "s1", PrimaryReady: true},
		want: Plan{Outcome: Healthy, Transition: Initialized, Message: "revision s1 is stable and serves all traffic", Next: Progress{StableRevision: "s1"},
			Traffic: desired(0), CanaryReplicas: ptr.To[int32](0)},
	}, {
		name: "at rest on stable: healthy",
		p:    Progress{StableRevision: "s1"},
		o:    Observed{Now: t0, TargetRevision: "s1", PrimaryRevision: "s1", PrimaryReady: true},
		want: Plan{Outcome: Healthy, Message: "revision s1 is stable and serves all traffic", Next: Progress{StableRevision: "s1"},
			Traffic: desired(0), CanaryReplicas: ptr.To[int32](0)},
	}, {
		name: "new revision starts at step 0 with the canary at full size",
		p:    Progress{StableRevision: "s1"},
		o:    ready(t0),
		want: Plan{Outcome: WaitingForCanary, Transition: Started, Message: "rolling out revision c1; waiting for the canary to be Ready",
			Next:    func() Progress { p := at(0, t0); p.NotReadySince = t0; return p }(),
			Traffic: desired(0), CanaryReplicas: ptr.To[int32](4), RequeueAfter: 5 * time.Minute},
	}, {
		name: "a newer revision mid-rollout restarts from step 0 with traffic on stable",
		p:    at(3, t0),
		o:    Observed{Now: later, TargetRevision: "c2", PrimaryRevision: "s1", PrimaryReady: true, Replicas: 4},
		want: Plan{Outcome: WaitingForCanary, Transition: Restarted, Message: "revision c2 replaced c1 mid-rollout; traffic back on stable, starting from the first step; waiting for the canary to be Ready",
			Next:    Progress{StableRevision: "s1", CanaryRevision: "c2", Step: ptr.To[int32](0), StepStart: later, StartedAt: later, NotReadySince: later},
			Traffic: desired(0), CanaryReplicas: ptr.To[int32](4), RequeueAfter: 5 * time.Minute},
	}, {
		name: "target reverted to stable mid-rollout: cancelled",
		p:    at(2, t0),
		o:    Observed{Now: later, TargetRevision: "s1", PrimaryRevision: "s1", PrimaryReady: true},
		want: Plan{Outcome: Healthy, Transition: Cancelled, Message: "the target went back to the stable revision s1; rollout of c1 cancelled",
			Next: Progress{StableRevision: "s1"}, Traffic: desired(0), CanaryReplicas: ptr.To[int32](0)},
	}, {
		name: "canary not Ready within the deadline: waits",
		p:    func() Progress { p := at(0, t0); p.NotReadySince = t0; return p }(),
		o:    func() Observed { o := ready(t0.Add(time.Minute)); o.CanaryReady = false; return o }(),
		want: Plan{Outcome: WaitingForCanary, Message: "rolling out revision c1; waiting for the canary to be Ready",
			Next:    func() Progress { p := at(0, t0); p.NotReadySince = t0; return p }(),
			Traffic: desired(0), CanaryReplicas: ptr.To[int32](4), RequeueAfter: 4 * time.Minute},
	}, {
		name: "canary drops out of Ready late in a long pause: the deadline starts now",
		p:    at(1, t0),
		o:    func() Observed { o := ready(t0.Add(time.Hour)); o.CanaryReady = false; return o }(),
		want: Plan{Outcome: WaitingForCanary, Message: "rolling out revision c1; waiting for the canary to be Ready",
			Next:    func() Progress { p := at(1, t0); p.NotReadySince = t0.Add(time.Hour); return p }(),
			Traffic: desired(10), CanaryReplicas: ptr.To[int32](4), RequeueAfter: 5 * time.Minute},
	}, {
		name: "canary not Ready past the deadline: aborts",
		p:    func() Progress { p := at(0, t0); p.NotReadySince = t0; return p }(),
		o:    func() Observed { o := ready(t0.Add(6 * time.Minute)); o.CanaryReady = false; return o }(),
		want: Plan{Outcome: ProgressDeadlineExceeded, Message: "the canary was not Ready within 5m0s; traffic back on stable",
			Next: func() Progress {
				p := at(0, t0)
				p.Abort = &Abort{ProgressDeadlineExceeded, "the canary was not Ready within 5m0s; traffic back on stable"}
				return p
			}(), Traffic: desired(0), CanaryReplicas: ptr.To[int32](0)},
	}, {
		name: "setWeight step: weight and progress go out together, recorded as the pause it lands on",
		p:    at(0, t0),
		o:    ready(later),
		want: Plan{Outcome: Holding, Transition: Advanced, Message: "step 1: pausing 1m0s, until 2026-11-24T12:02:30Z", Next: at(1, later),
			Traffic: desired(10), CanaryReplicas: ptr.To[int32](4), RequeueAfter: time.Minute},
	}, {
		name: "timed pause not over: holds for the remainder",
		p:    at(1, t0),
		o:    ready(t0.Add(20 * time.Second)),
		want: Plan{Outcome: Holding, Message: "step 1: pausing 1m0s, until 2026-11-24T12:01:00Z", Next: at(1, t0),
			Traffic: desired(10), CanaryReplicas: ptr.To[int32](4), RequeueAfter: 40 * time.Second},
	}, {
		name: "timed pause over: advances through the header route step to the analysis",
		p:    at(1, t0),
		o:    ready(later),
		want: Plan{Outcome: WaitingForAnalysis, Transition: Advanced, Message: "step 3: waiting for the analysis verdict", Next: at(3, later),
			Traffic: desired(10, betaRoute), CanaryReplicas: ptr.To[int32](4)},
	}, {
		name: "header route step adds the route",
		p:    at(2, t0),
		o:    ready(later),
		want: Plan{Outcome: WaitingForAnalysis, Transition: Advanced, Message: "step 3: waiting for the analysis verdict", Next: at(3, later),
			Traffic: desired(10, betaRoute), CanaryReplicas: ptr.To[int32](4)},
	}, {
		name: "analysis step without a verdict waits",
		p:    at(3, t0),
		o:    ready(later),
		want: Plan{Outcome: WaitingForAnalysis, Message: "step 3: waiting for the analysis verdict", Next: at(3, t0),
			Traffic: desired(10, betaRoute), CanaryReplicas: ptr.To[int32](4)},
	}, {
		name: "analysis step successful: a canary scale step that shrinks the canary is done in the same move",
		p:    at(3, t0),
		o:    func() Observed { o := ready(later); o.Analysis = argo.AnalysisPhaseSuccessful; return o }(),
		want: Plan{Outcome: WaitingForPromotion, Transition: Advanced, Message: "paused at step 5 until promoted", Next: at(5, later),
			Traffic: desired(10, betaRoute), CanaryReplicas: ptr.To[int32](2)},
	}, {
		name: "background analysis failed: aborts at any step",
		p:    at(1, t0),
		o: func() Observed {
			o := ready(t0.Add(time.Second))
			o.Background, o.BackgroundMessage = argo.AnalysisPhaseError, "metric latency Error: connection refused"
			return o
		}(),
		want: Plan{Outcome: AnalysisFailed, Message: "background analysis Error: metric latency Error: connection refused; traffic back on stable",
			Next: func() Progress {
				p := at(1, t0)
				p.Abort = &Abort{AnalysisFailed, "background analysis Error: metric latency Error: connection refused; traffic back on stable"}
				return p
			}(), Traffic: desired(0), CanaryReplicas: ptr.To[int32](0)},
	}, {
		name: "analysis inconclusive: waits for a person",
		p:    at(3, t0),
		o:    func() Observed { o := ready(later); o.Analysis = argo.AnalysisPhaseInconclusive; return o }(),
		want: Plan{Outcome: WaitingForPromotion, Message: "step 3: analysis inconclusive; promote to continue or abort", Next: at(3, t0),
			Traffic: desired(10, betaRoute), CanaryReplicas: ptr.To[int32](4)},
	}, {
		name: "analysis failed: aborts",
		p:    at(3, t0),
		o: func() Observed {
			o := ready(later)
			o.Analysis, o.AnalysisMessage = argo.AnalysisPhaseFailed, "metric success-rate Failed (last value [0.91])"
			return o
		}(),
		want: Plan{Outcome: AnalysisFailed, Message: "step 3: analysis Failed: metric success-rate Failed (last value [0.91]); traffic back on stable",
			Next: func() Progress {
				p := at(3, t0)
				p.Abort = &Abort{AnalysisFailed, "step 3: analysis Failed: metric success-rate Failed (last value [0.91]); traffic back on stable"}
				return p
			}(),
			Traffic: desired(0), CanaryReplicas: ptr.To[int32](0)},
	}, {
		name: "canary scale step done once the canary is Ready at its size: on to the pause",
		p:    at(4, t0),
		o:    ready(later),
		want: Plan{Outcome: WaitingForPromotion, Transition: Advanced, Message: "paused at step 5 until promoted", Next: at(5, later),
			Traffic: desired(10, betaRoute), CanaryReplicas: ptr.To[int32](2)},
	}, {
		name: "indefinite pause waits for a person",
		p:    at(5, t0),
		o:    ready(later),
		want: Plan{Outcome: WaitingForPromotion, Message: "paused at step 5 until promoted", Next: at(5, t0),
			Traffic: desired(10, betaRoute), CanaryReplicas: ptr.To[int32](2)},
	}, {
		name: "promote request moves past the last pause and starts the promotion",
		p:    at(5, t0),
		o:    func() Observed { o := ready(later); o.Requests.Promote = "r1"; return o }(),
		want: Plan{Outcome: Promoting, Transition: Advanced, Message: "primary is taking revision c1", PromotePrimary: true,
			Next:    func() Progress { p := done(later); p.Requests.Promote = "r1"; return p }(),
			Traffic: desired(10, betaRoute), CanaryReplicas: ptr.To[int32](2), RequeueAfter: 5 * time.Minute},
	}, {
		name: "promote --full skips the remaining steps",
		p:    at(1, t0),
		o:    func() Observed { o := ready(t0.Add(time.Second)); o.Requests.PromoteFull = "r2"; return o }(),
		want: Plan{Outcome: Advanced, Message: "promoting on request, skipping the remaining steps",
			Next:    func() Progress { p := done(t0.Add(time.Second)); p.Requests.PromoteFull = "r2"; return p }(),
			Traffic: desired(10, betaRoute), CanaryReplicas: ptr.To[int32](4)},
	}, {
		name: "paused by a person: holds even when the pause is over",
		p:    at(1, t0),
		o:    func() Observed { o := ready(later); o.Paused = true; return o }(),
		want: Plan{Outcome: PausedByUser, Message: "paused at step 1; resume to continue", Next: at(1, t0),
			Traffic: desired(10), CanaryReplicas: ptr.To[int32](4)},
	}, {
		name: "abort request: traffic to stable, header routes gone, canary scaled down",
		p:    at(3, t0),
		o:    func() Observed { o := ready(later); o.Requests.Abort = "a1"; return o }(),
		want: Plan{Outcome: AbortedByUser, Message: "aborted on request; traffic back on stable",
			Next:    func() Progress { p := at(3, t0); p.Abort = userAbort; p.Requests.Abort = "a1"; return p }(),
			Traffic: desired(0), CanaryReplicas: ptr.To[int32](0)},
	}, {
		name: "aborted: stays on stable with the same outcome, so nothing is written",
		p:    func() Progress { p := at(3, t0); p.Abort = userAbort; return p }(),
		o:    ready(later),
		want: Plan{Outcome: AbortedByUser, Message: "aborted on request; traffic back on stable",
			Next: func() Progress { p := at(3, t0); p.Abort = userAbort; return p }(), Traffic: desired(0), CanaryReplicas: ptr.To[int32](0)},
	}, {
		name: "retry starts the same revision again from step 0",
		p:    func() Progress { p := at(3, t0); p.Abort = userAbort; return p }(),
		o:    func() Observed { o := ready(later); o.Requests.Retry = "t1"; return o }(),
		want: Plan{Outcome: WaitingForCanary, Transition: Retried, Message: "retrying revision c1 from the first step; waiting for the canary to be Ready",
			Next: Progress{StableRevision: "s1", CanaryRevision: "c1", Step: ptr.To[int32](0), StepStart: later, StartedAt: later,
				NotReadySince: later, Requests: v1alpha1.Requests{Retry: "t1"}},
			Traffic: desired(0), CanaryReplicas: ptr.To[int32](4), RequeueAfter: 5 * time.Minute},
	}, {
		// Status keeps seconds, and an attempt's analysis runs are named by
		// its start: a retry in the second its attempt started must not get
		// that attempt's finished runs back.
		name: "retry within the second its attempt started starts in the next second",
		p:    func() Progress { p := at(0, t0); p.Abort = userAbort; return p }(),
		o:    func() Observed { o := ready(t0.Add(300 * time.Millisecond)); o.Requests.Retry = "t1"; return o }(),
		want: Plan{Outcome: WaitingForCanary, Transition: Retried, Message: "retrying revision c1 from the first step; waiting for the canary to be Ready",
			Next: Progress{StableRevision: "s1", CanaryRevision: "c1", Step: ptr.To[int32](0), StepStart: t0.Add(300 * time.Millisecond), StartedAt: t0.Add(time.Second),
				NotReadySince: t0.Add(300 * time.Millisecond), Requests: v1alpha1.Requests{Retry: "t1"}},
			Traffic: desired(0), CanaryReplicas: ptr.To[int32](4), RequeueAfter: 5 * time.Minute},
	}, {
		name: "after the last step: primary takes the canary's template",
		p:    at(6, t0),
		o:    ready(later),
		want: Plan{Outcome: Promoting, Message: "primary is taking revision c1", Next: done(t0), PromotePrimary: true,
			Traffic: desired(10, betaRoute), CanaryReplicas: ptr.To[int32](2), RequeueAfter: 5 * time.Minute},
	}, {
		name: "primary at the canary revision but not Ready: waits without copying again",
		p:    at(6, t0),
		o:    func() Observed { o := ready(later); o.PrimaryRevision = "c1"; o.PrimaryReady = false; return o }(),
		want: Plan{Outcome: Promoting, Message: "primary is taking revision c1", Next: done(t0),
			Traffic: desired(10, betaRoute), CanaryReplicas: ptr.To[int32](2), RequeueAfter: 5 * time.Minute},
	}, {
		name: "an abort during the promotion is too late: the promotion finishes",
		p:    at(6, t0),
		o: func() Observed {
			o := ready(later)
			o.PrimaryRevision = "c1"
			o.PrimaryReady = false
			o.Requests.Abort = "a2"
			return o
		}(),
		want: Plan{Outcome: Promoting, Message: "primary is taking revision c1",
			Next:    func() Progress { p := done(t0); p.Requests.Abort = "a2"; return p }(),
			Traffic: desired(10, betaRoute), CanaryReplicas: ptr.To[int32](2), RequeueAfter: 5 * time.Minute},
	}, {
		name: "a newer revision once primary took the canary's template waits for the promotion",
		p:    at(6, t0),
		o: func() Observed {
			o := ready(later)
			o.TargetRevision, o.PrimaryRevision, o.PrimaryReady = "c2", "c1", false
			return o
		}(),
		want: Plan{Outcome: Promoting, Message: "primary is taking revision c1", Next: done(t0),
			Traffic: desired(10, betaRoute), CanaryReplicas: ptr.To[int32](2), RequeueAfter: 5 * time.Minute},
	}, {
		name: "a newer revision before primary changed restarts",
		p:    at(6, t0),
		o:    func() Observed { o := ready(later); o.TargetRevision = "c2"; return o }(),
		want: Plan{Outcome: WaitingForCanary, Transition: Restarted,
			Message: "revision c2 replaced c1 mid-rollout; traffic back on stable, starting from the first step; waiting for the canary to be Ready",
			Next:    Progress{StableRevision: "s1", CanaryRevision: "c2", Step: ptr.To[int32](0), StepStart: later, StartedAt: later, NotReadySince: later},
			Traffic: desired(0), CanaryReplicas: ptr.To[int32](4), RequeueAfter: 5 * time.Minute},
	}, {
		name: "primary Ready at the canary revision: promoted, all traffic to primary, canary to zero",
		p:    at(6, t0),
		o:    func() Observed { o := ready(later); o.PrimaryRevision = "c1"; return o }(),
		want: Plan{Outcome: Healthy, Transition: Promoted, Message: "revision c1 is stable and serves all traffic", Next: Progress{StableRevision: "c1"},
			Traffic: desired(0), CanaryReplicas: ptr.To[int32](0)},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Decide(spec, tt.p, tt.o)
			if diff := cmp.Diff(tt.want, got, countsApart); diff != "" {
				t.Errorf("Decide() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// A canary that grows with its weight (matchTrafficWeight) is scaled first,
// and gets the new weight only once the new pods are Ready; one that shrinks
// loses its weight first (act moves traffic before it scales down).
func TestCanaryResizedAroundItsWeight(t *testing.T) {
	s := Spec{ProgressDeadline: 5 * time.Minute, Steps: []v1alpha1.Step{
		{SetCanaryScale: &argo.SetCanaryScale{MatchTrafficWeight: true}},    // 0
		{SetWeight: ptr.To[int32](20)},                                      // 1
		{Pause: &v1alpha1.Pause{Duration: ptr.To(intstr.FromString("1m"))}}, // 2
		{SetWeight: ptr.To[int32](60)},                                      // 3
		{Pause: &v1alpha1.Pause{}},                                          // 4
		{Pause: &v1alpha1.Pause{}},                                          // 5
		{SetWeight: ptr.To[int32](10)},                                      // 6
		{Pause: &v1alpha1.Pause{}},                                          // 7
	}}
	later := t0.Add(2 * time.Minute)
	notReady := ready(later)
	notReady.CanaryReady = false
	for _, tt := range []struct {
		name string
		p    Progress
		o    Observed
		want Plan
	}{{
		name: "the pause over: onto the weight step, the canary grown, traffic where it was",
		p:    at(2, t0),
		o:    ready(later),
		want: Plan{Outcome: Advanced, Message: "step 2 done", Next: at(3, later), Traffic: desired(20), CanaryReplicas: ptr.To[int32](3)},
	}, {
		name: "the new pods not Ready: traffic stays",
		p:    at(3, later),
		o:    notReady,
		want: Plan{Outcome: WaitingForCanary, Message: "rolling out revision c1; waiting for the canary to be Ready",
			Next:    func() Progress { p := at(3, later); p.NotReadySince = later; return p }(),
			Traffic: desired(20), CanaryReplicas: ptr.To[int32](3), RequeueAfter: 5 * time.Minute},
	}, {
		name: "Ready at the new size: the weight moves",
		p:    at(3, later),
		o:    ready(later),
		want: Plan{Outcome: WaitingForPromotion, Transition: Advanced, Message: "paused at step 4 until promoted", Next: at(4, later),
			Traffic: desired(60), CanaryReplicas: ptr.To[int32](3)},
	}, {
		name: "a weight step that shrinks the canary: traffic moves and the canary shrinks in one move",
		p:    at(5, t0),
		o:    func() Observed { o := ready(later); o.Requests.Promote = "p1"; return o }(),
		want: Plan{Outcome: WaitingForPromotion, Transition: Advanced, Message: "paused at step 7 until promoted",
			Next:    func() Progress { p := at(7, later); p.Requests.Promote = "p1"; return p }(),
			Traffic: desired(10), CanaryReplicas: ptr.To[int32](1)},
	}} {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, Decide(s, tt.p, tt.o), countsApart); diff != "" {
				t.Errorf("Decide() mismatch (-want +got):\n%s", diff)
			}
		})
	}
	if got := CanaryReplicasFor(s.Steps, 3, 4); got != 3 {
		t.Errorf("CanaryReplicasFor(the 60%% step) = %d, want 3 of 4", got)
	}
}

// TestOutcomeClasses checks how outcomes map to events and conditions.
func TestOutcomeClasses(t *testing.T) {
	for _, o := range []Outcome{AbortedByUser, ProgressDeadlineExceeded, AnalysisFailed} {
		if !o.IsTransition() || !o.IsFailure() {
			t.Errorf("%s: want a failing transition", o)
		}
	}
	for _, o := range []Outcome{Holding, WaitingForCanary, WaitingForAnalysis, Promoting, Initializing} {
		if o.IsTransition() || o.IsFailure() || o.IsAtRest() {
			t.Errorf("%s: want a plain wait", o)
		}
	}
	if !WaitingForPromotion.WaitsForPerson() || !PausedByUser.WaitsForPerson() || Holding.WaitsForPerson() {
		t.Error("WaitsForPerson")
	}
}

func TestPauseDuration(t *testing.T) {
	for _, tt := range []struct {
		in    *intstr.IntOrString
		want  time.Duration
		timed bool
		err   bool
		text  string
	}{
		{nil, 0, false, false, ""},
		{ptr.To(intstr.FromInt32(30)), 30 * time.Second, true, false, "30s"},
		{ptr.To(intstr.FromString("45")), 45 * time.Second, true, false, "45s"},
		{ptr.To(intstr.FromString("1h30m")), 90 * time.Minute, true, false, "1h30m"},
		{ptr.To(intstr.FromString("soon")), 0, false, true, "soon"},
	} {
		p := &v1alpha1.Pause{Duration: tt.in}
		d, timed, err := PauseDuration(p)
		if d != tt.want || timed != tt.timed || (err != nil) != tt.err {
			t.Errorf("PauseDuration(%v) = %v, %v, %v", tt.in, d, timed, err)
		}
		if got := PauseText(p); got != tt.text {
			t.Errorf("PauseText(%v) = %q, want %q", tt.in, got, tt.text)
		}
	}
}

func TestCanaryReplicasAfter(t *testing.T) {
	steps := []v1alpha1.Step{
		{SetWeight: ptr.To[int32](20)},
		{SetCanaryScale: &argo.SetCanaryScale{MatchTrafficWeight: true}},
		{SetCanaryScale: &argo.SetCanaryScale{Replicas: ptr.To[int32](1)}},
	}
	for n, want := range []int32{5, 5, 1, 1} {
		if got := CanaryReplicasAfter(steps, n, 5); got != want {
			t.Errorf("after %d steps: got %d replicas, want %d", n, got, want)
		}
	}
}

// Deployment windows hold a rollout; people's requests and failures do not wait.
func TestWindows(t *testing.T) {
	later := t0.Add(2 * time.Minute)
	opens := later.Add(3 * time.Hour)
	closed := func(o Observed) Observed {
		o.WindowClosed, o.WindowOpens = "outside every allow window", opens
		return o
	}
	wait := "outside every allow window; may advance from " + opens.Format(time.RFC3339)
	for _, tt := range []struct {
		name string
		p    Progress
		o    Observed
		want Plan
	}{{
		name: "a new revision at rest waits, the canary not even started",
		p:    Progress{StableRevision: "s1"},
		o:    closed(ready(later)),
		want: Plan{Outcome: OutsideWindow, Message: "revision c1 waits for a deployment window: " + wait, Next: Progress{StableRevision: "s1"},
			Traffic: desired(0), CanaryReplicas: ptr.To[int32](0), RequeueAfter: time.Hour},
	}, {
		name: "a timed pause over: held where it is",
		p:    at(1, t0),
		o:    closed(ready(later)),
		want: Plan{Outcome: OutsideWindow, Message: wait, Next: at(1, t0), Traffic: desired(10), CanaryReplicas: ptr.To[int32](4), RequeueAfter: time.Hour},
	}, {
		name: "requeued when the window opens, within the hour",
		p:    at(1, t0),
		o:    func() Observed { o := closed(ready(later)); o.WindowOpens = later.Add(10 * time.Minute); return o }(),
		want: Plan{Outcome: OutsideWindow, Message: "outside every allow window; may advance from " + later.Add(10*time.Minute).Format(time.RFC3339),
			Next: at(1, t0), Traffic: desired(10), CanaryReplicas: ptr.To[int32](4), RequeueAfter: 10 * time.Minute},
	}, {
		name: "the last step done: primary does not take the revision yet",
		p:    at(6, t0),
		o:    closed(ready(later)),
		want: Plan{Outcome: OutsideWindow, Message: wait, Next: done(t0), Traffic: desired(10, betaRoute), CanaryReplicas: ptr.To[int32](2), RequeueAfter: time.Hour},
	}, {
		name: "a person's promote does not wait; the step it lands on does",
		p:    at(1, t0),
		o:    func() Observed { o := closed(ready(later)); o.Requests.Promote = "p1"; return o }(),
		want: Plan{Outcome: WaitingForAnalysis, Transition: Advanced, Message: "step 3: waiting for the analysis verdict",
			Next:    func() Progress { p := at(3, later); p.Requests.Promote = "p1"; return p }(),
			Traffic: desired(10, betaRoute), CanaryReplicas: ptr.To[int32](4)},
	}, {
		name: "an analysis step's success waits",
		p:    at(3, t0),
		o:    func() Observed { o := closed(ready(later)); o.Analysis = argo.AnalysisPhaseSuccessful; return o }(),
		want: Plan{Outcome: OutsideWindow, Message: wait, Next: at(3, t0), Traffic: desired(10, betaRoute), CanaryReplicas: ptr.To[int32](4), RequeueAfter: time.Hour},
	}, {
		name: "an analysis step's failure does not",
		p:    at(3, t0),
		o: func() Observed {
			o := closed(ready(later))
			o.Analysis, o.AnalysisMessage = argo.AnalysisPhaseFailed, "m"
			return o
		}(),
		want: Plan{Outcome: AnalysisFailed, Message: "step 3: analysis Failed: m; traffic back on stable",
			Next: func() Progress {
				p := at(3, t0)
				p.Abort = &Abort{AnalysisFailed, "step 3: analysis Failed: m; traffic back on stable"}
				return p
			}(),
			Traffic: desired(0), CanaryReplicas: ptr.To[int32](0)},
	}, {
		name: "every step done, a failed background analysis still aborts",
		p:    at(6, t0),
		o: func() Observed {
			o := closed(ready(later))
			o.Background, o.BackgroundMessage = argo.AnalysisPhaseError, "m"
			return o
		}(),
		want: Plan{Outcome: AnalysisFailed, Message: "background analysis Error: m; traffic back on stable",
			Next: func() Progress {
				p := at(6, t0)
				p.Abort = &Abort{AnalysisFailed, "background analysis Error: m; traffic back on stable"}
				return p
			}(),
			Traffic: desired(0), CanaryReplicas: ptr.To[int32](0)},
	}, {
		name: "an abort of a revision that waits is recorded, so it does not start later",
		p:    Progress{StableRevision: "s1"},
		o:    func() Observed { o := closed(ready(later)); o.Requests.Abort = "a1"; return o }(),
		want: Plan{Outcome: AbortedByUser, Message: "revision c1 aborted on request before it started; traffic back on stable",
			Next: Progress{StableRevision: "s1", CanaryRevision: "c1", Requests: v1alpha1.Requests{Abort: "a1"},
				Abort: &Abort{AbortedByUser, "revision c1 aborted on request before it started; traffic back on stable"}},
			Traffic: desired(0), CanaryReplicas: ptr.To[int32](0)},
	}, {
		name: "windows that do not parse are reported at rest",
		p:    Progress{StableRevision: "s1"},
		o: func() Observed {
			o := ready(later)
			o.TargetRevision = "s1"
			o.WindowClosed, o.WindowInvalid = "spec.windows.timezone: bad", true
			return o
		}(),
		want: Plan{Outcome: InvalidSpec, Message: "spec.windows.timezone: bad", Next: Progress{StableRevision: "s1"}, Traffic: desired(0), CanaryReplicas: ptr.To[int32](0)},
	}, {
		name: "windows that do not parse hold a rollout, and failures still abort",
		p:    at(3, t0),
		o: func() Observed {
			o := ready(later)
			o.WindowClosed, o.WindowInvalid = "spec.windows.timezone: bad", true
			o.Analysis, o.AnalysisMessage = argo.AnalysisPhaseFailed, "m"
			return o
		}(),
		want: Plan{Outcome: AnalysisFailed, Message: "step 3: analysis Failed: m; traffic back on stable",
			Next: func() Progress {
				p := at(3, t0)
				p.Abort = &Abort{AnalysisFailed, "step 3: analysis Failed: m; traffic back on stable"}
				return p
			}(),
			Traffic: desired(0), CanaryReplicas: ptr.To[int32](0)},
	}, {
		name: "a person's promote-full starts a revision that waits, and stays pending",
		p:    Progress{StableRevision: "s1"},
		o:    func() Observed { o := closed(ready(later)); o.Requests.PromoteFull = "f1"; return o }(),
		want: Plan{Outcome: WaitingForCanary, Transition: Started, Message: "rolling out revision c1; waiting for the canary to be Ready",
			Next:    Progress{StableRevision: "s1", CanaryRevision: "c1", Step: ptr.To[int32](0), StepStart: later, StartedAt: later, NotReadySince: later},
			Traffic: desired(0), CanaryReplicas: ptr.To[int32](4), RequeueAfter: 5 * time.Minute},
	}, {
		name: "then, the canary Ready, primary takes it at once",
		p:    at(0, later),
		o:    func() Observed { o := closed(ready(later)); o.Requests.PromoteFull = "f1"; return o }(),
		want: Plan{Outcome: Promoting, Transition: Advanced, Message: "primary is taking revision c1",
			Next:    func() Progress { p := done(later); p.Requests.PromoteFull = "f1"; return p }(),
			Traffic: desired(10, betaRoute), CanaryReplicas: ptr.To[int32](2), PromotePrimary: true, RequeueAfter: 5 * time.Minute},
	}, {
		name: "an abort does not wait",
		p:    at(1, t0),
		o:    func() Observed { o := closed(ready(later)); o.Requests.Abort = "a1"; return o }(),
		want: Plan{Outcome: AbortedByUser, Message: "aborted on request; traffic back on stable",
			Next:    func() Progress { p := at(1, t0); p.Abort = userAbort; p.Requests.Abort = "a1"; return p }(),
			Traffic: desired(0), CanaryReplicas: ptr.To[int32](0)},
	}, {
		name: "a failed background analysis does not wait",
		p:    at(1, t0),
		o: func() Observed {
			o := closed(ready(later))
			o.Background, o.BackgroundMessage = argo.AnalysisPhaseFailed, "m"
			return o
		}(),
		want: Plan{Outcome: AnalysisFailed, Message: "background analysis Failed: m; traffic back on stable",
			Next: func() Progress {
				p := at(1, t0)
				p.Abort = &Abort{AnalysisFailed, "background analysis Failed: m; traffic back on stable"}
				return p
			}(),
			Traffic: desired(0), CanaryReplicas: ptr.To[int32](0)},
	}, {
		name: "a revision replacing one mid-rollout: traffic back on stable at once",
		p:    at(1, t0),
		o:    func() Observed { o := closed(ready(later)); o.TargetRevision = "c2"; return o }(),
		want: Plan{Outcome: WaitingForCanary, Transition: Restarted,
			Message: "revision c2 replaced c1 mid-rollout; traffic back on stable, starting from the first step; waiting for the canary to be Ready",
			Next:    Progress{StableRevision: "s1", CanaryRevision: "c2", Step: ptr.To[int32](0), StepStart: later, StartedAt: later, NotReadySince: later},
			Traffic: desired(0), CanaryReplicas: ptr.To[int32](4), RequeueAfter: 5 * time.Minute},
	}} {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, Decide(spec, tt.p, tt.o), countsApart); diff != "" {
				t.Errorf("Decide() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
