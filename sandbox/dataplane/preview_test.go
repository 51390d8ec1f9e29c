package dataplane_test

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	networkingv1 "istio.io/api/networking/v1"
	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
	istiov1alpha3 "istio.io/client-go/pkg/apis/networking/v1alpha3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tugboatdev/tugboat/sandbox/cluster"
	"github.com/tugboatdev/tugboat/sandbox/dataplane"
	"github.com/tugboatdev/tugboat/shadow"
)

// TestPreviewCopiesAgainstTheAPIServer mirrors a production route's GETs
// from namespace prod to previews in pr-42 (50%, behind the sanitizer's
// EnvoyFilter) and pr-43 (20%, no filter), and checks what each pod
// received: the share and methods of the copies, and the credentials that
// reached them.
func TestPreviewCopiesAgainstTheAPIServer(t *testing.T) {
	env := cluster.Start(t)
	ctx := t.Context()
	create := func(obj client.Object) {
		t.Helper()
		if err := env.Client.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	app := map[string]string{"app": "web"}
	for _, ns := range []string{"prod", "pr-42", "pr-43"} {
		create(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
		create(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
			Spec: corev1.ServiceSpec{Selector: app, Ports: []corev1.ServicePort{{Port: 8080}}}})
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web-1", Labels: map[string]string{"app": "web", "pod-template-hash": "abc"},
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-abc", UID: types.UID("u-" + ns), Controller: ptr.To(true)}}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app"}}},
		}
		create(p)
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
		if err := env.Client.Status().Update(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	vs := &istiov1.VirtualService{
		ObjectMeta: metav1.ObjectMeta{Namespace: "prod", Name: "web"},
		Spec: networkingv1.VirtualService{Hosts: []string{"web"}, Http: []*networkingv1.HTTPRoute{{
			Name:  "tugboat-mirror-get",
			Match: []*networkingv1.HTTPMatchRequest{{Method: &networkingv1.StringMatch{MatchType: &networkingv1.StringMatch_Exact{Exact: "GET"}}}},
			Route: []*networkingv1.HTTPRouteDestination{{Destination: &networkingv1.Destination{Host: "web"}}},
			Mirrors: []*networkingv1.HTTPMirrorPolicy{
				{Destination: &networkingv1.Destination{Host: "web.pr-42.svc.cluster.local", Port: &networkingv1.PortSelector{Number: 8080}}, Percentage: &networkingv1.Percent{Value: 50}},
				{Destination: &networkingv1.Destination{Host: "web.pr-43", Port: &networkingv1.PortSelector{Number: 8080}}, Percentage: &networkingv1.Percent{Value: 20}},
			},
		}, {
			Name:  "primary",
			Route: []*networkingv1.HTTPRouteDestination{{Destination: &networkingv1.Destination{Host: "web"}}},
		}}},
	}
	create(vs)
	removed := append(slices.Clone(shadow.DefaultRemovedHeaders), "x-tenant-token")
	sanitizer, err := shadow.Sanitizer{Hosts: shadow.HostsOf("prod", vs.Spec.Hosts), Remove: removed}.Lua()
	if err != nil {
		t.Fatal(err)
	}
	create(dataplane.LuaEnvoyFilter("pr-42", "web", app, sanitizer))

	reg := prometheus.NewRegistry()
	e := dataplane.New(env.Client, reg, dataplane.Options{Namespace: "prod", Rate: 1000, Seed: 11})
	if err := e.Tick(ctx, 10*time.Second); err != nil { // 10000 requests
		t.Fatal(err)
	}
	received := func(labels map[string]string) float64 {
		return sum(t, reg, "tugboat_sandbox_received_requests_total", labels)
	}
	carried := func(ns, mirrored, header string) float64 {
		return sum(t, reg, "tugboat_sandbox_received_headers_total", map[string]string{"namespace": ns, "mirrored": mirrored, "header": header})
	}
	istio := func(labels map[string]string) float64 { return sum(t, reg, "istio_requests_total", labels) }

	if n := received(map[string]string{"namespace": "prod", "mirrored": "false", "workload": "web"}); n != 10000 {
		t.Fatalf("production received %v requests, want all 10000", n)
	}
	gets := received(map[string]string{"namespace": "prod", "method": "GET"})
	for ns, want := range map[string]float64{"pr-42": 50, "pr-43": 20} {
		copies := received(map[string]string{"namespace": ns, "mirrored": "true", "method": "GET"})
		// The binomial standard deviation is under 0.6 points on about 7500 GETs.
		if share := copies / gets * 100; math.Abs(share-want) > 3 {
			t.Errorf("%s received copies of %.1f%% of %v GETs, want %v±3", ns, share, gets, want)
		}
		if all := received(map[string]string{"namespace": ns}); all != copies {
			t.Errorf("%s received %v requests, of which %v copies of GETs; the route mirrors GETs only", ns, all, copies)
		}
		// Istio's view of the same: the preview's side reports them, under
		// its own namespace.
		if n := istio(map[string]string{"reporter": "destination", "destination_service": "web." + ns + ".svc.cluster.local",
			"destination_service_name": "web", "destination_service_namespace": ns, "destination_workload_namespace": ns,
			"destination_workload": "web", "response_code": "200"}); n != copies {
			t.Errorf("%s: %v copies reported by the destination, want %v", ns, n, copies)
		}
		if n := istio(map[string]string{"reporter": "source", "destination_service_namespace": ns}); n != 0 {
			t.Errorf("%s: copies reported at the source: %v", ns, n)
		}
	}
	for _, h := range []string{"authorization", "cookie", "x-api-key", "x-tenant-token"} {
		if n := carried("prod", "false", h); n == 0 {
			t.Errorf("production received no %s", h)
		}
		if n := carried("pr-43", "true", h); n == 0 {
			t.Errorf("pr-43, with no filter, received no %s on its copies", h)
		}
	}
	for _, h := range removed {
		if n := carried("pr-42", "true", h); n != 0 {
			t.Errorf("pr-42's filter let %v copies through with %s", n, h)
		}
	}

	// A sanitizer that fails answers 503 for copies instead of letting them
	// through; a filter the production side inserts acts on its own
	// requests; and a filter whose Lua does not load is left out, and
	// reported.
	var ef istiov1alpha3.EnvoyFilter
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "pr-42", Name: "tugboat-preview-web"}, &ef); err != nil {
		t.Fatal(err)
	}
	broken := strings.Replace(sanitizer, "headers:remove(MARK)", "headers:nosuch(MARK)", 1)
	ef.Spec.ConfigPatches = dataplane.LuaEnvoyFilter("pr-42", "web", app, broken).Spec.ConfigPatches
	if err := env.Client.Update(ctx, &ef); err != nil {
		t.Fatal(err)
	}
	create(dataplane.LuaEnvoyFilter("prod", "no-head", app,
		`function envoy_on_request(handle) if handle:headers():get(":method") == "HEAD" then handle:respond({[":status"] = "405"}) end end`))
	create(dataplane.LuaEnvoyFilter("pr-43", "unloadable", app, `function envoy_on_request(handle)`))
	before := map[string]float64{
		"pr-42": received(map[string]string{"namespace": "pr-42"}),
		"pr-43": carried("pr-43", "true", "cookie"),
		"HEAD":  received(map[string]string{"namespace": "prod", "method": "HEAD"}),
	}
	err = e.Tick(ctx, 10*time.Second)
	if err == nil || !strings.Contains(err.Error(), "envoyfilter pr-43/tugboat-preview-unloadable") {
		t.Errorf("Tick: %v; want the filter that does not load named", err)
	}
	if n := received(map[string]string{"namespace": "pr-42"}); n != before["pr-42"] {
		t.Errorf("pr-42 received %v requests past its failing filter", n-before["pr-42"])
	}
	if n := istio(map[string]string{"reporter": "destination", "destination_service_namespace": "pr-42", "destination_workload": "web", "response_code": "503"}); n < 3000 {
		t.Errorf("pr-42's side reported %v copies answered 503, want about half the tick's GETs", n)
	}
	if n := carried("pr-43", "true", "cookie"); n <= before["pr-43"] {
		t.Error("pr-43 stopped receiving copies with their credentials: its unloadable filter was applied")
	}
	if n := received(map[string]string{"namespace": "prod", "method": "HEAD"}); n != before["HEAD"] {
		t.Errorf("production received %v HEAD requests past its filter", n-before["HEAD"])
	}
	if n := istio(map[string]string{"reporter": "source", "destination_service_namespace": "prod", "response_code": "405"}); n < 500 {
		t.Errorf("%v HEAD requests answered 405 at the source, want about 10%% of 10000", n)
	}
}
