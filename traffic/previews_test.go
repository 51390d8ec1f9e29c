package traffic

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestMirroringRoutes(t *testing.T) {
	method := func(m string) *ValueMatch { return &ValueMatch{Kind: Exact, Value: m} }
	beta := HeaderMatch{Header: "x-beta", Kind: Exact, Value: "true"}
	tenant := HeaderMatch{Header: "x-tenant", Kind: Prefix, Value: "eu-"}
	api := &ValueMatch{Kind: Prefix, Value: "/api"}
	a := PreviewMirror{Owner: "preview:pr-1/web", Host: "web.pr-1.svc.cluster.local", Port: 80, Percentage: 10,
		Match: []RequestMatch{{Method: method("GET")}, {Method: method("HEAD")}}}
	b := PreviewMirror{Owner: "preview:pr-2/web", Host: "web.pr-2.svc.cluster.local", Port: 80, Percentage: 20,
		Match: []RequestMatch{{Method: method("GET"), Headers: []HeaderMatch{beta}}}}
	to := func(p PreviewMirror) MirrorTo {
		return MirrorTo{Owner: p.Owner, Host: p.Host, Port: p.Port, Percentage: p.Percentage}
	}
	name := func(m RequestMatch) string { return mirroringRouteName("primary", matchKey(m)) }

	for _, tt := range []struct {
		name     string
		previews []PreviewMirror
		want     []MirroringRoute
	}{
		{"no previews, no routes", nil, nil},
		{"two previews of the same methods share each method's route, each at its own share",
			[]PreviewMirror{a, {Owner: "preview:pr-3/web", Host: "web.pr-3.svc.cluster.local", Port: 8080, Percentage: 5, Match: a.Match}},
			[]MirroringRoute{
				{Name: name(a.Match[0]), Match: a.Match[0], Mirrors: []MirrorTo{to(a), {Owner: "preview:pr-3/web", Host: "web.pr-3.svc.cluster.local", Port: 8080, Percentage: 5}}},
				{Name: name(a.Match[1]), Match: a.Match[1], Mirrors: []MirrorTo{to(a), {Owner: "preview:pr-3/web", Host: "web.pr-3.svc.cluster.local", Port: 8080, Percentage: 5}}},
			}},
		{"a narrower condition goes first and copies to the wider one's preview too",
			[]PreviewMirror{a, b},
			[]MirroringRoute{
				{Name: name(b.Match[0]), Match: b.Match[0], Mirrors: []MirrorTo{to(a), to(b)}},
				{Name: name(a.Match[0]), Match: a.Match[0], Mirrors: []MirrorTo{to(a)}},
				{Name: name(a.Match[1]), Match: a.Match[1], Mirrors: []MirrorTo{to(a)}},
			}},
		{"the same condition, headers in another order, is one route",
			[]PreviewMirror{
				{Owner: "p1", Host: "h1", Percentage: 1, Match: []RequestMatch{{Headers: []HeaderMatch{beta, tenant}}}},
				{Owner: "p2", Host: "h2", Percentage: 2, Match: []RequestMatch{{Headers: []HeaderMatch{tenant, beta}}}},
			},
			[]MirroringRoute{{Name: name(RequestMatch{Headers: []HeaderMatch{beta, tenant}}), Match: RequestMatch{Headers: []HeaderMatch{beta, tenant}}, // headers by name
				Mirrors: []MirrorTo{{Owner: "p1", Host: "h1", Percentage: 1}, {Owner: "p2", Host: "h2", Percentage: 2}}}}},
		{"overlapping conditions neither of which implies the other: each route copies to its own",
			[]PreviewMirror{
				{Owner: "p1", Host: "h1", Percentage: 1, Match: []RequestMatch{{Method: method("GET"), Path: api}}},
				{Owner: "p2", Host: "h2", Percentage: 2, Match: []RequestMatch{{Method: method("GET"), Headers: []HeaderMatch{beta}}}},
			},
			func() []MirroringRoute {
				r1 := MirroringRoute{Name: name(RequestMatch{Method: method("GET"), Path: api}), Match: RequestMatch{Method: method("GET"), Path: api}, Mirrors: []MirrorTo{{Owner: "p1", Host: "h1", Percentage: 1}}}
				r2 := MirroringRoute{Name: name(RequestMatch{Method: method("GET"), Headers: []HeaderMatch{beta}}), Match: RequestMatch{Method: method("GET"), Headers: []HeaderMatch{beta}}, Mirrors: []MirrorTo{{Owner: "p2", Host: "h2", Percentage: 2}}}
				if matchKey(r2.Match) < matchKey(r1.Match) {
					return []MirroringRoute{r2, r1}
				}
				return []MirroringRoute{r1, r2}
			}()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := MirroringRoutes("primary", tt.previews)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			// Whatever order the owners come in, every write computes the same.
			rng := rand.New(rand.NewPCG(1, 2))
			for range 10 {
				shuffled := append([]PreviewMirror(nil), tt.previews...)
				rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
				if diff := cmp.Diff(got, MirroringRoutes("primary", shuffled)); diff != "" {
					t.Fatalf("order changed the routes (-first +shuffled):\n%s", diff)
				}
			}
		})
	}
}

func TestImplies(t *testing.T) {
	get := &ValueMatch{Kind: Exact, Value: "GET"}
	beta := HeaderMatch{Header: "x-beta", Value: "1"}
	for _, tt := range []struct {
		c, m RequestMatch
		want bool
	}{
		{RequestMatch{Method: get, Headers: []HeaderMatch{beta}}, RequestMatch{Method: get}, true},
		{RequestMatch{Method: get}, RequestMatch{Method: get, Headers: []HeaderMatch{beta}}, false},
		{RequestMatch{Method: get}, RequestMatch{}, true},
		{RequestMatch{}, RequestMatch{Method: get}, false},
		{RequestMatch{Method: &ValueMatch{Kind: Exact, Value: "HEAD"}}, RequestMatch{Method: get}, false},
		{RequestMatch{Path: &ValueMatch{Kind: Prefix, Value: "/api/v1"}}, RequestMatch{Path: &ValueMatch{Kind: Prefix, Value: "/api"}}, false}, // conservative
	} {
		if got := implies(tt.c, tt.m); got != tt.want {
			t.Errorf("implies(%s, %s) = %v", matchKey(tt.c), matchKey(tt.m), got)
		}
	}
}

// For any previews and any request, the first added route the request meets
// (as Istio picks it) copies it only to previews that asked for it (never
// a method or match a preview's policy did not allow), and to every one of
// them when the conditions it meets nest.
func TestMirroringRoutesCopyOnlyWhatWasAskedFor(t *testing.T) {
	methods := []*ValueMatch{nil, {Kind: Exact, Value: "GET"}, {Kind: Exact, Value: "POST"}}
	paths := []*ValueMatch{nil, {Kind: Prefix, Value: "/api"}}
	headers := [][]HeaderMatch{nil, {{Header: "x-beta", Value: "1"}}, {{Header: "x-beta", Value: "1"}, {Header: "x-eu", Value: "1"}}}
	meets := func(r map[string]string, m RequestMatch) bool {
		if m.Method != nil && r[":method"] != m.Method.Value || m.Path != nil && !strings.HasPrefix(r[":path"], m.Path.Value) {
			return false
		}
		for _, h := range m.Headers {
			if r[h.Header] != h.Value {
				return false
			}
		}
		return true
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for range 2000 {
		var previews []PreviewMirror
		for i := range 1 + rng.IntN(4) {
			p := PreviewMirror{Owner: fmt.Sprint("p", i), Percentage: 10}
			for range 1 + rng.IntN(2) {
				p.Match = append(p.Match, RequestMatch{Method: methods[rng.IntN(3)], Path: paths[rng.IntN(2)], Headers: headers[rng.IntN(3)]})
			}
			previews = append(previews, p)
		}
		routes := MirroringRoutes("primary", previews)
		req := map[string]string{":method": []string{"GET", "POST", "PUT"}[rng.IntN(3)], ":path": []string{"/", "/api/x"}[rng.IntN(2)]}
		if rng.IntN(2) == 0 {
			req["x-beta"] = "1"
		}
		if rng.IntN(2) == 0 {
			req["x-eu"] = "1"
		}
		var got []string
		for _, r := range routes {
			if meets(req, r.Match) {
				for _, m := range r.Mirrors {
					got = append(got, m.Owner)
				}
				break
			}
		}
		var want []string
		var met []RequestMatch
		for _, p := range previews {
			for _, m := range p.Match {
				if meets(req, m) {
					met = append(met, m)
					if !slices.Contains(want, p.Owner) {
						want = append(want, p.Owner)
					}
				}
			}
		}
		for _, o := range got {
			if !slices.Contains(want, o) {
				t.Fatalf("request %v copied to %s, which did not ask for it; previews %+v", req, o, previews)
			}
		}
		nested := true
		for _, a := range met {
			for _, b := range met {
				nested = nested && (implies(a, b) || implies(b, a))
			}
		}
		slices.Sort(got)
		slices.Sort(want)
		if nested && !slices.Equal(got, want) {
			t.Fatalf("request %v copied to %v, want %v; previews %+v, routes %+v", req, got, want, previews, routes)
		}
	}
}
