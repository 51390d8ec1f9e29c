package dataplane_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	networkingv1 "istio.io/api/networking/v1"
	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tugboatdev/tugboat/sandbox/cluster"
	"github.com/tugboatdev/tugboat/sandbox/dataplane"
)

// TestEmulatorAgainstTheAPIServer routes load through a VirtualService read
// from a real API server to Ready pods behind Services, and checks the
// Istio metrics: the split, the behaviour from the pod templates, requests
// to a Service with no Ready pod, and mirrored copies reported as Istio
// reports them.
func TestEmulatorAgainstTheAPIServer(t *testing.T) {
	env := cluster.Start(t)
	ctx := t.Context()
	ns := "default"
	pod := func(name, app, rs, hash, errRate string, ready bool) {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name,
				Labels:          map[string]string{"app": app, "pod-template-hash": hash},
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs, UID: types.UID("u-" + rs), Controller: ptr.To(true)}}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app",
				Env: []corev1.EnvVar{{Name: "DEMO_ERROR_RATE", Value: errRate}, {Name: "DEMO_LATENCY_MS", Value: "40"}}}}},
		}
		if err := env.Client.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
		status := corev1.ConditionFalse
		if ready {
			status = corev1.ConditionTrue
		}
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: status}}
		if err := env.Client.Status().Update(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	pod("stable-1", "web-primary", "web-primary-aaa", "aaa", "0", true)
	pod("canary-1", "web", "web-bbb", "bbb", "1", true) // every request fails
	pod("preview-1", "preview", "preview-ccc", "ccc", "0", false)
	for name, app := range map[string]string{"web-stable": "web-primary", "web-canary": "web", "preview": "preview"} {
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": app}, Ports: []corev1.ServicePort{{Port: 80}}}}
		if err := env.Client.Create(ctx, svc); err != nil {
			t.Fatal(err)
		}
	}
	vs := &istiov1.VirtualService{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec: networkingv1.VirtualService{Hosts: []string{"web"}, Http: []*networkingv1.HTTPRoute{{
			Name: "primary",
			Route: []*networkingv1.HTTPRouteDestination{
				{Destination: &networkingv1.Destination{Host: "web-stable"}, Weight: 90},
				{Destination: &networkingv1.Destination{Host: "web-canary"}, Weight: 10}},
			Mirror:           &networkingv1.Destination{Host: "preview"},
			MirrorPercentage: &networkingv1.Percent{Value: 50},
		}}},
	}
	if err := env.Client.Create(ctx, vs); err != nil {
		t.Fatal(err)
	}

	reg := prometheus.NewRegistry()
	e := dataplane.New(env.Client, reg, dataplane.Options{Namespace: ns, Rate: 1000, Seed: 7})
	if err := e.Tick(ctx, 10*time.Second); err != nil { // 10000 requests
		t.Fatal(err)
	}
	count := func(labels map[string]string) float64 { return sum(t, reg, "istio_requests_total", labels) }
	stable := count(map[string]string{"reporter": "source", "destination_workload": "web-primary", "response_code": "200"})
	canary := count(map[string]string{"reporter": "source", "destination_workload": "web", "response_code": "500"})
	if stable+canary != 10000 || canary < 900 || canary > 1100 {
		t.Errorf("split: %v to stable (200), %v to canary (500); want 10000 in all, 10%%±1 to the canary", stable, canary)
	}
	// The receiving sidecars report the same requests.
	if n := count(map[string]string{"reporter": "destination", "destination_workload": "web-primary", "response_code": "200"}); n != stable {
		t.Errorf("reported by the receiving side: %v requests to stable, want %v as at the source", n, stable)
	}
	if n := count(map[string]string{"destination_workload": "web", "response_code": "200"}); n != 0 {
		t.Errorf("the canary's DEMO_ERROR_RATE=1 was not honoured: %v successes", n)
	}
	// Copies are reported only where a Ready pod receives them: none yet.
	if n := count(map[string]string{"destination_service_name": "preview"}); n != 0 {
		t.Errorf("copies to a Service with no Ready pod reported: %v", n)
	}
	if n := count(map[string]string{"reporter": "source", "destination_service_name": "web-stable", "destination_service": "web-stable.default.svc.cluster.local"}); n != stable {
		t.Errorf("Istio labels: %v requests under web-stable's service labels, want %v", n, stable)
	}
	if n := testutil.CollectAndCount(reg, "istio_request_duration_milliseconds"); n == 0 {
		t.Error("no istio_request_duration_milliseconds series")
	}
	// With the preview Ready, its copies are reported by its side, as Istio
	// does: reporter destination, its workload and Service, nothing at the
	// source.
	var preview corev1.Pod
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "preview-1"}, &preview); err != nil {
		t.Fatal(err)
	}
	preview.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	if err := env.Client.Status().Update(ctx, &preview); err != nil {
		t.Fatal(err)
	}
	if err := e.Tick(ctx, 10*time.Second); err != nil { // 10000 more
		t.Fatal(err)
	}
	copies := count(map[string]string{"reporter": "destination", "destination_workload": "preview", "destination_service": "preview.default.svc.cluster.local", "response_code": "200"})
	if copies < 4700 || copies > 5300 {
		t.Errorf("copies reported by the preview: %v, want 50%%±3 of 10000", copies)
	}
	if n := count(map[string]string{"reporter": "source", "destination_service_name": "preview"}); n != 0 {
		t.Errorf("copies reported at the source: %v", n)
	}
	var list istiov1.VirtualServiceList
	if err := env.Client.List(ctx, &list, client.InNamespace(ns)); err != nil || len(list.Items) != 1 {
		t.Fatalf("virtualservices: %v %d", err, len(list.Items))
	}
}

// sum adds up the counters of the named metric whose labels include
// labels.
func sum(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue metrics
				}
			}
			total += m.GetCounter().GetValue()
		}
	}
	return total
}
