package istio_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tugboatdev/tugboat/traffic"
	"github.com/tugboatdev/tugboat/traffic/istio"
)

// create makes the manifest's object in ns.
func create(t *testing.T, c client.Client, ns, manifest string) {
	t.Helper()
	u := object(manifest)
	u.SetNamespace(ns)
	if err := c.Create(t.Context(), u); err != nil {
		t.Fatalf("create %s %s: %v", u.GetKind(), u.GetName(), err)
	}
}

// get reads an Istio object from the API server, with every field it keeps.
func get(t *testing.T, c client.Client, ns, kind, name string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("networking.istio.io/v1")
	u.SetKind(kind)
	if err := c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, u); err != nil {
		t.Fatalf("get %s %s/%s: %v", kind, ns, name, err)
	}
	return u
}

// edit changes an Istio object as a user would.
func edit(t *testing.T, c client.Client, ns, kind, name string, change func(spec map[string]any)) {
	t.Helper()
	u := get(t, c, ns, kind, name)
	change(u.Object["spec"].(map[string]any))
	if err := c.Update(t.Context(), u); err != nil {
		t.Fatalf("update %s %s/%s: %v", kind, ns, name, err)
	}
}

// withoutItem drops the item of a list that has the name.
func withoutItem(spec map[string]any, list, name string) {
	spec[list] = slices.DeleteFunc(spec[list].([]any), func(item any) bool { return item.(map[string]any)["name"] == name })
}

// routes sums up a VirtualService's HTTP routes as "name: destination=weight
// ...", a destination being its subset or else its host.
func routes(vs *unstructured.Unstructured) []string {
	var out []string
	http, _, _ := unstructured.NestedSlice(vs.Object, "spec", "http")
	for _, h := range http {
		h := h.(map[string]any)
		var dests []string
		for _, d := range h["route"].([]any) {
			d := d.(map[string]any)
			dst := d["destination"].(map[string]any)
			to, _ := dst["subset"].(string)
			if to == "" {
				to = dst["host"].(string)
			}
			dests = append(dests, fmt.Sprintf("%s=%v", to, d["weight"]))
		}
		out = append(out, fmt.Sprintf("%s: %s", h["name"], strings.Join(dests, " ")))
	}
	return out
}

// subsets sums up a DestinationRule's subsets as "name: labels".
func subsets(dr *unstructured.Unstructured) []string {
	var out []string
	list, _, _ := unstructured.NestedSlice(dr.Object, "spec", "subsets")
	for _, s := range list {
		s := s.(map[string]any)
		out = append(out, fmt.Sprintf("%s: %v", s["name"], s["labels"]))
	}
	return out
}

func header(name, value string) traffic.HeaderRoute {
	return traffic.HeaderRoute{Name: name, Match: []traffic.HeaderMatch{{Header: "x-canary", Kind: traffic.Exact, Value: value}}}
}

func apply(t *testing.T, r *istio.Router, m traffic.Mesh, want traffic.Desired) {
	t.Helper()
	if err := r.Apply(t.Context(), m, want); err != nil {
		t.Fatalf("Apply(%s, %s): %v", m.Owner, want.Split, err)
	}
}

// TestApplyKeepsWhatItDoesNotOwn: fields the compiled Istio types do not know,
// and weights of 0 the user wrote, are still there after Tugboat's writes.
func TestApplyKeepsWhatItDoesNotOwn(t *testing.T) {
	c, ns := kubeClient(t)
	create(t, c, ns, `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: podinfo}
spec:
  hosts: [podinfo]
  http:
  - name: internal-debug
    futureField: user
    match: [{uri: {prefix: /debug}}]
    route:
    - {destination: {host: debug}, weight: 0}
    - {destination: {host: debug-v2}, weight: 100}
  - name: primary
    futureField: user
    route:
    - {destination: {host: podinfo, subset: stable}, weight: 100, futureField: user}
    - {destination: {host: podinfo, subset: canary}, weight: 0}
`)
	create(t, c, ns, `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: podinfo}
spec:
  host: podinfo
  subsets:
  - {name: stable, futureField: user, labels: {app: podinfo-old}}
  - {name: canary, labels: {app: podinfo}}
`)
	m := traffic.Mesh{Namespace: ns, Owner: "podinfo", VirtualService: "podinfo", Routes: []string{"primary"},
		DestinationRule: "podinfo", StableSubset: "stable", CanarySubset: "canary",
		StableLabels: map[string]string{"app": "podinfo-primary"}, CanaryLabels: map[string]string{"app": "podinfo"}}
	r := &istio.Router{Client: c}
	debug := `
  - name: internal-debug
    futureField: user
    match: [{uri: {prefix: /debug}}]
    route:
    - {destination: {host: debug}, weight: 0}
    - {destination: {host: debug-v2}, weight: 100}`

	apply(t, r, m, traffic.Desired{Split: traffic.CanaryAt(10), HeaderRoutes: []traffic.HeaderRoute{header("beta", "true")}})
	wantSpec := object(`
hosts: [podinfo]
http:` + debug + `
  - name: beta
    match: [{headers: {x-canary: {exact: "true"}}}]
    route: [{destination: {host: podinfo, subset: canary}, weight: 100}]
  - name: primary
    futureField: user
    route:
    - {destination: {host: podinfo, subset: stable}, weight: 90, futureField: user}
    - {destination: {host: podinfo, subset: canary}, weight: 10}
`).Object
	if diff := cmp.Diff(wantSpec, plain(get(t, c, ns, "VirtualService", "podinfo").Object["spec"])); diff != "" {
		t.Errorf("virtualservice spec at 10%% (-want +got):\n%s", diff)
	}
	wantDR := object(`
host: podinfo
subsets:
- {name: stable, futureField: user, labels: {app: podinfo-primary}}
- {name: canary, labels: {app: podinfo}}
`).Object
	if diff := cmp.Diff(wantDR, plain(get(t, c, ns, "DestinationRule", "podinfo").Object["spec"])); diff != "" {
		t.Errorf("destinationrule spec (-want +got):\n%s", diff)
	}

	apply(t, r, m, traffic.AtRest())
	wantSpec = object(`
hosts: [podinfo]
http:` + debug + `
  - name: primary
    futureField: user
    route:
    - {destination: {host: podinfo, subset: stable}, weight: 100, futureField: user}
    - {destination: {host: podinfo, subset: canary}, weight: 0}
`).Object
	vs := get(t, c, ns, "VirtualService", "podinfo")
	if diff := cmp.Diff(wantSpec, plain(vs.Object["spec"])); diff != "" {
		t.Errorf("virtualservice spec at rest (-want +got):\n%s", diff)
	}
	if a := vs.GetAnnotations(); len(a) != 0 {
		t.Errorf("annotations at rest = %v, want none", a)
	}
}

// plain is v as JSON would have it, so that numbers compare alike.
func plain(v any) any { return object(toJSON(v)).Object }

// TestRolloutsSharingAVirtualService: two Rollouts, each with a route of a
// gateway's VirtualService and a header route, leave each other's header
// route alone, so their writes settle.
func TestRolloutsSharingAVirtualService(t *testing.T) {
	c, ns := kubeClient(t)
	create(t, c, ns, `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: shop}
spec:
  hosts: [shop.example.com]
  gateways: [shop]
  http:
  - name: reviews
    match: [{uri: {prefix: /reviews}}]
    route: [{destination: {host: reviews-stable}, weight: 100}, {destination: {host: reviews-canary}, weight: 0}]
  - name: ratings
    match: [{uri: {prefix: /ratings}}]
    route: [{destination: {host: ratings-stable}, weight: 100}, {destination: {host: ratings-canary}, weight: 0}]
`)
	mesh := func(name string) traffic.Mesh {
		return traffic.Mesh{Namespace: ns, Owner: name, VirtualService: "shop", Routes: []string{name},
			StableService: name + "-stable", CanaryService: name + "-canary"}
	}
	reviews, ratings := mesh("reviews"), mesh("ratings")
	r := &istio.Router{Client: c}
	wantReviews := traffic.Desired{Split: traffic.CanaryAt(20), HeaderRoutes: []traffic.HeaderRoute{header("reviews-beta", "reviews")}}
	wantRatings := traffic.Desired{Split: traffic.CanaryAt(30), HeaderRoutes: []traffic.HeaderRoute{header("ratings-beta", "ratings")}}

	var versions []string
	for range 4 {
		apply(t, r, reviews, wantReviews)
		apply(t, r, ratings, wantRatings)
		versions = append(versions, get(t, c, ns, "VirtualService", "shop").GetResourceVersion())
	}
	if len(slices.Compact(slices.Clone(versions))) != 1 {
		t.Errorf("resourceVersion after each round = %v, want it settled after the first", versions)
	}
	want := []string{
		"reviews-beta: reviews-canary=100",
		"reviews: reviews-stable=80 reviews-canary=20",
		"ratings-beta: ratings-canary=100",
		"ratings: ratings-stable=70 ratings-canary=30",
	}
	if diff := cmp.Diff(want, routes(get(t, c, ns, "VirtualService", "shop"))); diff != "" {
		t.Errorf("routes of both rollouts (-want +got):\n%s", diff)
	}

	apply(t, r, reviews, traffic.AtRest())
	settled := get(t, c, ns, "VirtualService", "shop").GetResourceVersion()
	apply(t, r, ratings, wantRatings)
	vs := get(t, c, ns, "VirtualService", "shop")
	if vs.GetResourceVersion() != settled {
		t.Errorf("ratings wrote again after reviews went at rest")
	}
	want = []string{
		"reviews: reviews-stable=100 reviews-canary=0",
		"ratings-beta: ratings-canary=100",
		"ratings: ratings-stable=70 ratings-canary=30",
	}
	if diff := cmp.Diff(want, routes(vs)); diff != "" {
		t.Errorf("routes after reviews went at rest (-want +got):\n%s", diff)
	}
}

// TestAbortDoesWhatItCan: sending traffic back to stable is done as far as
// the mesh objects allow, and what could not be done is named; any other
// change is done whole or not at all.
func TestAbortDoesWhatItCan(t *testing.T) {
	inProgress := traffic.Desired{Split: traffic.CanaryAt(40), HeaderRoutes: []traffic.HeaderRoute{header("beta", "true")}}
	tests := []struct {
		name string
		// breakMesh is the user's change, after the rollout has started.
		breakMesh   func(t *testing.T, c client.Client, ns string)
		want        traffic.Desired
		wantErr     error
		wantErrText string
		wantRoutes  []string
		wantSubsets []string
	}{{
		name: "a managed route gone",
		breakMesh: func(t *testing.T, c client.Client, ns string) {
			edit(t, c, ns, "VirtualService", "podinfo", func(spec map[string]any) { withoutItem(spec, "http", "secondary") })
		},
		want:        traffic.AtRest(),
		wantErr:     istio.ErrRouteNotFound,
		wantErrText: `route "secondary"`,
		wantRoutes:  []string{"primary: stable=100 canary=0"},
		wantSubsets: []string{"stable: map[app:podinfo-primary]", "canary: map[app:podinfo]"},
	}, {
		name: "the DestinationRule gone",
		breakMesh: func(t *testing.T, c client.Client, ns string) {
			if err := c.Delete(t.Context(), &istiov1.DestinationRule{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "podinfo"}}); err != nil {
				t.Fatal(err)
			}
		},
		want:        traffic.AtRest(),
		wantErr:     traffic.ErrMisconfigured,
		wantErrText: "destinationrule %s/podinfo",
		wantRoutes:  []string{"primary: stable=100 canary=0", "secondary: stable=100 canary=0"},
	}, {
		name: "the canary subset gone, and the stable one selecting the wrong pods",
		breakMesh: func(t *testing.T, c client.Client, ns string) {
			edit(t, c, ns, "DestinationRule", "podinfo", func(spec map[string]any) {
				withoutItem(spec, "subsets", "canary")
				spec["subsets"].([]any)[0].(map[string]any)["labels"] = map[string]any{"app": "podinfo-old"}
			})
		},
		want:        traffic.AtRest(),
		wantErr:     istio.ErrSubsetNotFound,
		wantErrText: `subset "canary"`,
		wantRoutes:  []string{"primary: stable=100 canary=0", "secondary: stable=100 canary=0"},
		wantSubsets: []string{"stable: map[app:podinfo-primary]"},
	}, {
		name: "a managed route gone while not at rest: nothing is written",
		breakMesh: func(t *testing.T, c client.Client, ns string) {
			edit(t, c, ns, "VirtualService", "podinfo", func(spec map[string]any) { withoutItem(spec, "http", "secondary") })
		},
		want:        traffic.Desired{Split: traffic.CanaryAt(60), HeaderRoutes: inProgress.HeaderRoutes},
		wantErr:     istio.ErrRouteNotFound,
		wantErrText: `route "secondary"`,
		wantRoutes:  []string{"beta: canary=100", "primary: stable=60 canary=40"},
		wantSubsets: []string{"stable: map[app:podinfo-primary]", "canary: map[app:podinfo]"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, ns := kubeClient(t)
			create(t, c, ns, `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: podinfo}
spec:
  hosts: [podinfo]
  http:
  - name: primary
    match: [{uri: {prefix: /api}}]
    route: [{destination: {host: podinfo, subset: stable}, weight: 100}, {destination: {host: podinfo, subset: canary}, weight: 0}]
  - name: secondary
    route: [{destination: {host: podinfo, subset: stable}, weight: 100}, {destination: {host: podinfo, subset: canary}, weight: 0}]
`)
			create(t, c, ns, `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: podinfo}
spec:
  host: podinfo
  subsets: [{name: stable, labels: {app: podinfo}}, {name: canary, labels: {app: podinfo}}]
`)
			m := traffic.Mesh{Namespace: ns, Owner: "podinfo", VirtualService: "podinfo", Routes: []string{"primary", "secondary"},
				DestinationRule: "podinfo", StableSubset: "stable", CanarySubset: "canary",
				StableLabels: map[string]string{"app": "podinfo-primary"}, CanaryLabels: map[string]string{"app": "podinfo"}}
			r := &istio.Router{Client: c}
			apply(t, r, m, inProgress)
			tt.breakMesh(t, c, ns)

			err := r.Apply(t.Context(), m, tt.want)
			if !errors.Is(err, tt.wantErr) || !errors.Is(err, traffic.ErrMisconfigured) {
				t.Fatalf("Apply() error = %v, want %v", err, tt.wantErr)
			}
			if want := strings.ReplaceAll(tt.wantErrText, "%s", ns); !strings.Contains(err.Error(), want) {
				t.Errorf("Apply() error = %q, want it to name %s", err, want)
			}
			if diff := cmp.Diff(tt.wantRoutes, routes(get(t, c, ns, "VirtualService", "podinfo"))); diff != "" {
				t.Errorf("routes (-want +got):\n%s", diff)
			}
			if tt.wantSubsets != nil {
				if diff := cmp.Diff(tt.wantSubsets, subsets(get(t, c, ns, "DestinationRule", "podinfo"))); diff != "" {
					t.Errorf("subsets (-want +got):\n%s", diff)
				}
			}
		})
	}
}

// TestApplyRefusesAStaleRead: a patch computed from an outdated read (a
// cache that lags) does not apply to the object as it now is.
func TestApplyRefusesAStaleRead(t *testing.T) {
	c, ns := kubeClient(t)
	create(t, c, ns, `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: podinfo}
spec:
  hosts: [podinfo]
  http:
  - name: primary
    route: [{destination: {host: podinfo-stable}, weight: 100}, {destination: {host: podinfo-canary}, weight: 0}]
`)
	var stale istiov1.VirtualService
	if err := c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "podinfo"}, &stale); err != nil {
		t.Fatal(err)
	}
	edit(t, c, ns, "VirtualService", "podinfo", func(spec map[string]any) {
		spec["http"] = append([]any{map[string]any{"name": "maintenance",
			"route": []any{map[string]any{"destination": map[string]any{"host": "sorry"}}}}}, spec["http"].([]any)...)
	})
	r := &istio.Router{Client: staleReads{Client: c, vs: &stale}}
	m := traffic.Mesh{Namespace: ns, Owner: "podinfo", VirtualService: "podinfo", Routes: []string{"primary"},
		StableService: "podinfo-stable", CanaryService: "podinfo-canary"}
	err := r.Apply(t.Context(), m, traffic.Desired{Split: traffic.CanaryAt(10)})
	if !apierrors.IsConflict(err) {
		t.Fatalf("Apply() on a stale read: error = %v, want a conflict", err)
	}
	want := []string{"maintenance: sorry=<nil>", "primary: podinfo-stable=100 podinfo-canary=0"}
	if diff := cmp.Diff(want, routes(get(t, c, ns, "VirtualService", "podinfo"))); diff != "" {
		t.Errorf("routes (-want +got):\n%s", diff)
	}
}

// staleReads hands out vs, as read before a change, instead of reading it.
type staleReads struct {
	client.Client
	vs *istiov1.VirtualService
}

func (s staleReads) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if vs, ok := obj.(*istiov1.VirtualService); ok && key == client.ObjectKeyFromObject(s.vs) {
		s.vs.DeepCopyInto(vs)
		return nil
	}
	return s.Client.Get(ctx, key, obj, opts...)
}

// TestApplyCleansUpAfterThePreviousVersion: routes recorded in the previous
// version's annotation, with no owner, are still removed.
func TestApplyCleansUpAfterThePreviousVersion(t *testing.T) {
	c, ns := kubeClient(t)
	create(t, c, ns, `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: podinfo
  annotations: {tugboat.dev/header-routes: beta, team: checkout}
spec:
  hosts: [podinfo]
  http:
  - name: beta
    match: [{headers: {x-canary: {exact: "true"}}}]
    route: [{destination: {host: podinfo-canary}, weight: 100}]
  - name: primary
    route: [{destination: {host: podinfo-stable}, weight: 70}, {destination: {host: podinfo-canary}, weight: 30}]
`)
	m := traffic.Mesh{Namespace: ns, Owner: "podinfo", VirtualService: "podinfo", Routes: []string{"primary"},
		StableService: "podinfo-stable", CanaryService: "podinfo-canary"}
	apply(t, &istio.Router{Client: c}, m, traffic.AtRest())
	vs := get(t, c, ns, "VirtualService", "podinfo")
	if diff := cmp.Diff([]string{"primary: podinfo-stable=100 podinfo-canary=0"}, routes(vs)); diff != "" {
		t.Errorf("routes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"team": "checkout"}, vs.GetAnnotations()); diff != "" {
		t.Errorf("annotations (-want +got):\n%s", diff)
	}
}
