package reconciler_test

import (
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

// A target deleted mid-rollout takes the canary's pods with it: traffic goes
// back to stable at once, and the subsets keep selecting the right pods.
func TestTargetDeletedMidRollout(t *testing.T) {
	f := given(t)
	dr := f.pausedBySubset("td")
	if err := f.c.Delete(t.Context(), &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "td"}}); err != nil {
		t.Fatal(err)
	}
	ro := f.eventually("td", "aborted", time.Minute, hasReason("TargetNotFound"))
	if ro.Status.Abort == nil || ro.Status.Abort.Reason != "TargetNotFound" || ro.Status.CanaryWeight != 0 || ro.Status.Phase != v1alpha1.PhaseDegraded ||
		!strings.Contains(ro.Status.Message, "traffic back on stable") {
		t.Errorf("after the target was deleted: %+v", ro.Status)
	}
	f.wantWeights("td", 100, 0)
	f.get(dr, "td")
	for _, s := range dr.Spec.Subsets {
		if want := map[string]string{"stable": "td-primary", "canary": "td"}[s.Name]; s.Labels["app"] != want {
			t.Errorf("subset %s selects %v, want app=%s", s.Name, s.Labels, want)
		}
	}
	f.wantEvent("td", "TargetNotFound")
}

// An abort needs nothing a stop is about: asked for while the rollout waits
// on a missing template, it is carried out.
func TestAbortWhileStopped(t *testing.T) {
	f := given(t)
	f.app("as", 1, managedRoute("as"))
	f.rollout(newRollout("as", weight(20), analysisStep("as")))
	f.eventually("as", "initialized", time.Minute, hasReason("Healthy"))
	f.release("as", "v2")
	f.eventually("as", "stopped on the missing template", time.Minute, atStep(1, "InvalidSpec"))
	f.wantWeights("as", 80, 20)

	f.annotate("as", v1alpha1.AnnotationAbort, "a1")
	ro := f.eventually("as", "aborted", time.Minute, hasReason("AbortedByUser"))
	if ro.Status.Abort == nil || ro.Status.ObservedRequests.Abort != "a1" || ro.Status.CanaryWeight != 0 ||
		!strings.Contains(ro.Status.Message, "aborted on request while analysistemplate "+f.ns+"/success-rate not found") {
		t.Errorf("after abort: %+v", ro.Status)
	}
	f.wantWeights("as", 100, 0)
	f.eventually("as", "canary scaled down", 10*time.Second, func(*v1alpha1.Rollout) bool { return f.replicas("as") == 0 })
}
