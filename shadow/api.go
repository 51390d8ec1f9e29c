package shadow

import (
	"fmt"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/traffic"
)

// DefaultTTL is how long a preview receives copies unless it says.
const DefaultTTL = 24 * time.Hour

// RequestOf is what a Preview asks for; namespaceLabels are its namespace's.
func RequestOf(p *v1alpha1.Preview, namespaceLabels map[string]string) Request {
	r := Request{
		Namespace: p.Namespace, Name: p.Name, NamespaceLabels: namespaceLabels,
		Source:             SourceOf(p),
		Percentage:         p.Spec.Percentage,
		Methods:            p.Spec.Methods,
		AllowUnsafeMethods: p.Spec.AllowUnsafeMethods,
	}
	if r.Percentage == 0 {
		r.Percentage = 10 // the API's default, for objects written before it
	}
	return r
}

// SourceOf is the production route a Preview copies from.
func SourceOf(p *v1alpha1.Preview) Source {
	s := Source{Namespace: p.Spec.Source.Namespace, Rollout: p.Spec.Source.Rollout}
	if vs := p.Spec.Source.VirtualService; vs != nil && s.Rollout == "" {
		s.VirtualService, s.Route = vs.Name, vs.Route
	}
	return s
}

// TargetOf is where a Preview's copies go.
func TargetOf(p *v1alpha1.Preview) Target {
	return Target{Namespace: p.Namespace, Service: p.Spec.Service.Name, Port: p.Spec.Service.Port}
}

// Expiry is when a Preview's ttl runs out: its ttl after its creation.
func Expiry(p *v1alpha1.Preview) time.Time {
	ttl := DefaultTTL
	if p.Spec.TTL != nil && p.Spec.TTL.Duration > 0 {
		ttl = p.Spec.TTL.Duration
	}
	// To the second, as status stores it: an expiry that never equals the
	// stored one would be written again on every reconcile.
	return p.CreationTimestamp.Add(ttl).Truncate(time.Second)
}

// RulesOf are the rules of a namespace's mirror policies, policy by policy
// in name order and each policy's in its order, so that the first rule that
// allows a request is the same on every reconcile. A rule whose namespace
// selector cannot be read selects no namespace.
func RulesOf(policies []v1alpha1.MirrorPolicy) []Rule {
	sorted := slices.Clone(policies)
	slices.SortFunc(sorted, func(a, b v1alpha1.MirrorPolicy) int { return strings.Compare(a.Name, b.Name) })
	var out []Rule
	for _, p := range sorted {
		for _, mr := range p.Spec.Rules {
			rule := Rule{
				Policy: p.Name, Name: mr.Name,
				Rollouts:           mr.Rollouts,
				MaxPercentage:      mr.MaxPercentage,
				MaxPreviews:        mr.MaxPreviews,
				Methods:            mr.Methods,
				AllowUnsafeMethods: mr.AllowUnsafeMethods,
				RemoveHeaders:      mr.RemoveHeaders,
			}
			if rule.MaxPercentage == 0 {
				rule.MaxPercentage = 10 // the API's default
			}
			if rule.MaxPreviews == 0 {
				rule.MaxPreviews = 5 // the API's default
			}
			for _, rt := range mr.Routes {
				rule.Routes = append(rule.Routes, RouteRef{VirtualService: rt.Name, Route: rt.Route})
			}
			sel, err := metav1.LabelSelectorAsSelector(&mr.Namespaces)
			if err != nil {
				sel, rule.SelectorError = labels.Nothing(), err.Error()
			}
			rule.Namespaces = sel
			out = append(out, rule)
		}
	}
	return out
}

// MatchOf is a Preview's extra match as traffic conditions, headers in a
// fixed order so that the route is written once.
func MatchOf(ms []v1alpha1.PreviewMatch) []traffic.RequestMatch {
	out := make([]traffic.RequestMatch, 0, len(ms))
	for _, m := range ms {
		var rm traffic.RequestMatch
		if m.Path != nil {
			rm.Path = valueMatch(*m.Path)
		}
		for _, h := range m.Headers {
			vm := valueMatch(h.HeaderValue)
			rm.Headers = append(rm.Headers, traffic.HeaderMatch{Header: h.HeaderName, Kind: vm.Kind, Value: vm.Value})
		}
		slices.SortFunc(rm.Headers, func(a, b traffic.HeaderMatch) int { return strings.Compare(a.Header, b.Header) })
		out = append(out, rm)
	}
	return out
}

func valueMatch(m v1alpha1.StringMatch) *traffic.ValueMatch {
	switch {
	case m.Prefix != "":
		return &traffic.ValueMatch{Kind: traffic.Prefix, Value: m.Prefix}
	case m.Regex != "":
		return &traffic.ValueMatch{Kind: traffic.Regex, Value: m.Regex}
	}
	return &traffic.ValueMatch{Kind: traffic.Exact, Value: m.Exact}
}

// SourceText names the route copied from, for status.
func SourceText(namespace, virtualService, route string) string {
	return fmt.Sprintf("%s/%s/%s", namespace, virtualService, route)
}

// ProgressOf is what a Preview's status recorded.
func ProgressOf(s v1alpha1.PreviewStatus) Progress {
	return Progress{Phase: Phase(s.Phase), Message: s.Message, Generation: s.ObservedGeneration}
}
