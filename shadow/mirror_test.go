package shadow

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tugboatdev/tugboat/traffic"
)

func TestPlan(t *testing.T) {
	to := Target{Namespace: "pr-42", Service: "web", Port: 8080}
	r := Request{Namespace: "pr-42", Name: "web-pr-42", Percentage: 10, Methods: []string{"get", "HEAD", "GET"}}
	d := Decision{Allowed: true, RemoveHeaders: []string{"authorization"}}
	exact := func(v string) *traffic.ValueMatch { return &traffic.ValueMatch{Kind: traffic.Exact, Value: v} }
	api := traffic.RequestMatch{Path: &traffic.ValueMatch{Kind: traffic.Prefix, Value: "/api"}, Method: exact("DELETE")}
	beta := traffic.RequestMatch{Headers: []traffic.HeaderMatch{{Header: "x-beta", Value: "1"}}}

	got := Plan(r, d, to, nil)
	want := Mirror{Owner: "preview:pr-42/web-pr-42", Host: "web.pr-42.svc.cluster.local", Port: 8080, Percentage: 10, RemoveHeaders: []string{"authorization"},
		Match: []traffic.RequestMatch{{Method: exact("GET")}, {Method: exact("HEAD")}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("methods only (-want +got):\n%s", diff)
	}

	// Each method with each extra match; an extra match never widens the
	// methods.
	got = Plan(r, d, to, []traffic.RequestMatch{api, beta})
	want.Match = []traffic.RequestMatch{
		{Method: exact("GET"), Path: api.Path}, {Method: exact("GET"), Headers: beta.Headers},
		{Method: exact("HEAD"), Path: api.Path}, {Method: exact("HEAD"), Headers: beta.Headers},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("with extra matches (-want +got):\n%s", diff)
	}
	if api.Method.Value != "DELETE" {
		t.Errorf("the caller's match was changed: %+v", api)
	}
}
