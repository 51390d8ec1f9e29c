package reconciler_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	networkingv1 "istio.io/api/networking/v1"
	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/rollout"
)

// losesPromotionWrite is the reconciler's client with the first status write
// that moves a Rollout past its last step refused as a conflict (a person or
// a GitOps tool wrote the Rollout first). At that moment lost runs once.
type losesPromotionWrite struct {
	client.Client
	lost func()
	once sync.Once
}

func (l *losesPromotionWrite) Status() client.SubResourceWriter {
	return &losesPromotionStatus{SubResourceWriter: l.Client.Status(), l: l}
}

type losesPromotionStatus struct {
	client.SubResourceWriter
	l *losesPromotionWrite
}

func (s *losesPromotionStatus) Patch(ctx context.Context, o client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
	ro, ok := o.(*v1alpha1.Rollout)
	refused := false
	if ok && ro.Status.CurrentStepIndex != nil && int(*ro.Status.CurrentStepIndex) >= len(ro.Spec.Steps) {
		s.l.once.Do(func() { refused = true; s.l.lost() })
	}
	if refused {
		return apierrors.NewConflict(schema.GroupResource{Group: "tugboat.dev", Resource: "rollouts"}, ro.Name, nil)
	}
	return s.SubResourceWriter.Patch(ctx, o, patch, opts...)
}

// primaryRevision reads the revision primary runs from the API server.
func (f *fixture) primaryRevision(name string) (string, string) {
	f.t.Helper()
	var d appsv1.Deployment
	f.get(&d, name+"-primary")
	return d.Annotations["tugboat.dev/revision"], d.Spec.Template.Spec.Containers[0].Env[0].Value
}

// Status records a promotion before primary takes the canary's template: when
// that write is lost and the rollout is aborted right then, primary never ran
// the aborted revision, and serves the stable one.
func TestPromotionIsRecordedBeforePrimaryTakesIt(t *testing.T) {
	f := given(t)
	f.stopController()
	var atLoss []string
	f.wrap = func(c client.Client) client.Client {
		return &losesPromotionWrite{Client: c, lost: func() {
			rev, version := f.primaryRevisionNoFail("lp")
			atLoss = []string{rev, version}
			f.annotateNoFail("lp", v1alpha1.AnnotationAbort, "a1")
		}}
	}
	f.startController()
	f.app("lp", 1, managedRoute("lp"))
	f.rollout(newRollout("lp", weight(20), pause("")))
	stable := f.eventually("lp", "initialized", time.Minute, hasReason("Healthy")).Status.StableRevision
	f.release("lp", "v2")
	f.eventually("lp", "paused", time.Minute, atStep(1, "WaitingForPromotion"))
	f.annotate("lp", v1alpha1.AnnotationPromote, "p1")

	ro := f.eventually("lp", "aborted", time.Minute, hasReason("AbortedByUser"))
	if len(atLoss) != 2 || atLoss[0] != stable || atLoss[1] != "v1" {
		t.Errorf("when the promotion's status write was lost, primary ran %v; want stable revision %s (v1)", atLoss, stable)
	}
	if ro.Status.StableRevision != stable {
		t.Errorf("status calls %s stable, want %s", ro.Status.StableRevision, stable)
	}
	if rev, version := f.primaryRevision("lp"); rev != stable || version != "v1" {
		t.Errorf("after the abort primary runs %s (%s), want stable revision %s (v1)", rev, version, stable)
	}
	f.wantWeights("lp", 100, 0)
}

// A primary found on a revision that status calls neither stable nor
// promoting (as a lost promotion write left it in earlier versions, or a
// person's edit) is put back on the stable revision's recorded template.
func TestPrimaryOnAnUnpromotedRevisionIsPutBack(t *testing.T) {
	f := given(t)
	f.app("pb", 1, managedRoute("pb"))
	f.rollout(newRollout("pb", weight(20), pause("")))
	stable := f.eventually("pb", "initialized", time.Minute, hasReason("Healthy")).Status.StableRevision
	canary := f.release("pb", "v2")
	f.eventually("pb", "paused", time.Minute, atStep(1, "WaitingForPromotion"))

	var target appsv1.Deployment
	f.get(&target, "pb")
	f.update(&appsv1.Deployment{}, "pb-primary", func(o client.Object) {
		d := o.(*appsv1.Deployment)
		d.Spec.Template.Spec.Containers[0].Env[0].Value = "v2"
		d.Annotations["tugboat.dev/revision"] = canary
	})
	err := pollUntil(t, time.Minute, func() bool {
		rev, version := f.primaryRevision("pb")
		return rev == stable && version == "v1"
	})
	if err != nil {
		rev, version := f.primaryRevision("pb")
		t.Fatalf("primary was not put back on stable revision %s: it runs %s (%s)", stable, rev, version)
	}
	ro := f.eventually("pb", "still paused", 10*time.Second, atStep(1, "WaitingForPromotion"))
	if ro.Status.StableRevision != stable || ro.Status.CanaryRevision != canary {
		t.Errorf("status after primary was put back: %+v", ro.Status)
	}
}

// A rollout held by a problem (a step's template is missing) is still
// aborted by a failing background analysis.
func TestBackgroundFailureAbortsAHeldRollout(t *testing.T) {
	f := given(t)
	successRate.WithLabelValues("hb").Set(0.5)
	f.scraped("hb")
	f.backgroundTemplate("failing", `tugboat_test_success_rate{workload="hb"}`)
	f.app("hb", 1, managedRoute("hb"))
	ro := newRollout("hb", weight(20), analysisStep("hb"), pause(""))
	ro.Spec.Analysis = &v1alpha1.BackgroundAnalysis{StartingStep: ptr.To[int32](1), Analysis: v1alpha1.Analysis{
		Templates: []v1alpha1.AnalysisTemplateRef{{TemplateName: "failing"}},
	}}
	f.rollout(ro)
	f.eventually("hb", "initialized", time.Minute, hasReason("Healthy"))
	f.release("hb", "v2")
	got := f.eventually("hb", "aborted by the background analysis", time.Minute, hasReason("AnalysisFailed"))
	if !strings.Contains(got.Status.Message, "success-rate not found") {
		t.Errorf("the abort does not say what held the rollout: %q", got.Status.Message)
	}
	f.wantWeights("hb", 100, 0)
}

// backgroundTemplate measures q every second, and passes at 0.99 and above.
func (f *fixture) backgroundTemplate(name, q string) {
	f.t.Helper()
	tmpl := &v1alpha1.AnalysisTemplate{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name},
		Spec: v1alpha1.AnalysisTemplateSpec{Metrics: []v1alpha1.Metric{{
			Name: "success-rate", Interval: "1s", SuccessCondition: "result[0] >= 0.99",
			Provider: v1alpha1.MetricProvider{Prometheus: &v1alpha1.PrometheusMetric{Query: q}},
		}}},
	}
	if err := f.c.Create(f.t.Context(), tmpl); err != nil {
		f.t.Fatal(err)
	}
}

// Steps edited mid-rollout start it again from the first step: a shortened
// list does not promote at once.
func TestStepsEditedMidRollout(t *testing.T) {
	f := given(t)
	f.app("se", 1, managedRoute("se"))
	f.rollout(newRollout("se", weight(20), pause(""), weight(50), pause("")))
	stable := f.eventually("se", "initialized", time.Minute, hasReason("Healthy")).Status.StableRevision
	f.release("se", "v2")
	f.eventually("se", "at the first manual pause", time.Minute, atStep(1, "WaitingForPromotion"))
	f.annotate("se", v1alpha1.AnnotationPromote, "p1")
	f.eventually("se", "at the last manual pause", time.Minute, atStep(3, "WaitingForPromotion"))
	f.wantWeights("se", 50, 50)

	f.update(&v1alpha1.Rollout{}, "se", func(o client.Object) {
		o.(*v1alpha1.Rollout).Spec.Steps = []v1alpha1.Step{weight(10), pause("")}
	})
	ro := f.eventually("se", "started again, at the new list's pause", time.Minute, func(ro *v1alpha1.Rollout) bool {
		return atStep(1, "WaitingForPromotion")(ro) && ro.Status.ObservedGeneration == ro.Generation
	})
	if ro.Status.StableRevision != stable || ro.Status.StepsHash != rollout.StepsHash(ro.Spec.Steps) {
		t.Errorf("after the steps changed: %+v", ro.Status)
	}
	f.wantWeights("se", 90, 10)
	f.wantEvent("se", "StepsChanged")
}

// A background analysis that finds no data holds the rollout for a person;
// promote goes on with a new background analysis.
func TestInconclusiveBackgroundHoldsForAPerson(t *testing.T) {
	f := given(t)
	f.backgroundTemplate("no-data", `tugboat_test_success_rate{workload="bi"}`)
	f.app("bi", 1, managedRoute("bi"))
	ro := newRollout("bi", weight(20), pause("2s"))
	ro.Spec.Analysis = &v1alpha1.BackgroundAnalysis{Analysis: v1alpha1.Analysis{
		Templates: []v1alpha1.AnalysisTemplateRef{{TemplateName: "no-data"}},
	}}
	f.rollout(ro)
	stable := f.eventually("bi", "initialized", time.Minute, hasReason("Healthy")).Status.StableRevision
	f.release("bi", "v2")
	held := f.eventually("bi", "held for a person", time.Minute, hasReason("AnalysisInconclusive"))
	if held.Status.StableRevision != stable || held.Status.Phase != v1alpha1.PhasePaused {
		t.Fatalf("held: %+v", held.Status)
	}
	// Still held once the pause is long over: no evidence is no pass.
	if err := pollUntil(t, 5*time.Second, func() bool {
		var ro v1alpha1.Rollout
		f.get(&ro, "bi")
		return reason(&ro) != "AnalysisInconclusive"
	}); err == nil {
		t.Fatal("the rollout went on without a person")
	}

	successRate.WithLabelValues("bi").Set(1)
	f.scraped("bi")
	f.annotate("bi", v1alpha1.AnnotationPromote, "p1")
	f.eventually("bi", "promoted", time.Minute, stableAt(held.Status.CanaryRevision))
	f.wantEvent("bi", "InconclusiveAccepted")
}

// An abort does all it can: with one managed route gone from the
// VirtualService, the other still goes to stable and the canary is scaled
// down, and status says what could not be done.
func TestAbortDoesAllItCan(t *testing.T) {
	f := given(t)
	second := managedRoute("ab")
	second.Name = "secondary"
	second.Match = []*networkingv1.HTTPMatchRequest{{Uri: &networkingv1.StringMatch{MatchType: &networkingv1.StringMatch_Prefix{Prefix: "/v2"}}}}
	f.app("ab", 1, second, managedRoute("ab"))
	ro := newRollout("ab", weight(20), pause(""))
	ro.Spec.TrafficRouting.Istio.VirtualService.Routes = []string{"primary", "secondary"}
	f.rollout(ro)
	f.eventually("ab", "initialized", time.Minute, hasReason("Healthy"))
	f.release("ab", "v2")
	f.eventually("ab", "paused", time.Minute, atStep(1, "WaitingForPromotion"))
	f.wantWeights("ab", 80, 20)

	// A GitOps tool drops the secondary route.
	f.update(&istiov1.VirtualService{}, "ab", func(o client.Object) {
		vs := o.(*istiov1.VirtualService)
		vs.Spec.Http = vs.Spec.Http[1:]
	})
	f.eventually("ab", "held on the missing route", time.Minute, hasReason("InvalidSpec"))
	f.annotate("ab", v1alpha1.AnnotationAbort, "a1")
	got := f.eventually("ab", "aborted", time.Minute, hasReason("AbortedByUser"))
	if !strings.Contains(got.Status.Message, `"secondary"`) {
		t.Errorf("the abort does not say which route it could not move: %q", got.Status.Message)
	}
	f.wantWeights("ab", 100, 0)
	f.eventually("ab", "canary scaled down", 30*time.Second, func(*v1alpha1.Rollout) bool { return f.replicas("ab") == 0 })
}

// pollUntil polls cond every 50 ms until it holds or the timeout passes.
func pollUntil(t *testing.T, timeout time.Duration, cond func() bool) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if cond() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// primaryRevisionNoFail and annotateNoFail are for the controller's
// goroutine, where a test may not stop.
func (f *fixture) primaryRevisionNoFail(name string) (string, string) {
	var d appsv1.Deployment
	if err := f.c.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: name + "-primary"}, &d); err != nil {
		f.t.Errorf("read primary: %v", err)
		return "", ""
	}
	return d.Annotations["tugboat.dev/revision"], d.Spec.Template.Spec.Containers[0].Env[0].Value
}

func (f *fixture) annotateNoFail(name, key, value string) {
	err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		var ro v1alpha1.Rollout
		if err := f.c.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: name}, &ro); err != nil {
			return err
		}
		if ro.Annotations == nil {
			ro.Annotations = map[string]string{}
		}
		ro.Annotations[key] = value
		return f.c.Update(context.Background(), &ro)
	})
	if err != nil {
		f.t.Errorf("annotate %s: %v", name, err)
	}
}
