package istio

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	networkingv1 "istio.io/api/networking/v1"
	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tugboatdev/tugboat/traffic"
)

// asJSON is v as encoding/json would send it, decoded, for diffs.
func asJSON(t *testing.T, v any) any {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// read is vs as the cache would hand it over: at a resourceVersion, with
// annotations.
func read(vs *istiov1.VirtualService, annotations map[string]string) *istiov1.VirtualService {
	vs.ResourceVersion = "7"
	vs.Annotations = annotations
	return vs
}

func TestRoutesPatch(t *testing.T) {
	reviews := traffic.Mesh{Namespace: "prod", Owner: "reviews", VirtualService: "podinfo", Routes: []string{"primary"}}
	lock := op{Op: "test", Path: "/metadata/resourceVersion", Value: "7"}
	tests := []struct {
		name      string
		in        *istiov1.VirtualService
		m         *traffic.Mesh // default: reviews
		want      traffic.Desired
		wantPatch jsonPatch
		wantErr   error
	}{{
		name: "a weight change writes the managed route's weights, 0 explicitly",
		in:   read(vs(userRoute(), primary(90, 10)), nil),
		want: traffic.AtRest(),
		wantPatch: jsonPatch{lock,
			{Op: "test", Path: "/spec/http/1/name", Value: "primary"},
			{Op: "add", Path: "/spec/http/1/route/0/weight", Value: 100},
			{Op: "add", Path: "/spec/http/1/route/1/weight", Value: 0},
		},
	}, {
		name: "nothing to change writes nothing",
		in:   read(vs(userRoute(), primary(90, 10)), map[string]string{"team": "checkout"}),
		want: traffic.Desired{Split: traffic.CanaryAt(10)},
	}, {
		name: "a header route goes in ahead of the managed route, and into a new record",
		in:   read(vs(userRoute(), primary(100, 0)), nil),
		want: traffic.Desired{Split: traffic.CanaryAt(0), HeaderRoutes: []traffic.HeaderRoute{beta}},
		wantPatch: jsonPatch{lock,
			{Op: "add", Path: "/spec/http/1", Value: betaRoute()},
			{Op: "add", Path: "/metadata/annotations", Value: map[string]string{annotationAddedRoutes: `{"reviews":["beta"]}`}},
		},
	}, {
		name: "a route already in place is left as it is",
		in:   read(vs(userRoute(), betaRoute(), primary(100, 0)), map[string]string{annotationAddedRoutes: `{"reviews":["beta"]}`}),
		want: traffic.Desired{Split: traffic.CanaryAt(20), HeaderRoutes: []traffic.HeaderRoute{beta}},
		wantPatch: jsonPatch{lock,
			{Op: "test", Path: "/spec/http/2/name", Value: "primary"},
			{Op: "add", Path: "/spec/http/2/route/0/weight", Value: 80},
			{Op: "add", Path: "/spec/http/2/route/1/weight", Value: 20},
		},
	}, {
		name: "added routes that change are taken out from the back and put in from the front",
		in: read(vs(betaRoute(), userRoute(), shadowGetsRoute(80, 20), primary(80, 20)),
			map[string]string{annotationAddedRoutes: `{"reviews":["beta","shadow-gets"]}`, "team": "checkout"}),
		want: traffic.Desired{Split: traffic.CanaryAt(50), HeaderRoutes: []traffic.HeaderRoute{beta}, MirrorRoutes: []traffic.MirrorRoute{shadowGets}},
		wantPatch: jsonPatch{lock,
			{Op: "test", Path: "/spec/http/3/name", Value: "primary"},
			{Op: "add", Path: "/spec/http/3/route/0/weight", Value: 50},
			{Op: "add", Path: "/spec/http/3/route/1/weight", Value: 50},
			{Op: "test", Path: "/spec/http/2/name", Value: "shadow-gets"},
			{Op: "remove", Path: "/spec/http/2"},
			{Op: "test", Path: "/spec/http/0/name", Value: "beta"},
			{Op: "remove", Path: "/spec/http/0"},
			{Op: "add", Path: "/spec/http/1", Value: betaRoute()},
			{Op: "add", Path: "/spec/http/2", Value: shadowGetsRoute(50, 50)},
		},
	}, {
		name: "at rest, only this Rollout's routes and record entry go",
		in: read(vs(&networkingv1.HTTPRoute{Name: "gamma", Route: []*networkingv1.HTTPRouteDestination{dest("ratings-canary", "", 100)}},
			betaRoute(), primary(100, 0)),
			map[string]string{annotationAddedRoutes: `{"ratings":["gamma"],"reviews":["beta"]}`}),
		want: traffic.AtRest(),
		wantPatch: jsonPatch{lock,
			{Op: "test", Path: "/spec/http/1/name", Value: "beta"},
			{Op: "remove", Path: "/spec/http/1"},
			{Op: "add", Path: "/metadata/annotations/tugboat.dev~1added-routes", Value: `{"ratings":["gamma"]}`},
		},
	}, {
		name: "the old record's routes are removed and the record dropped",
		in:   read(vs(betaRoute(), primary(100, 0)), map[string]string{annotationHeaderRoutes: "beta"}),
		want: traffic.AtRest(),
		wantPatch: jsonPatch{lock,
			{Op: "test", Path: "/spec/http/0/name", Value: "beta"},
			{Op: "remove", Path: "/spec/http/0"},
			{Op: "remove", Path: "/metadata/annotations/tugboat.dev~1header-routes"},
		},
	}, {
		name: "at rest, a missing route does not stop the rest",
		in:   read(vs(betaRoute(), primary(60, 40)), map[string]string{annotationAddedRoutes: `{"reviews":["beta"]}`}),
		m:    &traffic.Mesh{Namespace: "prod", Owner: "reviews", VirtualService: "podinfo", Routes: []string{"primary", "gone"}},
		want: traffic.AtRest(),
		wantPatch: jsonPatch{lock,
			{Op: "test", Path: "/spec/http/1/name", Value: "primary"},
			{Op: "add", Path: "/spec/http/1/route/0/weight", Value: 100},
			{Op: "add", Path: "/spec/http/1/route/1/weight", Value: 0},
			{Op: "test", Path: "/spec/http/0/name", Value: "beta"},
			{Op: "remove", Path: "/spec/http/0"},
			{Op: "remove", Path: "/metadata/annotations/tugboat.dev~1added-routes"},
		},
		wantErr: ErrRouteNotFound,
	}, {
		name:    "otherwise a missing route writes nothing",
		in:      read(vs(betaRoute(), primary(60, 40)), map[string]string{annotationAddedRoutes: `{"reviews":["beta"]}`}),
		m:       &traffic.Mesh{Namespace: "prod", Owner: "reviews", VirtualService: "podinfo", Routes: []string{"primary", "gone"}},
		want:    traffic.Desired{Split: traffic.CanaryAt(50)},
		wantErr: ErrRouteNotFound,
	}, {
		name: "at rest, an unreadable record leaves the added routes and the record",
		in:   read(vs(betaRoute(), primary(60, 40)), map[string]string{annotationAddedRoutes: `beta`}),
		want: traffic.AtRest(),
		wantPatch: jsonPatch{lock,
			{Op: "test", Path: "/spec/http/1/name", Value: "primary"},
			{Op: "add", Path: "/spec/http/1/route/0/weight", Value: 100},
			{Op: "add", Path: "/spec/http/1/route/1/weight", Value: 0},
		},
		wantErr: ErrRecordUnreadable,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := reviews
			if tt.m != nil {
				m = *tt.m
			}
			in := tt.in.DeepCopy()
			got, err := routesPatch(in, m, hosts, tt.want)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("routesPatch() error = %v, want %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(asJSON(t, tt.wantPatch), asJSON(t, got)); diff != "" {
				t.Errorf("patch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(asJSON(t, tt.in), asJSON(t, in)); diff != "" {
				t.Errorf("routesPatch changed its input (-before +after):\n%s", diff)
			}
		})
	}
}

func TestSubsetsPatch(t *testing.T) {
	m := traffic.Mesh{Namespace: "prod", DestinationRule: "podinfo", StableSubset: "stable", CanarySubset: "canary",
		StableLabels: map[string]string{"app": "podinfo-primary"}, CanaryLabels: map[string]string{"app": "podinfo"}}
	dr := func(subsets ...*networkingv1.Subset) *istiov1.DestinationRule {
		return &istiov1.DestinationRule{
			ObjectMeta: metav1.ObjectMeta{Namespace: "prod", Name: "podinfo", ResourceVersion: "7"},
			Spec:       networkingv1.DestinationRule{Host: "podinfo", Subsets: subsets},
		}
	}
	subset := func(name, app string) *networkingv1.Subset {
		return &networkingv1.Subset{Name: name, Labels: map[string]string{"app": app},
			TrafficPolicy: &networkingv1.TrafficPolicy{ConnectionPool: &networkingv1.ConnectionPoolSettings{Tcp: &networkingv1.ConnectionPoolSettings_TCPSettings{MaxConnections: 5}}}}
	}
	tests := []struct {
		name      string
		in        *istiov1.DestinationRule
		wantPatch jsonPatch
		wantErr   error
	}{{
		name: "only the labels of a subset that selects the wrong pods are written",
		in:   dr(subset("other", "x"), subset("stable", "podinfo"), subset("canary", "podinfo")),
		wantPatch: jsonPatch{
			{Op: "test", Path: "/metadata/resourceVersion", Value: "7"},
			{Op: "test", Path: "/spec/subsets/1/name", Value: "stable"},
			{Op: "add", Path: "/spec/subsets/1/labels", Value: map[string]string{"app": "podinfo-primary"}},
		},
	}, {
		name: "subsets that select the right pods write nothing",
		in:   dr(subset("stable", "podinfo-primary"), subset("canary", "podinfo")),
	}, {
		name: "a missing subset is an error, and the other is still patched",
		in:   dr(subset("canary", "podinfo-primary")),
		wantPatch: jsonPatch{
			{Op: "test", Path: "/metadata/resourceVersion", Value: "7"},
			{Op: "test", Path: "/spec/subsets/0/name", Value: "canary"},
			{Op: "add", Path: "/spec/subsets/0/labels", Value: map[string]string{"app": "podinfo"}},
		},
		wantErr: ErrSubsetNotFound,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := subsetsPatch(tt.in, m)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("subsetsPatch() error = %v, want %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(asJSON(t, tt.wantPatch), asJSON(t, got)); diff != "" {
				t.Errorf("patch (-want +got):\n%s", diff)
			}
		})
	}
}
