package shadow

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/traffic"
)

func TestRulesOfKeepsPolicyOrderAndDenies(t *testing.T) {
	policies := []v1alpha1.MirrorPolicy{
		{ObjectMeta: metav1.ObjectMeta{Name: "b-writes"}, Spec: v1alpha1.MirrorPolicySpec{Rules: []v1alpha1.MirrorRule{{
			Name: "posts", Namespaces: metav1.LabelSelector{MatchLabels: map[string]string{"team": "shop"}},
			Rollouts: []string{"shop"}, MaxPercentage: 50, Methods: []string{"GET", "POST"}, AllowUnsafeMethods: true,
		}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "a-previews"}, Spec: v1alpha1.MirrorPolicySpec{Rules: []v1alpha1.MirrorRule{
			{Name: "everyone", Rollouts: []string{"shop"}}, // empty selector: nobody
			{Name: "prs", Namespaces: metav1.LabelSelector{MatchLabels: map[string]string{"tugboat.dev/preview": "true"}},
				Routes: []v1alpha1.PreviewRouteRef{{Name: "shop", Route: "primary"}}, RemoveHeaders: []string{"x-tenant-token"}},
			{Name: "broken", Namespaces: metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "x", Operator: "Bogus"}}},
				Routes: []v1alpha1.PreviewRouteRef{{Name: "shop", Route: "canary"}}},
		}}},
	}
	rules := RulesOf(policies)
	var names []string
	for _, r := range rules {
		names = append(names, r.String())
	}
	if want := []string{"a-previews/everyone", "a-previews/prs", "a-previews/broken", "b-writes/posts"}; !cmp.Equal(names, want) {
		t.Fatalf("rule order %v, want %v", names, want)
	}
	if rules[0].MaxPercentage != 10 {
		t.Errorf("a rule without maxPercentage allows %d, want the default 10", rules[0].MaxPercentage)
	}
	pr := func(labels map[string]string, p *v1alpha1.Preview) Decision {
		return Evaluate(rules, RequestOf(p, labels))
	}
	preview := func(mut func(*v1alpha1.Preview)) *v1alpha1.Preview {
		p := &v1alpha1.Preview{ObjectMeta: metav1.ObjectMeta{Namespace: "pr-1", Name: "shop"}, Spec: v1alpha1.PreviewSpec{
			Source:  v1alpha1.PreviewSource{Namespace: "prod", VirtualService: &v1alpha1.PreviewRouteRef{Name: "shop", Route: "primary"}},
			Service: v1alpha1.PreviewService{Name: "shop", Port: 80}, Percentage: 10,
		}}
		if mut != nil {
			mut(p)
		}
		return p
	}
	for _, tc := range []struct {
		name   string
		labels map[string]string
		p      *v1alpha1.Preview
		rule   string
		reason string // empty: allowed
	}{
		{"a labelled namespace may mirror the route", map[string]string{"tugboat.dev/preview": "true"}, preview(nil), "a-previews/prs", ""},
		{"an unlabelled one is denied by the rule that covers the route", map[string]string{"team": "other"}, preview(nil), "a-previews/prs", "namespace pr-1 is not among"},
		{"the rollout is only covered by the posts rule", map[string]string{"team": "shop"},
			preview(func(p *v1alpha1.Preview) {
				p.Spec.Source, p.Spec.Methods = v1alpha1.PreviewSource{Namespace: "prod", Rollout: "shop"}, []string{"GET"}
			}), "b-writes/posts", ""},
		{"HEAD, asked for by default, is not among the posts rule's methods", map[string]string{"team": "shop"},
			preview(func(p *v1alpha1.Preview) { p.Spec.Source = v1alpha1.PreviewSource{Namespace: "prod", Rollout: "shop"} }), "b-writes/posts", "method HEAD is not among its methods (GET, POST)"},
		{"a selector that cannot be read says so", map[string]string{"x": "y"},
			preview(func(p *v1alpha1.Preview) { p.Spec.Source.VirtualService.Route = "canary" }), "a-previews/broken", "its namespace selector is invalid"},
		{"too much", map[string]string{"tugboat.dev/preview": "true"}, preview(func(p *v1alpha1.Preview) { p.Spec.Percentage = 11 }), "a-previews/prs", "percentage 11 is over its maxPercentage 10"},
		{"no API default percentage still asks for 10", map[string]string{"tugboat.dev/preview": "true"}, preview(func(p *v1alpha1.Preview) { p.Spec.Percentage = 0 }), "a-previews/prs", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := pr(tc.labels, tc.p)
			if d.Rule != tc.rule || d.Allowed != (tc.reason == "") || !strings.Contains(d.Reason, tc.reason) {
				t.Errorf("got %+v, want rule %s, reason containing %q", d, tc.rule, tc.reason)
			}
		})
	}
	d := pr(map[string]string{"tugboat.dev/preview": "true"}, preview(nil))
	if want := []string{"authorization", "cookie", "proxy-authorization", "x-api-key", "x-tenant-token"}; !cmp.Equal(d.RemoveHeaders, want) {
		t.Errorf("removed headers %v, want %v", d.RemoveHeaders, want)
	}
}

func TestMatchOfAndExpiry(t *testing.T) {
	got := MatchOf([]v1alpha1.PreviewMatch{{
		Path: &v1alpha1.StringMatch{Prefix: "/api/"},
		Headers: []v1alpha1.HeaderRoutingMatch{
			{HeaderName: "x-z", HeaderValue: v1alpha1.StringMatch{Regex: "a.*"}},
			{HeaderName: "x-a", HeaderValue: v1alpha1.StringMatch{Exact: "1"}},
		},
	}})
	want := []traffic.RequestMatch{{
		Path: &traffic.ValueMatch{Kind: traffic.Prefix, Value: "/api/"},
		Headers: []traffic.HeaderMatch{
			{Header: "x-a", Kind: traffic.Exact, Value: "1"},
			{Header: "x-z", Kind: traffic.Regex, Value: "a.*"},
		},
	}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("MatchOf (-want +got):\n%s", d)
	}
	created := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	p := &v1alpha1.Preview{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.NewTime(created)}}
	if got := Expiry(p); !got.Equal(created.Add(24 * time.Hour)) {
		t.Errorf("default expiry %v", got)
	}
	p.Spec.TTL = &metav1.Duration{Duration: time.Hour}
	if got := Expiry(p); !got.Equal(created.Add(time.Hour)) {
		t.Errorf("expiry %v", got)
	}
}
