package rollout

import (
	"testing"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	"github.com/google/go-cmp/cmp"
	"k8s.io/utils/ptr"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/traffic"
)

func TestTrafficAfterMirrorRoutes(t *testing.T) {
	gets := &argo.SetMirrorRoute{Name: "gets", Percentage: ptr.To[int32](35), Match: []argo.RouteMatch{{
		Method:  &argo.StringMatch{Exact: "GET"},
		Path:    &argo.StringMatch{Prefix: "/api"},
		Headers: map[string]argo.StringMatch{"x-b": {Regex: "y.*"}, "x-a": {Exact: "1"}},
	}}}
	all := &argo.SetMirrorRoute{Name: "all", Match: []argo.RouteMatch{{Path: &argo.StringMatch{Prefix: "/"}}}}
	steps := []v1alpha1.Step{
		{SetWeight: ptr.To[int32](10)}, // 0
		{SetMirrorRoute: gets},         // 1
		{SetMirrorRoute: all},          // 2
		{SetMirrorRoute: &argo.SetMirrorRoute{Name: "gets", Match: []argo.RouteMatch{{Method: &argo.StringMatch{Exact: "HEAD"}}}}}, // 3: replaces
		{SetMirrorRoute: &argo.SetMirrorRoute{Name: "all"}},                                                                        // 4: removes
	}
	getsRoute := traffic.MirrorRoute{Name: "gets", Percentage: 35, Match: []traffic.RequestMatch{{
		Method:  &traffic.ValueMatch{Kind: traffic.Exact, Value: "GET"},
		Path:    &traffic.ValueMatch{Kind: traffic.Prefix, Value: "/api"},
		Headers: []traffic.HeaderMatch{{Header: "x-a", Kind: traffic.Exact, Value: "1"}, {Header: "x-b", Kind: traffic.Regex, Value: "y.*"}},
	}}}
	allRoute := traffic.MirrorRoute{Name: "all", Percentage: 100, Match: []traffic.RequestMatch{{Path: &traffic.ValueMatch{Kind: traffic.Prefix, Value: "/"}}}}
	headRoute := traffic.MirrorRoute{Name: "gets", Percentage: 100, Match: []traffic.RequestMatch{{Method: &traffic.ValueMatch{Kind: traffic.Exact, Value: "HEAD"}}}}
	for n, want := range [][]traffic.MirrorRoute{
		1: nil,
		2: {getsRoute},
		3: {getsRoute, allRoute},
		4: {allRoute, headRoute},
		5: {headRoute},
	} {
		if n == 0 {
			continue
		}
		got := TrafficAfter(steps, n)
		if diff := cmp.Diff(traffic.Desired{Split: traffic.CanaryAt(10), MirrorRoutes: want}, got); diff != "" {
			t.Errorf("after %d steps (-want +got):\n%s", n, diff)
		}
	}
}
