package reconciler_test

import (
	"context"
	"encoding/json"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	"slices"
	"strings"
	"testing"
	"time"

	networkingv1 "istio.io/api/networking/v1"
	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
	appsv1 "k8s.io/api/apps/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

func dest(host, subset string, weight int32) *networkingv1.HTTPRouteDestination {
	return &networkingv1.HTTPRouteDestination{Destination: &networkingv1.Destination{Host: host, Subset: subset}, Weight: weight}
}

func managedRoute(name string) *networkingv1.HTTPRoute {
	return &networkingv1.HTTPRoute{Name: "primary", Route: []*networkingv1.HTTPRouteDestination{
		dest(name+"-stable", "", 100), dest(name+"-canary", "", 0)}}
}

// userRoute is owned by the user; Tugboat must leave it exactly as it is.
func userRoute() *networkingv1.HTTPRoute {
	return &networkingv1.HTTPRoute{
		Name:    "internal-debug",
		Match:   []*networkingv1.HTTPMatchRequest{{Uri: &networkingv1.StringMatch{MatchType: &networkingv1.StringMatch_Prefix{Prefix: "/debug"}}}},
		Route:   []*networkingv1.HTTPRouteDestination{dest("debug", "", 0)},
		Retries: &networkingv1.HTTPRetry{Attempts: 3, RetryOn: "5xx"},
	}
}

func pause(d string) v1alpha1.Step {
	if d == "" {
		return v1alpha1.Step{Pause: &v1alpha1.Pause{}}
	}
	return v1alpha1.Step{Pause: &v1alpha1.Pause{Duration: ptr.To(intstr.FromString(d))}}
}

func weight(w int32) v1alpha1.Step { return v1alpha1.Step{SetWeight: ptr.To(w)} }

func newRollout(name string, steps ...v1alpha1.Step) *v1alpha1.Rollout {
	return &v1alpha1.Rollout{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1alpha1.RolloutSpec{
			TargetRef: v1alpha1.TargetRef{APIVersion: "apps/v1", Kind: "Deployment", Name: name},
			Service:   v1alpha1.ServiceSpec{Port: 9898},
			TrafficRouting: v1alpha1.TrafficRouting{Istio: v1alpha1.IstioTrafficRouting{
				VirtualService: v1alpha1.IstioVirtualService{Name: name, Routes: []string{"primary"}},
			}},
			Steps:                   steps,
			ProgressDeadlineSeconds: ptr.To[int32](60),
		},
	}
}

// stableAt: at rest again, with rev stable.
func stableAt(rev string) func(*v1alpha1.Rollout) bool {
	return func(ro *v1alpha1.Rollout) bool {
		return reason(ro) == "Healthy" && ro.Status.StableRevision == rev && ro.Status.CanaryRevision == ""
	}
}

func reason(ro *v1alpha1.Rollout) string {
	if c := meta.FindStatusCondition(ro.Status.Conditions, v1alpha1.ConditionReady); c != nil {
		return c.Reason
	}
	return ""
}

func atStep(i int32, r string) func(*v1alpha1.Rollout) bool {
	return func(ro *v1alpha1.Rollout) bool {
		return ro.Status.CurrentStepIndex != nil && *ro.Status.CurrentStepIndex == i && reason(ro) == r
	}
}

func hasReason(r string) func(*v1alpha1.Rollout) bool {
	return func(ro *v1alpha1.Rollout) bool {
		return reason(ro) == r && ro.Status.ObservedGeneration == ro.Generation
	}
}

// weights returns the stable and canary weights of the managed route, and
// the VirtualService's routes by name.
func (f *fixture) weights(name string) (stable, canary int32, routes map[string]*networkingv1.HTTPRoute) {
	f.t.Helper()
	var vs istiov1.VirtualService
	f.get(&vs, name)
	routes = map[string]*networkingv1.HTTPRoute{}
	for _, r := range vs.Spec.Http {
		routes[r.Name] = r
	}
	p := routes["primary"]
	if p == nil || len(p.Route) != 2 {
		f.t.Fatalf("managed route is gone or changed shape: %v", p)
	}
	return p.Route[0].Weight, p.Route[1].Weight, routes
}

func (f *fixture) wantWeights(name string, stable, canary int32) map[string]*networkingv1.HTTPRoute {
	f.t.Helper()
	s, c, routes := f.weights(name)
	if s != stable || c != canary {
		f.t.Errorf("virtualservice weights %d/%d, want %d/%d", s, c, stable, canary)
	}
	return routes
}

func (f *fixture) replicas(name string) int32 {
	f.t.Helper()
	var d appsv1.Deployment
	f.get(&d, name)
	return ptr.Deref(d.Spec.Replicas, 1)
}

// wantEvent waits for an event of reason about the Rollout name: events are
// sent in the background, a moment after the change they announce.
func (f *fixture) wantEvent(name, reason string) {
	f.t.Helper()
	err := wait.PollUntilContextTimeout(f.t.Context(), 50*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		return slices.Contains(f.events(name), reason), nil
	})
	if err != nil {
		f.t.Errorf("no %s event among %v", reason, f.events(name))
	}
}

func (f *fixture) events(name string) []string {
	f.t.Helper()
	var list eventsv1.EventList
	if err := f.c.List(f.t.Context(), &list, client.InNamespace(f.ns)); err != nil {
		f.t.Fatal(err)
	}
	var reasons []string
	for _, e := range list.Items {
		if e.Regarding.Name == name && e.Regarding.Kind == "Rollout" {
			reasons = append(reasons, e.Reason)
		}
	}
	return reasons
}

func TestFullPromotion(t *testing.T) {
	f := given(t)
	f.app("podinfo", 2, userRoute(), managedRoute("podinfo"))
	f.rollout(newRollout("podinfo", weight(20), pause("1s"), weight(60), pause("")))

	ro := f.eventually("podinfo", "initialized", time.Minute, hasReason("Healthy"))
	if ro.Status.Phase != v1alpha1.PhaseHealthy || ro.Status.StableRevision == "" {
		t.Fatalf("after initializing: %+v", ro.Status)
	}
	stable := ro.Status.StableRevision
	f.wantWeights("podinfo", 100, 0)
	if n := f.replicas("podinfo"); n != 0 {
		t.Errorf("target not scaled to zero at rest: %d replicas", n)
	}
	if n := f.replicas("podinfo-primary"); n != 2 {
		t.Errorf("primary has %d replicas, want 2", n)
	}

	var before istiov1.VirtualService
	f.get(&before, "podinfo")
	f.release("podinfo", "v2")
	ro = f.eventually("podinfo", "waiting for promotion at step 3", time.Minute, atStep(3, "WaitingForPromotion"))
	if ro.Status.Phase != v1alpha1.PhasePaused || ro.Status.CanaryWeight != 60 || ro.Status.CanaryRevision == "" {
		t.Errorf("at the manual pause: %+v", ro.Status)
	}
	routes := f.wantWeights("podinfo", 40, 60)
	if n := f.replicas("podinfo"); n != 2 {
		t.Errorf("canary has %d replicas, want 2", n)
	}

	canary := ro.Status.CanaryRevision
	f.annotate("podinfo", v1alpha1.AnnotationPromote, "p1")
	ro = f.eventually("podinfo", "promoted", time.Minute, stableAt(canary))
	if ro.Status.StableRevision == stable || ro.Status.CurrentStepIndex != nil || ro.Status.ObservedRequests.Promote != "p1" || ro.Status.Phase != v1alpha1.PhaseHealthy {
		t.Errorf("after promotion: %+v", ro.Status)
	}
	routes = f.wantWeights("podinfo", 100, 0)
	if n := f.replicas("podinfo"); n != 0 {
		t.Errorf("canary not scaled to zero after promotion: %d", n)
	}
	var primary appsv1.Deployment
	f.get(&primary, "podinfo-primary")
	if v := primary.Spec.Template.Spec.Containers[0].Env[0].Value; v != "v2" {
		t.Errorf("primary runs %s, want v2", v)
	}
	if !sameJSON(t, routes["internal-debug"], userRoute()) {
		t.Errorf("the user's route changed: %v", routes["internal-debug"])
	}
	var revs appsv1.ControllerRevisionList
	if err := f.c.List(t.Context(), &revs, client.InNamespace(f.ns)); err != nil {
		t.Fatal(err)
	}
	if len(revs.Items) != 2 {
		t.Errorf("want 2 recorded revisions, got %d", len(revs.Items))
	}
	for _, want := range []string{"Initialized", "Started", "Advanced", "Promoted"} {
		f.wantEvent("podinfo", want)
	}
}

func TestAbortMidway(t *testing.T) {
	f := given(t)
	f.app("reviews", 1, userRoute(), managedRoute("reviews"))
	beta := v1alpha1.Step{SetHeaderRoute: &v1alpha1.SetHeaderRoute{Name: "beta",
		Match: []v1alpha1.HeaderRoutingMatch{{HeaderName: "x-beta", HeaderValue: v1alpha1.StringMatch{Exact: "true"}}}}}
	f.rollout(newRollout("reviews", weight(30), beta, pause("")))
	f.eventually("reviews", "initialized", time.Minute, hasReason("Healthy"))
	var userBefore istiov1.VirtualService
	f.get(&userBefore, "reviews")

	f.release("reviews", "v2")
	f.eventually("reviews", "waiting at the manual pause", time.Minute, atStep(2, "WaitingForPromotion"))
	routes := f.wantWeights("reviews", 70, 30)
	if routes["beta"] == nil {
		t.Fatalf("no header route: %v", routes)
	}

	f.annotate("reviews", v1alpha1.AnnotationAbort, "a1")
	ro := f.eventually("reviews", "aborted", time.Minute, hasReason("AbortedByUser"))
	if ro.Status.Phase != v1alpha1.PhaseDegraded || ro.Status.Abort == nil || !strings.Contains(ro.Status.Message, "aborted on request") {
		t.Errorf("after abort: %+v", ro.Status)
	}
	if c := meta.FindStatusCondition(ro.Status.Conditions, v1alpha1.ConditionStalled); c == nil || c.Status != metav1.ConditionTrue {
		t.Errorf("Stalled condition: %+v", c)
	}
	routes = f.wantWeights("reviews", 100, 0)
	if routes["beta"] != nil {
		t.Errorf("header route left after abort")
	}
	if !sameJSON(t, routes["internal-debug"], userBefore.Spec.Http[0]) {
		t.Errorf("the user's route changed: %v", routes["internal-debug"])
	}
	f.eventually("reviews", "canary scaled down", 10*time.Second, func(*v1alpha1.Rollout) bool { return f.replicas("reviews") == 0 })
	f.wantEvent("reviews", "AbortedByUser")

	// Retry runs the same revision again from the first step.
	f.annotate("reviews", v1alpha1.AnnotationRetry, "r1")
	ro = f.eventually("reviews", "retried up to the manual pause", time.Minute, atStep(2, "WaitingForPromotion"))
	if ro.Status.Abort != nil || ro.Status.ObservedRequests.Retry != "r1" {
		t.Errorf("after retry: %+v", ro.Status)
	}
	f.wantWeights("reviews", 70, 30)
}

func TestPauseAndResume(t *testing.T) {
	f := given(t)
	f.app("pr", 1, managedRoute("pr"))
	f.rollout(newRollout("pr", weight(10), pause("2s"), weight(50)))
	f.eventually("pr", "initialized", time.Minute, hasReason("Healthy"))
	f.annotate("pr", v1alpha1.AnnotationPaused, "true")
	f.release("pr", "v2")
	ro := f.eventually("pr", "paused by user", time.Minute, hasReason("PausedByUser"))
	if ro.Status.Phase != v1alpha1.PhasePaused {
		t.Errorf("phase %s, want Paused", ro.Status.Phase)
	}
	// Held past the 2s pause for as long as the annotation stays.
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		ro = f.eventually("pr", "still paused", 10*time.Second, func(*v1alpha1.Rollout) bool { return true })
		if reason(ro) != "PausedByUser" || ptr.Deref(ro.Status.CurrentStepIndex, -1) > 1 {
			t.Fatalf("moved on while paused: %+v", ro.Status)
		}
	}
	f.annotate("pr", v1alpha1.AnnotationPaused, "")
	f.eventually("pr", "promoted after resume", time.Minute, stableAt(ro.Status.CanaryRevision))
}

func TestNewRevisionMidRollout(t *testing.T) {
	f := given(t)
	f.app("nr", 1, managedRoute("nr"))
	f.rollout(newRollout("nr", weight(40), pause(""), weight(80)))
	f.eventually("nr", "initialized", time.Minute, hasReason("Healthy"))
	f.release("nr", "v2")
	first := f.eventually("nr", "at the manual pause", time.Minute, atStep(1, "WaitingForPromotion")).Status.CanaryRevision
	f.wantWeights("nr", 60, 40)

	f.release("nr", "v3")
	ro := f.eventually("nr", "v3 at the manual pause", time.Minute, func(ro *v1alpha1.Rollout) bool {
		return ro.Status.CanaryRevision != first && atStep(1, "WaitingForPromotion")(ro)
	})
	f.wantEvent("nr", "Restarted")
	if ro.Status.StableRevision == first {
		t.Errorf("v2 was promoted")
	}
	f.wantWeights("nr", 60, 40)
}

func TestControllerRestartMidPause(t *testing.T) {
	f := given(t)
	f.app("rs", 1, managedRoute("rs"))
	f.rollout(newRollout("rs", weight(25), pause("15s"), weight(75)))
	f.eventually("rs", "initialized", time.Minute, hasReason("Healthy"))
	f.release("rs", "v2")
	ro := f.eventually("rs", "in the timed pause", time.Minute, atStep(1, "Holding"))
	start := ro.Status.StepStartedAt.DeepCopy()

	f.stopController()
	f.startController()
	t.Cleanup(f.stopController)

	ro = f.eventually("rs", "back in the same pause", 10*time.Second, func(ro *v1alpha1.Rollout) bool {
		return ro.Status.StepStartedAt != nil && atStep(1, "Holding")(ro)
	})
	if !ro.Status.StepStartedAt.Equal(start) {
		t.Errorf("pause restarted: started %v, now %v", start, ro.Status.StepStartedAt)
	}
	f.wantWeights("rs", 75, 25)
	f.eventually("rs", "promoted", time.Minute, stableAt(ro.Status.CanaryRevision))
	if got := time.Now(); got.Before(start.Add(15 * time.Second)) {
		t.Errorf("left the pause early: at %v, pause ends %v", got, start.Add(15*time.Second))
	}
}

func TestUnknownRouteInStatus(t *testing.T) {
	f := given(t)
	f.app("ur", 1, userRoute())
	f.rollout(newRollout("ur", weight(10)))
	ro := f.eventually("ur", "invalid spec", time.Minute, hasReason("InvalidSpec"))
	if !strings.Contains(ro.Status.Message, `route "primary"`) || ro.Status.Phase != v1alpha1.PhaseDegraded {
		t.Errorf("status does not name the route: %+v", ro.Status)
	}
	var vs istiov1.VirtualService
	f.get(&vs, "ur")
	if len(vs.Spec.Http) != 1 || !sameJSON(t, vs.Spec.Http[0], userRoute()) {
		t.Errorf("virtualservice changed: %v", vs.Spec.Http)
	}
}

func TestSubsetSplitting(t *testing.T) {
	f := given(t)
	dr := f.pausedBySubset("ss")
	f.get(dr, "ss")
	got := map[string]map[string]string{}
	for _, s := range dr.Spec.Subsets {
		got[s.Name] = s.Labels
	}
	if got["stable"]["app"] != "ss-primary" || got["canary"]["app"] != "ss" || len(got["stable"]) != 1 {
		t.Errorf("subset labels %v; want stable app=ss-primary, canary app=ss", got)
	}
}

// pausedBySubset sets up an app split by subset of one host, with a
// Rollout of steps setWeight 35 and a manual pause, and releases v2 up to
// that pause. The stable subset starts with a placeholder label that the
// controller must replace.
func (f *fixture) pausedBySubset(name string) *istiov1.DestinationRule {
	f.t.Helper()
	f.app(name, 1, &networkingv1.HTTPRoute{Name: "primary", Route: []*networkingv1.HTTPRouteDestination{
		dest(name, "stable", 100), dest(name, "canary", 0)}})
	dr := &istiov1.DestinationRule{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name},
		Spec: networkingv1.DestinationRule{Host: name, Subsets: []*networkingv1.Subset{
			{Name: "stable", Labels: map[string]string{"placeholder": "x"}}, {Name: "canary"}}},
	}
	if err := f.c.Create(f.t.Context(), dr); err != nil {
		f.t.Fatal(err)
	}
	ro := newRollout(name, weight(35), pause(""))
	ro.Spec.TrafficRouting.Istio.DestinationRule = &argo.IstioDestinationRule{Name: name, StableSubsetName: "stable", CanarySubsetName: "canary"}
	f.rollout(ro)
	f.eventually(name, "initialized", time.Minute, hasReason("Healthy"))
	f.release(name, "v2")
	f.eventually(name, "at the manual pause", time.Minute, atStep(1, "WaitingForPromotion"))
	f.wantWeights(name, 65, 35)
	return dr
}

func sameJSON(t *testing.T, a, b any) bool {
	t.Helper()
	ja, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	jb, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(ja) == string(jb)
}

// TestGitOpsResetIsCorrected: a GitOps tool re-applying the VirtualService
// from git mid-canary resets its weights; the controller puts them back at
// once, without losing the step.
func TestGitOpsResetIsCorrected(t *testing.T) {
	f := given(t)
	f.app("gr", 1, userRoute(), managedRoute("gr"))
	f.rollout(newRollout("gr", weight(30), pause("")))
	f.eventually("gr", "initialized", time.Minute, hasReason("Healthy"))
	f.release("gr", "v2")
	before := f.eventually("gr", "at the manual pause", time.Minute, atStep(1, "WaitingForPromotion"))
	f.wantWeights("gr", 70, 30)

	f.update(&istiov1.VirtualService{}, "gr", func(o client.Object) {
		vs := o.(*istiov1.VirtualService)
		vs.Spec.Http = []*networkingv1.HTTPRoute{userRoute(), managedRoute("gr")} // as in git: 100/0
	})
	err := wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		s, c, _ := f.weights("gr")
		return s == 70 && c == 30, nil
	})
	if err != nil {
		t.Fatalf("weights not restored: %v", err)
	}
	after := f.eventually("gr", "still at the pause", 10*time.Second, atStep(1, "WaitingForPromotion"))
	if !after.Status.StepStartedAt.Equal(before.Status.StepStartedAt) {
		t.Errorf("the step restarted: %v -> %v", before.Status.StepStartedAt, after.Status.StepStartedAt)
	}
}
