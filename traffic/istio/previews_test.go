package istio_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/tugboatdev/tugboat/traffic"
	"github.com/tugboatdev/tugboat/traffic/istio"
)

// mirrors sums up each route's mirrors as "name: host%percentage ...".
func mirrors(vs *unstructured.Unstructured) []string {
	var out []string
	http, _, _ := unstructured.NestedSlice(vs.Object, "spec", "http")
	for _, h := range http {
		h := h.(map[string]any)
		list, _ := h["mirrors"].([]any)
		if len(list) == 0 {
			continue
		}
		var ms []string
		for _, m := range list {
			m := m.(map[string]any)
			dst := m["destination"].(map[string]any)
			pct, _, _ := unstructured.NestedFloat64(m, "percentage", "value")
			if pct == 0 {
				if v, ok, _ := unstructured.NestedInt64(m, "percentage", "value"); ok {
					pct = float64(v)
				}
			}
			ms = append(ms, fmt.Sprintf("%s%%%v", dst["host"], pct))
		}
		out = append(out, fmt.Sprintf("%s: %s", h["name"], strings.Join(ms, " ")))
	}
	return out
}

// A canary and two previews on one route: one write each, no owner removes
// another's routes, the copies follow the canary's weights, and the
// VirtualService settles.
func TestPreviewsBesideACanary(t *testing.T) {
	c, ns := kubeClient(t)
	create(t, c, ns, `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web}
spec:
  hosts: [web]
  http:
  - name: primary
    route:
    - {destination: {host: web-stable}, weight: 100}
    - {destination: {host: web-canary}, weight: 0}
  - name: user-fallback
    route:
    - {destination: {host: legacy}}
`)
	r := &istio.Router{Client: c}
	m := traffic.Mesh{Namespace: ns, Owner: "web", VirtualService: "web", Routes: []string{"primary"}, StableService: "web-stable", CanaryService: "web-canary"}
	method := func(v string) *traffic.ValueMatch { return &traffic.ValueMatch{Kind: traffic.Exact, Value: v} }
	pr1 := &traffic.PreviewMirror{Host: "web.pr-1.svc.cluster.local", Port: 80, Percentage: 10, Match: []traffic.RequestMatch{{Method: method("GET")}, {Method: method("HEAD")}}}
	pr2 := &traffic.PreviewMirror{Host: "web.pr-2.svc.cluster.local", Port: 80, Percentage: 20, Match: []traffic.RequestMatch{{Method: method("GET")}}}
	preview := func(owner string, want *traffic.PreviewMirror) {
		t.Helper()
		if err := r.ApplyPreview(t.Context(), ns, "web", "primary", owner, want); err != nil {
			t.Fatalf("ApplyPreview(%s): %v", owner, err)
		}
	}
	want := func(what string, routesWant, mirrorsWant []string) string {
		t.Helper()
		vs := get(t, c, ns, "VirtualService", "web")
		got := routes(vs)
		for i := range got { // mirroring routes are named by a hash: keep the part before it
			if name, _, ok := strings.Cut(got[i], ": "); ok && strings.HasPrefix(name, "primary-mirror-") {
				got[i] = "primary-mirror" + got[i][len(name):]
			}
		}
		gotMirrors := mirrors(vs)
		for i := range gotMirrors {
			gotMirrors[i] = gotMirrors[i][strings.Index(gotMirrors[i], ": ")+2:]
		}
		if diff := cmp.Diff(routesWant, got); diff != "" {
			t.Errorf("%s: routes (-want +got):\n%s", what, diff)
		}
		if diff := cmp.Diff(mirrorsWant, gotMirrors); diff != "" {
			t.Errorf("%s: mirrors (-want +got):\n%s", what, diff)
		}
		return vs.GetResourceVersion()
	}

	apply(t, r, m, traffic.Desired{Split: traffic.CanaryAt(20), HeaderRoutes: []traffic.HeaderRoute{header("beta", "always")}})
	preview("preview:pr-1/web", pr1)
	preview("preview:pr-2/web", pr2)
	want("a canary at 20% and two previews",
		[]string{"beta: web-canary=100", "primary-mirror: web-stable=80 web-canary=20", "primary-mirror: web-stable=80 web-canary=20", "primary: web-stable=80 web-canary=20", "user-fallback: legacy=<nil>"},
		[]string{"web.pr-1.svc.cluster.local%10 web.pr-2.svc.cluster.local%20", "web.pr-1.svc.cluster.local%10"})

	// The canary moves: the copies' routes move with it, in the same write.
	apply(t, r, m, traffic.Desired{Split: traffic.CanaryAt(50), HeaderRoutes: []traffic.HeaderRoute{header("beta", "always")}})
	rv := want("the canary at 50%",
		[]string{"beta: web-canary=100", "primary-mirror: web-stable=50 web-canary=50", "primary-mirror: web-stable=50 web-canary=50", "primary: web-stable=50 web-canary=50", "user-fallback: legacy=<nil>"},
		[]string{"web.pr-1.svc.cluster.local%10 web.pr-2.svc.cluster.local%20", "web.pr-1.svc.cluster.local%10"})

	// Asked again for what is there, no owner writes.
	apply(t, r, m, traffic.Desired{Split: traffic.CanaryAt(50), HeaderRoutes: []traffic.HeaderRoute{header("beta", "always")}})
	preview("preview:pr-1/web", pr1)
	preview("preview:pr-2/web", pr2)
	if again := get(t, c, ns, "VirtualService", "web").GetResourceVersion(); again != rv {
		t.Errorf("the VirtualService did not settle: resourceVersion %s, then %s", rv, again)
	}

	// The canary aborted: its routes go, the previews' stay, on stable.
	// (A route put whole carries no weight of 0: the typed object omits it,
	// and Istio reads it as 0.)
	apply(t, r, m, traffic.AtRest())
	want("the canary aborted",
		[]string{"primary-mirror: web-stable=100 web-canary=<nil>", "primary-mirror: web-stable=100 web-canary=<nil>", "primary: web-stable=100 web-canary=0", "user-fallback: legacy=<nil>"},
		[]string{"web.pr-1.svc.cluster.local%10 web.pr-2.svc.cluster.local%20", "web.pr-1.svc.cluster.local%10"})

	// One preview goes: the other keeps its copies.
	preview("preview:pr-1/web", nil)
	want("pr-1 gone",
		[]string{"primary-mirror: web-stable=100 web-canary=<nil>", "primary: web-stable=100 web-canary=0", "user-fallback: legacy=<nil>"},
		[]string{"web.pr-2.svc.cluster.local%20"})

	// The last goes: nothing of the previews is left, the user's route as it was.
	preview("preview:pr-2/web", nil)
	want("all gone", []string{"primary: web-stable=100 web-canary=0", "user-fallback: legacy=<nil>"}, nil)
	if a := get(t, c, ns, "VirtualService", "web").GetAnnotations(); a["tugboat.dev/preview-mirrors"] != "" || a["tugboat.dev/mirroring-routes"] != "" {
		t.Errorf("record left: %v", a)
	}
}

// A preview of a route that is not there is a misfit, and nothing is
// written; its removal, with the route gone since, takes its routes and
// record away.
func TestPreviewOfAMissingRoute(t *testing.T) {
	c, ns := kubeClient(t)
	create(t, c, ns, `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api}
spec:
  hosts: [api]
  http:
  - name: orders
    route:
    - {destination: {host: orders}}
`)
	r := &istio.Router{Client: c}
	pm := &traffic.PreviewMirror{Host: "orders.pr-7.svc.cluster.local", Percentage: 5, Match: []traffic.RequestMatch{{Method: &traffic.ValueMatch{Value: "GET"}}}}
	before := get(t, c, ns, "VirtualService", "api").GetResourceVersion()
	if err := r.ApplyPreview(t.Context(), ns, "api", "payments", "preview:pr-7/orders", pm); !errors.Is(err, traffic.ErrMisconfigured) || !strings.Contains(err.Error(), `route "payments"`) {
		t.Errorf("a missing route: %v", err)
	}
	if rv := get(t, c, ns, "VirtualService", "api").GetResourceVersion(); rv != before {
		t.Errorf("written anyway: resourceVersion %s, then %s", before, rv)
	}
	if err := r.ApplyPreview(t.Context(), ns, "api", "orders", "preview:pr-7/orders", pm); err != nil {
		t.Fatal(err)
	}
	edit(t, c, ns, "VirtualService", "api", func(spec map[string]any) { withoutItem(spec, "http", "orders") })
	if err := r.ApplyPreview(t.Context(), ns, "api", "orders", "preview:pr-7/orders", nil); err != nil {
		t.Errorf("removal with the route gone: %v", err)
	}
	vs := get(t, c, ns, "VirtualService", "api")
	if a := vs.GetAnnotations()["tugboat.dev/preview-mirrors"]; a != "" || len(routes(vs)) != 0 {
		t.Errorf("after removal: record %q, routes %v", a, routes(vs))
	}
}

// One preview's broken route stops neither the Rollout nor another preview;
// with the previews' record unreadable, an abort still takes every copy
// away; production's own mirrors go on in the mirroring routes; and a
// route of the mirroring route's name that is someone else's is refused.
func TestPreviewMisfitsStayWithTheirOwner(t *testing.T) {
	c, ns := kubeClient(t)
	create(t, c, ns, `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: shop}
spec:
  hosts: [shop]
  http:
  - name: orders
    route:
    - {destination: {host: orders}}
  - name: primary
    mirrors:
    - {destination: {host: analytics}, percentage: {value: 5}}
    route:
    - {destination: {host: shop-stable}, weight: 100}
    - {destination: {host: shop-canary}, weight: 0}
`)
	r := &istio.Router{Client: c}
	m := traffic.Mesh{Namespace: ns, Owner: "shop", VirtualService: "shop", Routes: []string{"primary"}, StableService: "shop-stable", CanaryService: "shop-canary"}
	gets := []traffic.RequestMatch{{Method: &traffic.ValueMatch{Value: "GET"}}}
	if err := r.ApplyPreview(t.Context(), ns, "shop", "orders", "preview:pr-2/orders", &traffic.PreviewMirror{Host: "orders.pr-2", Percentage: 5, Match: gets}); err != nil {
		t.Fatal(err)
	}
	if err := r.ApplyPreview(t.Context(), ns, "shop", "primary", "preview:pr-1/shop", &traffic.PreviewMirror{Host: "shop.pr-1", Percentage: 10, Match: gets}); err != nil {
		t.Fatal(err)
	}
	edit(t, c, ns, "VirtualService", "shop", func(spec map[string]any) { withoutItem(spec, "http", "orders") })

	// The Rollout steps on; pr-2's copies stop with its route, pr-1's go on
	// at the new weights, beside production's own mirror.
	apply(t, r, m, traffic.Desired{Split: traffic.CanaryAt(10)})
	vs := get(t, c, ns, "VirtualService", "shop")
	if got := mirrors(vs); !cmp.Equal(got, []string{mirrors(vs)[0][:strings.Index(mirrors(vs)[0], ": ")] + ": analytics%5 shop.pr-1%10", "primary: analytics%5"}) {
		t.Errorf("mirrors after the Rollout's step: %v", got)
	}
	if got := routes(vs); len(got) != 2 || !strings.HasSuffix(got[0], "shop-stable=90 shop-canary=10") {
		t.Errorf("routes after the Rollout's step: %v", got)
	}
	// pr-1 goes, whatever pr-2's route is doing.
	if err := r.ApplyPreview(t.Context(), ns, "shop", "primary", "preview:pr-1/shop", nil); err != nil {
		t.Errorf("pr-1's removal: %v", err)
	}
	if err := r.ApplyPreview(t.Context(), ns, "shop", "primary", "preview:pr-1/shop", &traffic.PreviewMirror{Host: "shop.pr-1", Percentage: 10, Match: gets}); err != nil {
		t.Errorf("pr-1 again: %v", err)
	}

	// The record of wants broken by hand: an abort still takes every copy
	// away from the canary's weights.
	apply(t, r, m, traffic.Desired{Split: traffic.CanaryAt(50)})
	u := get(t, c, ns, "VirtualService", "shop")
	a := u.GetAnnotations()
	a["tugboat.dev/preview-mirrors"] = "{oops"
	u.SetAnnotations(a)
	if err := c.Update(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	apply(t, r, m, traffic.AtRest())
	if got := routes(get(t, c, ns, "VirtualService", "shop")); !cmp.Equal(got, []string{"primary: shop-stable=100 shop-canary=0"}) {
		t.Errorf("after an abort with the record unreadable: %v", got)
	}
	if err := r.ApplyPreview(t.Context(), ns, "shop", "primary", "preview:pr-1/shop", &traffic.PreviewMirror{Host: "shop.pr-1", Percentage: 10, Match: gets}); !errors.Is(err, istio.ErrRecordUnreadable) {
		t.Errorf("a preview's write with the record unreadable: %v", err)
	}
	// Taking a mirror away never waits for the record to be repaired: every
	// mirroring route goes, and the record with them.
	u = get(t, c, ns, "VirtualService", "shop")
	a = u.GetAnnotations()
	delete(a, "tugboat.dev/preview-mirrors")
	u.SetAnnotations(a)
	if err := c.Update(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	if err := r.ApplyPreview(t.Context(), ns, "shop", "primary", "preview:pr-1/shop", &traffic.PreviewMirror{Host: "shop.pr-1", Percentage: 10, Match: gets}); err != nil {
		t.Fatal(err)
	}
	u = get(t, c, ns, "VirtualService", "shop")
	a = u.GetAnnotations()
	a["tugboat.dev/preview-mirrors"] = "{oops"
	u.SetAnnotations(a)
	if err := c.Update(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	if err := r.ApplyPreview(t.Context(), ns, "shop", "primary", "preview:pr-1/shop", nil); err != nil {
		t.Errorf("a removal with the record unreadable: %v", err)
	}
	u = get(t, c, ns, "VirtualService", "shop")
	if got := mirrors(u); !cmp.Equal(got, []string{"primary: analytics%5"}) || u.GetAnnotations()["tugboat.dev/preview-mirrors"] != "" {
		t.Errorf("after a removal with the record unreadable: mirrors %v, record %q", got, u.GetAnnotations()["tugboat.dev/preview-mirrors"])
	}

	// A user's route with the mirroring route's name is not taken over.
	a = get(t, c, ns, "VirtualService", "shop").GetAnnotations()
	delete(a, "tugboat.dev/preview-mirrors")
	u = get(t, c, ns, "VirtualService", "shop")
	u.SetAnnotations(a)
	if err := c.Update(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	name := traffic.MirroringRoutes("primary", []traffic.PreviewMirror{{Match: gets}})[0].Name
	edit(t, c, ns, "VirtualService", "shop", func(spec map[string]any) {
		spec["http"] = append([]any{map[string]any{"name": name, "route": []any{map[string]any{"destination": map[string]any{"host": "mine"}}}}}, spec["http"].([]any)...)
	})
	if err := r.ApplyPreview(t.Context(), ns, "shop", "primary", "preview:pr-1/shop", &traffic.PreviewMirror{Host: "shop.pr-1", Percentage: 10, Match: gets}); !errors.Is(err, istio.ErrRouteTaken) {
		t.Errorf("a user's route of the mirroring route's name: %v", err)
	}
	if got := routes(get(t, c, ns, "VirtualService", "shop")); len(got) != 2 || !strings.HasPrefix(got[0], name+": mine") {
		t.Errorf("the user's route: %v", got)
	}
}
