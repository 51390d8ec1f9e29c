package shadow

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/labels"
)

func TestEvaluate(t *testing.T) {
	previews := labels.SelectorFromSet(labels.Set{"tugboat.dev/preview": "true"})
	web := Rule{Policy: "prod-mirrors", Name: "previews", Namespaces: previews, Rollouts: []string{"web"}, MaxPercentage: 20,
		RemoveHeaders: []string{"X-Tenant-Token", "cookie", " "}}
	posts := Rule{Policy: "prod-mirrors", Name: "posts", Namespaces: previews, Routes: []RouteRef{{VirtualService: "api", Route: "orders"}},
		MaxPercentage: 5, Methods: []string{"GET", "POST"}, AllowUnsafeMethods: true}
	ask := func(edit func(*Request)) Request {
		r := Request{Namespace: "pr-42", Name: "web", NamespaceLabels: map[string]string{"tugboat.dev/preview": "true"},
			Source: Source{Namespace: "prod", Rollout: "web"}, Percentage: 10}
		edit(&r)
		return r
	}
	orders := func(r *Request) {
		r.Source = Source{Namespace: "prod", VirtualService: "api", Route: "orders"}
		r.Percentage = 5
	}
	for _, tt := range []struct {
		name    string
		rules   []Rule
		req     Request
		allowed bool
		rule    string
		reason  string
		removes []string
	}{{
		name: "no policy: nothing may be mirrored", req: ask(func(*Request) {}),
		reason: "no mirror policy in namespace prod: nothing may be mirrored from it",
	}, {
		name:  "allowed: GET and HEAD by default, the default headers and the rule's removed, once each, lower case",
		rules: []Rule{web}, req: ask(func(*Request) {}), allowed: true, rule: "prod-mirrors/previews",
		removes: []string{"authorization", "cookie", "proxy-authorization", "x-api-key", "x-tenant-token"},
	}, {
		name: "a namespace the rule does not select is denied, with the rule named", rules: []Rule{web},
		req:    ask(func(r *Request) { r.NamespaceLabels = map[string]string{"team": "web"} }),
		rule:   "prod-mirrors/previews",
		reason: "rule prod-mirrors/previews: namespace pr-42 is not among the namespaces it lets mirror (tugboat.dev/preview=true)",
	}, {
		name: "an empty selector selects no namespace", rules: []Rule{{Policy: "p", Name: "all", Namespaces: labels.Everything(), Rollouts: []string{"web"}, MaxPercentage: 100}},
		req: ask(func(*Request) {}), rule: "p/all", reason: "is not among the namespaces it lets mirror (none)",
	}, {
		name: "over the share", rules: []Rule{web}, req: ask(func(r *Request) { r.Percentage = 50 }),
		rule: "prod-mirrors/previews", reason: "percentage 50 is over its maxPercentage 20",
	}, {
		name: "a source no rule covers", rules: []Rule{web}, req: ask(func(r *Request) { r.Source.Rollout = "billing" }),
		reason: "no mirror policy in namespace prod lets any namespace mirror rollout prod/billing",
	}, {
		name: "a method the rule does not allow", rules: []Rule{web}, req: ask(func(r *Request) { r.Methods = []string{"get", "OPTIONS"} }),
		rule: "prod-mirrors/previews", reason: "method OPTIONS is not among its methods (GET, HEAD)",
	}, {
		name: "POST needs the Preview's opt-in", rules: []Rule{posts}, req: ask(func(r *Request) { orders(r); r.Methods = []string{"POST"} }),
		rule: "prod-mirrors/posts", reason: "method POST is not safe: the Preview must set allowUnsafeMethods",
	}, {
		name:  "POST needs the rule's opt-in too",
		rules: []Rule{{Policy: "prod-mirrors", Name: "posts", Namespaces: previews, Routes: posts.Routes, MaxPercentage: 5, Methods: []string{"POST"}}},
		req:   ask(func(r *Request) { orders(r); r.Methods, r.AllowUnsafeMethods = []string{"POST"}, true }),
		rule:  "prod-mirrors/posts", reason: "method POST is not safe, and the rule does not set allowUnsafeMethods",
	}, {
		name: "POST with both opt-ins", rules: []Rule{posts}, req: ask(func(r *Request) { orders(r); r.Methods, r.AllowUnsafeMethods = []string{"POST"}, true }),
		allowed: true, rule: "prod-mirrors/posts", removes: DefaultRemovedHeaders,
	}, {
		name:  "the first rule that allows it decides; denied, the rule that got furthest says why",
		rules: []Rule{posts, {Policy: "other", Name: "narrow", Namespaces: previews, Rollouts: []string{"web"}, MaxPercentage: 1}, web},
		req:   ask(func(*Request) {}), allowed: true, rule: "prod-mirrors/previews",
		removes: []string{"authorization", "cookie", "proxy-authorization", "x-api-key", "x-tenant-token"},
	}, {
		name:  "denied by two rules: the one that got further is named",
		rules: []Rule{{Policy: "a", Name: "elsewhere", Namespaces: labels.SelectorFromSet(labels.Set{"x": "y"}), Rollouts: []string{"web"}, MaxPercentage: 100}, {Policy: "b", Name: "narrow", Namespaces: previews, Rollouts: []string{"web"}, MaxPercentage: 1}},
		req:   ask(func(*Request) {}), rule: "b/narrow", reason: "percentage 10 is over its maxPercentage 1",
	}} {
		t.Run(tt.name, func(t *testing.T) {
			d := Evaluate(tt.rules, tt.req)
			if d.Allowed != tt.allowed || d.Rule != tt.rule || !strings.Contains(d.Reason, tt.reason) || (tt.allowed && d.Reason != "") {
				t.Errorf("allowed %v by %q: %q; want %v by %q: %q", d.Allowed, d.Rule, d.Reason, tt.allowed, tt.rule, tt.reason)
			}
			if diff := cmp.Diff(tt.removes, d.RemoveHeaders); tt.allowed && diff != "" {
				t.Errorf("removed headers (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSafe(t *testing.T) {
	for m, want := range map[string]bool{"GET": true, "head": true, "OPTIONS": true, "TRACE": true, "POST": false, "PUT": false, "PATCH": false, "DELETE": false, "": false} {
		if Safe(m) != want {
			t.Errorf("Safe(%q) = %v", m, !want)
		}
	}
}

func TestMaxPreviewsBoundsTheMirrorsOfOneSource(t *testing.T) {
	rule := Rule{Policy: "p", Name: "r", Namespaces: labels.SelectorFromSet(labels.Set{"preview": "true"}), Rollouts: []string{"web"}, MaxPercentage: 10, MaxPreviews: 2}
	req := Request{Namespace: "pr-9", Name: "web", NamespaceLabels: map[string]string{"preview": "true"},
		Source: Source{Namespace: "prod", Rollout: "web"}, Percentage: 10}
	for others, allowed := range []bool{true, true, false} {
		req.Others = others
		d := Evaluate([]Rule{rule}, req)
		if d.Allowed != allowed {
			t.Errorf("with %d other previews: %+v, want allowed %v", others, d, allowed)
		}
		if !allowed && !strings.Contains(d.Reason, "2 other previews mirror rollout prod/web already, its maxPreviews") {
			t.Errorf("reason %q", d.Reason)
		}
	}
}
