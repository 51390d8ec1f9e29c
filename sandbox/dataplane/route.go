package dataplane

import (
	"math/rand/v2"
	"regexp"
	"strings"

	networkingv1 "istio.io/api/networking/v1"
)

// Request is what the load generator sends.
type Request struct {
	// Host is the request's :authority: a VirtualService's host, or
	// another name of the same Service.
	Host   string
	Method string
	Path   string
	// Headers are the other headers, with lower-case names.
	Headers map[string]string
}

// Destination is where a route sends a request.
type Destination struct {
	Host   string
	Subset string
}

// Decision is the outcome of routing one request: where it goes, and where
// copies are mirrored, if anywhere.
type Decision struct {
	To      Destination
	Mirrors []Destination
	Route   string
	Found   bool
}

// Route picks the destination of req among the HTTP routes of the
// VirtualServices for its host, as Istio does: the first route whose match
// holds, then a destination by weight.
func Route(services []*networkingv1.VirtualService, req Request, rng *rand.Rand) Decision {
	for _, vs := range services {
		if !hasHost(vs.GetHosts(), req.Host) {
			continue
		}
		for _, r := range vs.GetHttp() {
			if !matches(r.GetMatch(), req) {
				continue
			}
			d := Decision{Route: r.GetName(), Found: true}
			if dst := pick(r.GetRoute(), rng); dst != nil {
				d.To = Destination{Host: dst.GetHost(), Subset: dst.GetSubset()}
			}
			d.Mirrors = mirrorsOf(r, rng)
			return d
		}
	}
	return Decision{}
}

// mirrorsOf draws the copies of one request, as Istio configures Envoy: the
// mirror (with mirrorPercentage) and each entry of mirrors (with its own
// percentage), each drawn on its own; a percentage that is not set means
// every request, an explicit 0 none (Istio's MirrorPercentByPolicy).
func mirrorsOf(r *networkingv1.HTTPRoute, rng *rand.Rand) []Destination {
	var out []Destination
	draw := func(dst *networkingv1.Destination, p *networkingv1.Percent) {
		pct := 100.0
		if p != nil {
			pct = p.GetValue()
		}
		if dst != nil && rng.Float64()*100 < pct {
			out = append(out, Destination{Host: dst.GetHost(), Subset: dst.GetSubset()})
		}
	}
	draw(r.GetMirror(), r.GetMirrorPercentage())
	for _, m := range r.GetMirrors() {
		draw(m.GetDestination(), m.GetPercentage())
	}
	return out
}

func hasHost(hosts []string, h string) bool {
	for _, x := range hosts {
		if x == h || strings.HasPrefix(x, h+".") || strings.HasPrefix(h, x+".") {
			return true
		}
	}
	return false
}

// matches: no match conditions match everything; otherwise any one of them
// must hold in full.
func matches(ms []*networkingv1.HTTPMatchRequest, req Request) bool {
	if len(ms) == 0 {
		return true
	}
	for _, m := range ms {
		if matchOne(m, req) {
			return true
		}
	}
	return false
}

func matchOne(m *networkingv1.HTTPMatchRequest, req Request) bool {
	if u := m.GetUri(); u != nil && !stringMatch(u, req.Path) {
		return false
	}
	// Istio matches the method as Envoy's :method header, case-sensitively.
	if mm := m.GetMethod(); mm != nil && !stringMatch(mm, req.Method) {
		return false
	}
	for name, sm := range m.GetHeaders() {
		v, ok := req.Headers[strings.ToLower(name)]
		if !ok || !stringMatch(sm, v) {
			return false
		}
	}
	return true
}

func stringMatch(sm *networkingv1.StringMatch, v string) bool {
	switch t := sm.GetMatchType().(type) {
	case *networkingv1.StringMatch_Exact:
		return v == t.Exact
	case *networkingv1.StringMatch_Prefix:
		return strings.HasPrefix(v, t.Prefix)
	case *networkingv1.StringMatch_Regex:
		re, err := regexp.Compile("^(?:" + t.Regex + ")$") // Envoy matches the whole value
		return err == nil && re.MatchString(v)
	}
	return true
}

// pick chooses a destination by weight; a route whose weights are all zero
// sends to its first destination, as Istio treats a single unweighted one.
func pick(ds []*networkingv1.HTTPRouteDestination, rng *rand.Rand) *networkingv1.Destination {
	if len(ds) == 0 {
		return nil
	}
	total := int32(0)
	for _, d := range ds {
		total += d.GetWeight()
	}
	if total == 0 {
		return ds[0].GetDestination()
	}
	n := rng.Int32N(total)
	for _, d := range ds {
		if n < d.GetWeight() {
			return d.GetDestination()
		}
		n -= d.GetWeight()
	}
	return ds[len(ds)-1].GetDestination()
}
