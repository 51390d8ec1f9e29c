package dataplane

import (
	"math"
	"math/rand/v2"
	"testing"

	networkingv1 "istio.io/api/networking/v1"
)

func vs() *networkingv1.VirtualService {
	return &networkingv1.VirtualService{
		Hosts: []string{"podinfo"},
		Http: []*networkingv1.HTTPRoute{{
			Name: "beta",
			Match: []*networkingv1.HTTPMatchRequest{{Headers: map[string]*networkingv1.StringMatch{
				"x-beta": {MatchType: &networkingv1.StringMatch_Exact{Exact: "true"}}}}},
			Route: []*networkingv1.HTTPRouteDestination{{Destination: &networkingv1.Destination{Host: "podinfo-canary"}, Weight: 100}},
		}, {
			Name: "primary",
			Route: []*networkingv1.HTTPRouteDestination{
				{Destination: &networkingv1.Destination{Host: "podinfo-stable"}, Weight: 90},
				{Destination: &networkingv1.Destination{Host: "podinfo-canary"}, Weight: 10},
			},
			Mirror:           &networkingv1.Destination{Host: "podinfo-preview"},
			MirrorPercentage: &networkingv1.Percent{Value: 25},
		}},
	}
}

// TestSplit: a 90/10 split yields 90/10 within 1 percentage point over
// 20000 requests (the binomial standard deviation is 0.2 points).
func TestSplit(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	counts := map[string]int{}
	mirrored := 0
	const n = 20000
	for range n {
		d := Route([]*networkingv1.VirtualService{vs()}, Request{Host: "podinfo", Path: "/"}, rng)
		counts[d.To.Host]++
		mirrored += len(d.Mirrors)
	}
	if share := float64(counts["podinfo-canary"]) / n * 100; math.Abs(share-10) > 1 {
		t.Errorf("canary share %.2f%%, want 10±1", share)
	}
	if share := float64(mirrored) / n * 100; math.Abs(share-25) > 1.5 {
		t.Errorf("mirrored %.2f%%, want 25±1.5", share)
	}
}

// TestMirrors: the mirror and each entry of mirrors copy at their own
// percentage, each drawn on its own; unset is 100, an explicit 0 none.
func TestMirrors(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	v := vs()
	primary := v.Http[1]
	primary.Mirror, primary.MirrorPercentage = nil, nil
	primary.Mirrors = []*networkingv1.HTTPMirrorPolicy{
		{Destination: &networkingv1.Destination{Host: "pr-1"}, Percentage: &networkingv1.Percent{Value: 10}},
		{Destination: &networkingv1.Destination{Host: "pr-2"}, Percentage: &networkingv1.Percent{Value: 40}},
		{Destination: &networkingv1.Destination{Host: "pr-3"}},
		{Destination: &networkingv1.Destination{Host: "pr-4"}, Percentage: &networkingv1.Percent{Value: 0}},
	}
	counts, both := map[string]int{}, 0
	const n = 20000
	for range n {
		d := Route([]*networkingv1.VirtualService{v}, Request{Host: "podinfo", Path: "/"}, rng)
		got := map[string]bool{}
		for _, m := range d.Mirrors {
			counts[m.Host]++
			got[m.Host] = true
		}
		if got["pr-1"] && got["pr-2"] {
			both++
		}
	}
	for host, want := range map[string]float64{"pr-1": 10, "pr-2": 40, "pr-3": 100, "pr-4": 0} {
		if share := float64(counts[host]) / n * 100; math.Abs(share-want) > 1.5 {
			t.Errorf("%s copied %.2f%%, want %.0f±1.5", host, share, want)
		}
	}
	// Drawn apart: both at once about 10% × 40% of the time.
	if share := float64(both) / n * 100; math.Abs(share-4) > 0.8 {
		t.Errorf("pr-1 and pr-2 together %.2f%%, want 4±0.8", share)
	}
}

func TestHeaderMatchesRouteAsIstio(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tt := range []struct {
		name    string
		headers map[string]string
		route   string
	}{
		{"exact match takes the header route", map[string]string{"x-beta": "true"}, "beta"},
		{"another value falls through", map[string]string{"x-beta": "false"}, "primary"},
		{"no header falls through", nil, "primary"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := Route([]*networkingv1.VirtualService{vs()}, Request{Host: "podinfo", Headers: tt.headers}, rng)
			if d.Route != tt.route {
				t.Errorf("routed by %q, want %q", d.Route, tt.route)
			}
		})
	}
	prefix := &networkingv1.HTTPMatchRequest{Headers: map[string]*networkingv1.StringMatch{"x-user": {MatchType: &networkingv1.StringMatch_Regex{Regex: "team-[a-c]"}}}}
	if !matchOne(prefix, Request{Headers: map[string]string{"x-user": "team-b"}}) || matchOne(prefix, Request{Headers: map[string]string{"x-user": "team-b2"}}) {
		t.Error("regex matches must cover the whole value")
	}
	if d := Route([]*networkingv1.VirtualService{vs()}, Request{Host: "other"}, rng); d.Found {
		t.Error("a request for another host was routed")
	}
}

func TestMethodMatchesAsIstio(t *testing.T) {
	method := func(sm *networkingv1.StringMatch) *networkingv1.HTTPMatchRequest {
		return &networkingv1.HTTPMatchRequest{Method: sm}
	}
	exact := method(&networkingv1.StringMatch{MatchType: &networkingv1.StringMatch_Exact{Exact: "GET"}})
	regex := method(&networkingv1.StringMatch{MatchType: &networkingv1.StringMatch_Regex{Regex: "GET|HEAD"}})
	both := &networkingv1.HTTPMatchRequest{Method: exact.Method, Headers: map[string]*networkingv1.StringMatch{
		"x-beta": {MatchType: &networkingv1.StringMatch_Exact{Exact: "true"}}}}
	for _, tt := range []struct {
		name  string
		match *networkingv1.HTTPMatchRequest
		req   Request
		want  bool
	}{
		{"exact GET takes GET", exact, Request{Method: "GET"}, true},
		{"exact GET leaves POST", exact, Request{Method: "POST"}, false},
		{"exact GET leaves HEAD", exact, Request{Method: "HEAD"}, false},
		{"methods are case-sensitive", exact, Request{Method: "get"}, false},
		{"a regex covers several", regex, Request{Method: "HEAD"}, true},
		{"a regex covers the whole method", regex, Request{Method: "GETS"}, false},
		{"method and headers must both hold", both, Request{Method: "GET"}, false},
		{"method and headers holding", both, Request{Method: "GET", Headers: map[string]string{"x-beta": "true"}}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := matchOne(tt.match, tt.req); got != tt.want {
				t.Errorf("matchOne = %v, want %v", got, tt.want)
			}
		})
	}
}
