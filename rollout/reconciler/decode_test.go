package reconciler_test

import (
	"context"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

// withoutPauseBound takes the bound off pause durations in the Rollout CRD,
// as a CRD from before the bound would have it, until the test ends.
func withoutPauseBound(t *testing.T) {
	t.Helper()
	crd := &unstructured.Unstructured{}
	crd.SetGroupVersionKind(schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"})
	key := client.ObjectKey{Name: "rollouts.tugboat.dev"}
	if err := kube.Client.Get(t.Context(), key, crd); err != nil {
		t.Fatal(err)
	}
	original := crd.DeepCopy()
	path := []string{"spec", "versions"}
	versions, _, _ := unstructured.NestedSlice(crd.Object, path...)
	v := versions[0].(map[string]any)
	duration := []string{"schema", "openAPIV3Schema", "properties", "spec", "properties", "steps", "items", "properties", "pause", "properties", "duration"}
	unstructured.RemoveNestedField(v, append(duration, "x-kubernetes-validations")...)
	unstructured.RemoveNestedField(v, append(duration, "maxLength")...)
	if err := unstructured.SetNestedSlice(crd.Object, versions, path...); err != nil {
		t.Fatal(err)
	}
	if err := kube.Client.Update(t.Context(), crd); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		var now unstructured.Unstructured
		now.SetGroupVersionKind(crd.GroupVersionKind())
		if err := kube.Client.Get(context.Background(), key, &now); err != nil {
			t.Error(err)
			return
		}
		original.SetResourceVersion(now.GetResourceVersion())
		if err := kube.Client.Update(context.Background(), original); err != nil {
			t.Errorf("restore the Rollout CRD: %v", err)
		}
	})
}

// An object the API server took before its bounds existed (a pause of 2^32
// seconds) stops no one: the controller decodes it, reports it, and every
// other Rollout still progresses.
func TestAnObjectPastItsBoundsStopsNoOne(t *testing.T) {
	f := given(t)
	f.stopController()
	withoutPauseBound(t)
	bad := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "tugboat.dev/v1alpha1", "kind": "Rollout",
		"metadata": map[string]any{"namespace": f.ns, "name": "overflow"},
		"spec": map[string]any{
			"targetRef":      map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "name": "overflow"},
			"service":        map[string]any{"port": int64(80)},
			"trafficRouting": map[string]any{"istio": map[string]any{"virtualService": map[string]any{"name": "overflow", "routes": []any{"primary"}}}},
			"steps":          []any{map[string]any{"pause": map[string]any{"duration": int64(4294967296)}}},
		},
	}}
	// The CRD change takes a moment to reach the API server's validation.
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		err := f.c.Create(ctx, bad)
		return err == nil || apierrors.IsAlreadyExists(err), nil
	})
	if err != nil {
		t.Fatalf("the API server never took the overflowing pause: %v", err)
	}
	t.Cleanup(func() {
		var ro v1alpha1.Rollout
		if err := f.c.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: "overflow"}, &ro); err == nil {
			ro.Finalizers = nil
			_ = f.c.Update(context.Background(), &ro)
			_ = f.c.Delete(context.Background(), &ro)
		}
	})

	f.startController()
	f.app("overflow", 1, managedRoute("overflow"))
	f.app("fine", 1, managedRoute("fine"))
	f.rollout(newRollout("fine", weight(50), pause("1s")))
	f.eventually("fine", "initialized", time.Minute, hasReason("Healthy"))
	f.eventually("overflow", "initialized", time.Minute, hasReason("Healthy"))
	f.release("overflow", "v2")
	f.eventually("overflow", "held on its pause", time.Minute, func(ro *v1alpha1.Rollout) bool {
		return reason(ro) == "InvalidSpec" && ro.Status.Message == `step 0: pause duration "4294967296": want seconds or a duration such as 30s, at most 2147483647 seconds`
	})
	v2 := f.release("fine", "v2")
	f.eventually("fine", "promoted", time.Minute, stableAt(v2))
}
