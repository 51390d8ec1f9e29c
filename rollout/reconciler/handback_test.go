package reconciler_test

import (
	"context"
	"slices"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

// gone waits until o no longer exists.
func (f *fixture) gone(o client.Object, name, what string) {
	f.t.Helper()
	err := wait.PollUntilContextTimeout(f.t.Context(), 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		err := f.c.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: name}, o)
		return apierrors.IsNotFound(err), client.IgnoreNotFound(err)
	})
	if err != nil {
		f.t.Fatalf("waiting for %s to be gone: %v", what, err)
	}
}

// Deleting a Rollout gives the application back to its Deployment: the
// target is scaled up and Ready before the Services select it, the Services
// outlive the Rollout so the VirtualService keeps working, and primary goes.
func TestDeletingARolloutHandsBack(t *testing.T) {
	f := given(t)
	f.app("hb", 2, managedRoute("hb"))
	f.rollout(newRollout("hb", weight(50), pause("")))
	ro := f.eventually("hb", "initialized", time.Minute, hasReason("Healthy"))
	if !slices.Contains(ro.Finalizers, "tugboat.dev/hand-back") {
		t.Fatalf("finalizers %v", ro.Finalizers)
	}
	if n := f.replicas("hb"); n != 0 {
		t.Fatalf("target at %d replicas before the deletion, want 0", n)
	}
	f.release("hb", "v2")
	f.eventually("hb", "paused mid-rollout", time.Minute, atStep(1, "WaitingForPromotion"))
	f.wantWeights("hb", 50, 50)

	if err := f.c.Delete(t.Context(), ro); err != nil {
		t.Fatal(err)
	}
	f.gone(&v1alpha1.Rollout{}, "hb", "the rollout")
	var target appsv1.Deployment
	f.get(&target, "hb")
	if *target.Spec.Replicas != 2 || target.Status.ReadyReplicas != 2 {
		t.Errorf("target at %d replicas, %d Ready, want 2 and 2", *target.Spec.Replicas, target.Status.ReadyReplicas)
	}
	for _, name := range []string{"hb-stable", "hb-canary"} {
		var svc corev1.Service
		f.get(&svc, name)
		if svc.Spec.Selector["app"] != "hb" || len(svc.OwnerReferences) != 0 {
			t.Errorf("service %s selects %v, owners %v; want app=hb and none", name, svc.Spec.Selector, svc.OwnerReferences)
		}
	}
	f.wantWeights("hb", 100, 0)
	f.gone(&appsv1.Deployment{}, "hb-primary", "primary")
	var svc corev1.Service
	f.get(&svc, "hb-stable") // still there after garbage collection ran
	if !slices.Contains(f.events("hb"), "HandingBack") {
		t.Errorf("no HandingBack event: %v", f.events("hb"))
	}
}

// With the target deleted too (the whole application deleted at once) there
// is nothing to hand back, and the Rollout goes at once.
func TestDeletingARolloutWithItsTarget(t *testing.T) {
	f := given(t)
	f.app("hd", 1, managedRoute("hd"))
	f.rollout(newRollout("hd", weight(50)))
	ro := f.eventually("hd", "initialized", time.Minute, hasReason("Healthy"))
	if err := f.c.Delete(t.Context(), &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "hd"}}); err != nil {
		t.Fatal(err)
	}
	if err := f.c.Delete(t.Context(), ro); err != nil {
		t.Fatal(err)
	}
	f.gone(&v1alpha1.Rollout{}, "hd", "the rollout")
	f.gone(&appsv1.Deployment{}, "hd-primary", "primary")
}
