package istio

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/durationpb"
	networkingv1 "istio.io/api/networking/v1"
	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tugboatdev/tugboat/traffic"
)

var hosts = Destinations{Namespace: "prod", StableHost: "podinfo-stable", CanaryHost: "podinfo-canary"}

func dest(host, subset string, weight int32) *networkingv1.HTTPRouteDestination {
	return &networkingv1.HTTPRouteDestination{
		Destination: &networkingv1.Destination{Host: host, Subset: subset, Port: &networkingv1.PortSelector{Number: 9898}},
		Weight:      weight,
	}
}

// userRoute is a route Tugboat does not manage; it must come out untouched.
func userRoute() *networkingv1.HTTPRoute {
	return &networkingv1.HTTPRoute{
		Name:    "internal-debug",
		Match:   []*networkingv1.HTTPMatchRequest{{Uri: &networkingv1.StringMatch{MatchType: &networkingv1.StringMatch_Prefix{Prefix: "/debug"}}}},
		Route:   []*networkingv1.HTTPRouteDestination{dest("debug", "", 0)},
		Retries: &networkingv1.HTTPRetry{Attempts: 3, RetryOn: "5xx"},
	}
}

func vs(routes ...*networkingv1.HTTPRoute) *istiov1.VirtualService {
	return &istiov1.VirtualService{
		ObjectMeta: metav1.ObjectMeta{Namespace: "prod", Name: "podinfo"},
		Spec:       networkingv1.VirtualService{Hosts: []string{"podinfo"}, Http: routes},
	}
}

func primary(stable, canary int32) *networkingv1.HTTPRoute {
	return &networkingv1.HTTPRoute{Name: "primary", Route: []*networkingv1.HTTPRouteDestination{
		dest("podinfo-stable", "", stable), dest("podinfo-canary", "", canary)}}
}

var beta = traffic.HeaderRoute{Name: "beta", Match: []traffic.HeaderMatch{{Header: "x-beta", Kind: traffic.Exact, Value: "true"}}}

func betaRoute() *networkingv1.HTTPRoute {
	return &networkingv1.HTTPRoute{
		Name: "beta",
		Match: []*networkingv1.HTTPMatchRequest{{Headers: map[string]*networkingv1.StringMatch{
			"x-beta": {MatchType: &networkingv1.StringMatch_Exact{Exact: "true"}}}}},
		Route: []*networkingv1.HTTPRouteDestination{dest("podinfo-canary", "", 100)},
	}
}

var shadowGets = traffic.MirrorRoute{Name: "shadow-gets", Percentage: 35, Match: []traffic.RequestMatch{
	{Method: &traffic.ValueMatch{Kind: traffic.Exact, Value: "GET"}, Path: &traffic.ValueMatch{Kind: traffic.Prefix, Value: "/api"}},
	{Headers: []traffic.HeaderMatch{{Header: "x-shadow", Kind: traffic.Regex, Value: "y.*"}}},
}}

// shadowGetsRoute answers as primary(stable, canary) does and mirrors to the canary.
func shadowGetsRoute(stable, canary int32) *networkingv1.HTTPRoute {
	return &networkingv1.HTTPRoute{
		Name: "shadow-gets",
		Match: []*networkingv1.HTTPMatchRequest{
			{Method: &networkingv1.StringMatch{MatchType: &networkingv1.StringMatch_Exact{Exact: "GET"}}, Uri: &networkingv1.StringMatch{MatchType: &networkingv1.StringMatch_Prefix{Prefix: "/api"}}},
			{Headers: map[string]*networkingv1.StringMatch{"x-shadow": {MatchType: &networkingv1.StringMatch_Regex{Regex: "y.*"}}}},
		},
		Route:            primary(stable, canary).Route,
		Mirror:           dest("podinfo-canary", "", 0).Destination,
		MirrorPercentage: &networkingv1.Percent{Value: 35},
	}
}

func TestRewrite(t *testing.T) {
	managed := Routes{Managed: []string{"primary"}, Owned: []string{"beta", "shadow-gets"}}
	tests := []struct {
		name        string
		in          *istiov1.VirtualService
		d           Destinations
		want        traffic.Desired
		wantSpec    *istiov1.VirtualService
		wantChanged bool
		wantErr     error
		routes      *Routes // default: managed
	}{{
		name:        "sets the weights of the managed route and leaves the user's route alone",
		in:          vs(userRoute(), primary(100, 0)),
		d:           hosts,
		want:        traffic.Desired{Split: traffic.CanaryAt(10)},
		wantSpec:    vs(userRoute(), primary(90, 10)),
		wantChanged: true,
	}, {
		name:     "nothing to change reports no change",
		in:       vs(userRoute(), primary(90, 10)),
		d:        hosts,
		want:     traffic.Desired{Split: traffic.CanaryAt(10)},
		wantSpec: vs(userRoute(), primary(90, 10)),
	}, {
		name: "qualified host names match the Rollout's namespace",
		in: vs(&networkingv1.HTTPRoute{Name: "primary", Route: []*networkingv1.HTTPRouteDestination{
			dest("podinfo-stable.prod.svc.cluster.local", "", 100), dest("podinfo-canary.prod", "", 0)}}),
		d:    hosts,
		want: traffic.Desired{Split: traffic.CanaryAt(30)},
		wantSpec: vs(&networkingv1.HTTPRoute{Name: "primary", Route: []*networkingv1.HTTPRouteDestination{
			dest("podinfo-stable.prod.svc.cluster.local", "", 70), dest("podinfo-canary.prod", "", 30)}}),
		wantChanged: true,
	}, {
		name: "subset-level split",
		in: vs(&networkingv1.HTTPRoute{Name: "primary", Route: []*networkingv1.HTTPRouteDestination{
			dest("podinfo", "stable", 100), dest("podinfo", "canary", 0)}}),
		d:    Destinations{Namespace: "prod", StableHost: "podinfo", CanaryHost: "podinfo", StableSubset: "stable", CanarySubset: "canary"},
		want: traffic.Desired{Split: traffic.CanaryAt(50)},
		wantSpec: vs(&networkingv1.HTTPRoute{Name: "primary", Route: []*networkingv1.HTTPRouteDestination{
			dest("podinfo", "stable", 50), dest("podinfo", "canary", 50)}}),
		wantChanged: true,
	}, {
		name:        "header route goes ahead of the managed route",
		in:          vs(userRoute(), primary(100, 0)),
		d:           hosts,
		want:        traffic.Desired{Split: traffic.CanaryAt(0), HeaderRoutes: []traffic.HeaderRoute{beta}},
		wantSpec:    vs(userRoute(), betaRoute(), primary(100, 0)),
		wantChanged: true,
	}, {
		name:     "header route already in place reports no change",
		in:       vs(userRoute(), betaRoute(), primary(100, 0)),
		d:        hosts,
		want:     traffic.Desired{Split: traffic.CanaryAt(0), HeaderRoutes: []traffic.HeaderRoute{beta}},
		wantSpec: vs(userRoute(), betaRoute(), primary(100, 0)),
	}, {
		name:        "at rest removes owned header routes and sends everything to stable",
		in:          vs(userRoute(), betaRoute(), primary(40, 60)),
		d:           hosts,
		want:        traffic.AtRest(),
		wantSpec:    vs(userRoute(), primary(100, 0)),
		wantChanged: true,
	}, {
		name: "a user's route of the header route's name is not taken over",
		in: vs(&networkingv1.HTTPRoute{Name: "beta", Route: []*networkingv1.HTTPRouteDestination{dest("legacy", "", 100)}},
			primary(100, 0)),
		d:       hosts,
		routes:  &Routes{Managed: []string{"primary"}},
		want:    traffic.Desired{Split: traffic.CanaryAt(0), HeaderRoutes: []traffic.HeaderRoute{beta}},
		wantErr: ErrRouteTaken,
	}, {
		name:        "a mirror route goes after the header routes, answering as the managed route does",
		in:          vs(userRoute(), primary(100, 0)),
		d:           hosts,
		want:        traffic.Desired{Split: traffic.CanaryAt(20), HeaderRoutes: []traffic.HeaderRoute{beta}, MirrorRoutes: []traffic.MirrorRoute{shadowGets}},
		wantSpec:    vs(userRoute(), betaRoute(), shadowGetsRoute(80, 20), primary(80, 20)),
		wantChanged: true,
	}, {
		name:        "a mirror route follows the managed route's weights",
		in:          vs(userRoute(), shadowGetsRoute(80, 20), primary(80, 20)),
		d:           hosts,
		want:        traffic.Desired{Split: traffic.CanaryAt(50), MirrorRoutes: []traffic.MirrorRoute{shadowGets}},
		wantSpec:    vs(userRoute(), shadowGetsRoute(50, 50), primary(50, 50)),
		wantChanged: true,
	}, {
		name:        "at rest removes owned mirror routes",
		in:          vs(userRoute(), betaRoute(), shadowGetsRoute(80, 20), primary(80, 20)),
		d:           hosts,
		want:        traffic.AtRest(),
		wantSpec:    vs(userRoute(), primary(100, 0)),
		wantChanged: true,
	}, {
		name: "a mirror route narrows the managed route's own match, and keeps its settings",
		in: vs(func() *networkingv1.HTTPRoute {
			r := primary(100, 0)
			r.Match = []*networkingv1.HTTPMatchRequest{{Uri: &networkingv1.StringMatch{MatchType: &networkingv1.StringMatch_Prefix{Prefix: "/api"}}}}
			r.Timeout = durationpb.New(3 * time.Second)
			return r
		}(), userRoute()),
		d: hosts,
		want: traffic.Desired{Split: traffic.CanaryAt(10), MirrorRoutes: []traffic.MirrorRoute{{Name: "shadow-gets", Percentage: 50,
			Match: []traffic.RequestMatch{{Method: &traffic.ValueMatch{Kind: traffic.Exact, Value: "GET"}}}}}},
		wantSpec: vs(&networkingv1.HTTPRoute{
			Name: "shadow-gets",
			Match: []*networkingv1.HTTPMatchRequest{{
				Uri:    &networkingv1.StringMatch{MatchType: &networkingv1.StringMatch_Prefix{Prefix: "/api"}},
				Method: &networkingv1.StringMatch{MatchType: &networkingv1.StringMatch_Exact{Exact: "GET"}},
			}},
			Route:            primary(90, 10).Route,
			Timeout:          durationpb.New(3 * time.Second),
			Mirror:           dest("podinfo-canary", "", 0).Destination,
			MirrorPercentage: &networkingv1.Percent{Value: 50},
		}, func() *networkingv1.HTTPRoute {
			r := primary(90, 10)
			r.Match = []*networkingv1.HTTPMatchRequest{{Uri: &networkingv1.StringMatch{MatchType: &networkingv1.StringMatch_Prefix{Prefix: "/api"}}}}
			r.Timeout = durationpb.New(3 * time.Second)
			return r
		}(), userRoute()),
		wantChanged: true,
	}, {
		name: "a mirror route whose match contradicts the managed route's is an error",
		in: vs(func() *networkingv1.HTTPRoute {
			r := primary(100, 0)
			r.Match = []*networkingv1.HTTPMatchRequest{{Uri: &networkingv1.StringMatch{MatchType: &networkingv1.StringMatch_Prefix{Prefix: "/web"}}}}
			return r
		}()),
		d:       hosts,
		want:    traffic.Desired{Split: traffic.CanaryAt(0), MirrorRoutes: []traffic.MirrorRoute{shadowGets}},
		wantErr: ErrMirrorMatchConflict,
	}, {
		name: "a user's route of the mirror route's name is not taken over",
		in: vs(&networkingv1.HTTPRoute{Name: "shadow-gets", Route: []*networkingv1.HTTPRouteDestination{dest("legacy", "", 100)}},
			primary(100, 0)),
		d:       hosts,
		routes:  &Routes{Managed: []string{"primary"}},
		want:    traffic.Desired{Split: traffic.CanaryAt(0), MirrorRoutes: []traffic.MirrorRoute{shadowGets}},
		wantErr: ErrRouteTaken,
	}, {
		name:    "a missing managed route is an error",
		in:      vs(userRoute(), primary(90, 10)),
		d:       hosts,
		routes:  &Routes{Managed: []string{"gone", "primary"}},
		want:    traffic.Desired{Split: traffic.CanaryAt(20)},
		wantErr: ErrRouteNotFound,
	}, {
		name: "a foreign destination in a managed route is an error",
		in: vs(&networkingv1.HTTPRoute{Name: "primary", Route: []*networkingv1.HTTPRouteDestination{
			dest("podinfo-stable", "", 90), dest("podinfo-canary", "", 5), dest("legacy", "", 5)}}),
		d:       hosts,
		want:    traffic.Desired{Split: traffic.CanaryAt(20)},
		wantErr: ErrUnexpectedDestination,
	}, {
		name: "a managed route without a canary destination is an error",
		in: vs(&networkingv1.HTTPRoute{Name: "primary", Route: []*networkingv1.HTTPRouteDestination{
			dest("podinfo-stable", "", 100)}}),
		d:       hosts,
		want:    traffic.Desired{Split: traffic.CanaryAt(20)},
		wantErr: ErrUnexpectedDestination,
	}, {
		name:        "at rest, a missing managed route does not stop the others going to stable nor owned routes going",
		in:          vs(userRoute(), betaRoute(), primary(40, 60)),
		d:           hosts,
		routes:      &Routes{Managed: []string{"gone", "primary"}, Owned: []string{"beta"}},
		want:        traffic.AtRest(),
		wantSpec:    vs(userRoute(), primary(100, 0)),
		wantChanged: true,
		wantErr:     ErrRouteNotFound,
	}, {
		name: "at rest, a managed route with a foreign destination is left as it is and the others go to stable",
		in: vs(&networkingv1.HTTPRoute{Name: "secondary", Route: []*networkingv1.HTTPRouteDestination{
			dest("podinfo-stable", "", 40), dest("podinfo-canary", "", 30), dest("legacy", "", 30)}},
			shadowGetsRoute(40, 60), primary(40, 60)),
		d:      hosts,
		routes: &Routes{Managed: []string{"secondary", "primary"}, Owned: []string{"shadow-gets"}},
		want:   traffic.AtRest(),
		wantSpec: vs(&networkingv1.HTTPRoute{Name: "secondary", Route: []*networkingv1.HTTPRouteDestination{
			dest("podinfo-stable", "", 40), dest("podinfo-canary", "", 30), dest("legacy", "", 30)}},
			primary(100, 0)),
		wantChanged: true,
		wantErr:     ErrUnexpectedDestination,
	}, {
		name:     "at rest with no managed route left, nothing changes and each is named",
		in:       vs(userRoute()),
		d:        hosts,
		routes:   &Routes{Managed: []string{"gone", "primary"}},
		want:     traffic.AtRest(),
		wantSpec: vs(userRoute()),
		wantErr:  ErrRouteNotFound,
	}, {
		name: "without the DestinationRule's host, destinations match by subset alone",
		in: vs(&networkingv1.HTTPRoute{Name: "primary", Route: []*networkingv1.HTTPRouteDestination{
			dest("podinfo.prod.svc.cluster.local", "stable", 70), dest("podinfo", "canary", 30)}}),
		d:    Destinations{Namespace: "prod", StableSubset: "stable", CanarySubset: "canary"},
		want: traffic.AtRest(),
		wantSpec: vs(&networkingv1.HTTPRoute{Name: "primary", Route: []*networkingv1.HTTPRouteDestination{
			dest("podinfo.prod.svc.cluster.local", "stable", 100), dest("podinfo", "canary", 0)}}),
		wantChanged: true,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := managed
			if tt.routes != nil {
				r = *tt.routes
			}
			changed, err := Rewrite(tt.in, r, tt.d, tt.want)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Rewrite() error = %v, want %v", err, tt.wantErr)
			}
			if tt.wantSpec == nil { // an error that leaves vs not to be written
				return
			}
			if changed != tt.wantChanged {
				t.Errorf("Rewrite() changed = %v, want %v", changed, tt.wantChanged)
			}
			if diff := cmp.Diff(&tt.wantSpec.Spec, &tt.in.Spec, protocmp.Transform()); diff != "" {
				t.Errorf("spec (-want +got):\n%s", diff)
			}
		})
	}
}
