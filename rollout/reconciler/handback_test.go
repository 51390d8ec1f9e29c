package reconciler_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/rollout"
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

// Deleting a Rollout at rest gives the application back to its Deployment:
// the target is scaled up, and only once it is Ready do the Services select
// it; they outlive the Rollout, so the VirtualService keeps working, and
// primary goes.
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

	// No new pods while the quota holds: the target cannot get Ready.
	quota := &corev1.ResourceQuota{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "no-more-pods"},
		Spec:       corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("2")}},
	}
	if err := f.c.Create(t.Context(), quota); err != nil {
		t.Fatal(err)
	}
	if err := f.c.Delete(t.Context(), ro); err != nil {
		t.Fatal(err)
	}
	ro = f.eventually("hb", "handing back", time.Minute, hasReason("HandingBack"))
	if ro.Status.CanaryWeight != 0 || !strings.Contains(ro.Status.Message, "deployment hb takes the traffic back once 2 of its pods are Ready") {
		t.Errorf("while handing back: %+v", ro.Status)
	}
	if n := f.replicas("hb"); n != 2 {
		t.Errorf("target at %d replicas while handing back, want 2", n)
	}
	var stable corev1.Service
	f.get(&stable, "hb-stable")
	if stable.Spec.Selector["app"] != "hb-primary" {
		t.Errorf("the stable Service selects %v before the target is Ready", stable.Spec.Selector)
	}
	f.get(&appsv1.Deployment{}, "hb-primary")

	if err := f.c.Delete(t.Context(), quota); err != nil {
		t.Fatal(err)
	}
	// The ReplicaSet controller backs off from refused pods for longer each
	// time; a change to the ReplicaSets makes it try again at once.
	var sets appsv1.ReplicaSetList
	if err := f.c.List(t.Context(), &sets, client.InNamespace(f.ns)); err != nil {
		t.Fatal(err)
	}
	for i := range sets.Items {
		patch := client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"annotations":{"test/quota-lifted":"true"}}}`))
		if err := f.c.Patch(t.Context(), &sets.Items[i], patch); err != nil {
			t.Fatal(err)
		}
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
	f.wantEvent("hb", "HandedBack")
}

// Deleted mid-rollout, with foreground propagation (Argo CD's prune), a
// Rollout hands back the stable revision: the canary's rollout never
// completed.
func TestDeletingARolloutMidRolloutHandsBackStable(t *testing.T) {
	f := given(t)
	f.app("hm", 2, managedRoute("hm"))
	f.rollout(newRollout("hm", weight(50), pause("")))
	f.eventually("hm", "initialized", time.Minute, hasReason("Healthy"))
	var before appsv1.Deployment
	f.get(&before, "hm")
	f.release("hm", "v2")
	ro := f.eventually("hm", "paused mid-rollout", time.Minute, atStep(1, "WaitingForPromotion"))
	f.wantWeights("hm", 50, 50)

	if err := f.c.Delete(t.Context(), ro, client.PropagationPolicy(metav1.DeletePropagationForeground)); err != nil {
		t.Fatal(err)
	}
	f.gone(&v1alpha1.Rollout{}, "hm", "the rollout")
	var target appsv1.Deployment
	f.get(&target, "hm")
	if got, want := rollout.Revision(target.Spec.Template), rollout.Revision(before.Spec.Template); got != want || target.Spec.Template.Spec.Containers[0].Env[0].Value != "v1" {
		t.Errorf("target at revision %s (%v), want the stable %s", got, target.Spec.Template.Spec.Containers[0].Env, want)
	}
	if target.Status.ReadyReplicas != 2 {
		t.Errorf("target has %d Ready", target.Status.ReadyReplicas)
	}
	var stable corev1.Service
	f.get(&stable, "hm-stable")
	if stable.Spec.Selector["app"] != "hm" {
		t.Errorf("the stable Service selects %v", stable.Spec.Selector)
	}
	f.wantWeights("hm", 100, 0)
	f.gone(&appsv1.Deployment{}, "hm-primary", "primary")
}

// With the target and the VirtualService deleted too (the whole application
// deleted at once) there is nothing to hand back: the Rollout goes at once,
// with what Tugboat created.
func TestDeletingARolloutWithItsApplication(t *testing.T) {
	f := given(t)
	f.app("hd", 1, managedRoute("hd"))
	f.rollout(newRollout("hd", weight(50)))
	ro := f.eventually("hd", "initialized", time.Minute, hasReason("Healthy"))
	for _, o := range []client.Object{
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "hd"}},
		&istiov1.VirtualService{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "hd"}},
		ro,
	} {
		if err := f.c.Delete(t.Context(), o); err != nil {
			t.Fatal(err)
		}
	}
	f.gone(&v1alpha1.Rollout{}, "hd", "the rollout")
	f.gone(&appsv1.Deployment{}, "hd-primary", "primary")
	f.gone(&corev1.Service{}, "hd-stable", "the stable Service")
	f.gone(&corev1.Service{}, "hd-canary", "the canary Service")
}

// With only the target gone, primary may be all that serves: deleting the
// Rollout leaves it and the Services serving the VirtualService.
func TestDeletingARolloutWhoseTargetIsGone(t *testing.T) {
	f := given(t)
	f.app("hk", 1, managedRoute("hk"))
	f.rollout(newRollout("hk", weight(50)))
	ro := f.eventually("hk", "initialized", time.Minute, hasReason("Healthy"))
	if err := f.c.Delete(t.Context(), &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "hk"}}); err != nil {
		t.Fatal(err)
	}
	f.eventually("hk", "target gone", time.Minute, hasReason("TargetNotFound"))
	if err := f.c.Delete(t.Context(), ro); err != nil {
		t.Fatal(err)
	}
	f.gone(&v1alpha1.Rollout{}, "hk", "the rollout")
	f.get(&appsv1.Deployment{}, "hk-primary")
	f.get(&corev1.Service{}, "hk-stable")
	f.wantWeights("hk", 100, 0)
	f.wantEvent("hk", "HandedBack")
}

// Primary and Services that an earlier version created with an owner
// reference lose it, so that no deletion policy removes them before the
// application is handed back.
func TestOwnerReferencesFromEarlierVersionsGo(t *testing.T) {
	f := given(t)
	f.app("or", 1, managedRoute("or"))
	f.rollout(newRollout("or", weight(50)))
	ro := f.eventually("or", "initialized", time.Minute, hasReason("Healthy"))
	owner := []metav1.OwnerReference{*metav1.NewControllerRef(ro, v1alpha1.GroupVersion.WithKind("Rollout"))}
	f.update(&corev1.Service{}, "or-stable", func(o client.Object) { o.SetOwnerReferences(owner) })
	f.update(&appsv1.Deployment{}, "or-primary", func(o client.Object) { o.SetOwnerReferences(owner) })
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		var svc corev1.Service
		var primary appsv1.Deployment
		if err := f.c.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: "or-stable"}, &svc); err != nil {
			return false, err
		}
		if err := f.c.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: "or-primary"}, &primary); err != nil {
			return false, err
		}
		return len(svc.OwnerReferences) == 0 && len(primary.OwnerReferences) == 0, nil
	})
	if err != nil {
		t.Errorf("owner references still there: %v", err)
	}
}
