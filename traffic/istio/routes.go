// Package istio is the adapter that writes traffic values into Istio
// VirtualServices. It is the only writer of VirtualServices: the rest of
// Tugboat says what it wants as a traffic.Desired.
//
// The VirtualService belongs to the user. Tugboat changes only the weights of
// the routes it is told by name and the header and mirror routes it added
// (recorded per Rollout); every other route and field is left as it was. The
// compiled Istio types drop fields they do not know, so the object is never
// written whole: Rewrite computes the wanted state on the typed object and
// routesPatch the JSON patch of the difference, both without I/O; the Router
// reads through the cache and writes the patch.
package istio

import (
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"
	networkingv1 "istio.io/api/networking/v1"
	istiov1 "istio.io/client-go/pkg/apis/networking/v1"

	"github.com/tugboatdev/tugboat/traffic"
)

// Sentinel errors for a VirtualService that does not fit the Rollout; the
// reconciler reports them as InvalidSpec rather than retrying.
var (
	ErrRouteNotFound         = fmt.Errorf("%w: no http route with that name", traffic.ErrMisconfigured)
	ErrUnexpectedDestination = fmt.Errorf("%w: route destinations are not the stable and canary ones", traffic.ErrMisconfigured)
	ErrSubsetNotFound        = fmt.Errorf("%w: no subset with that name", traffic.ErrMisconfigured)
	ErrRouteTaken            = fmt.Errorf("%w: a route of that name exists and is not Tugboat's", traffic.ErrMisconfigured)
	ErrMirrorMatchConflict   = fmt.Errorf("%w: a mirror route's match contradicts its managed route's", traffic.ErrMisconfigured)
	ErrRecordUnreadable      = fmt.Errorf("%w: the annotation recording the routes Tugboat added is not readable", traffic.ErrMisconfigured)
)

// misfits are the things that could not be done because the mesh objects do
// not fit the Rollout. Each wraps traffic.ErrMisconfigured, and so does the
// whole.
type misfits []error

func (ms misfits) Error() string {
	parts := make([]string, len(ms))
	for i, err := range ms {
		parts[i] = err.Error()
	}
	return strings.Join(parts, "; ")
}

func (ms misfits) Unwrap() []error { return ms }

// err is nil when nothing misfits.
func (ms misfits) err() error {
	if len(ms) == 0 {
		return nil
	}
	return ms
}

// Destinations says how the stable and canary versions are addressed: by host
// (two Services, subsets empty) or by subset of one host.
type Destinations struct {
	// Namespace of the Rollout, for matching qualified host names.
	Namespace string
	// StableHost and CanaryHost empty match any host: when the
	// DestinationRule that names the host is gone, traffic is sent back to
	// stable by subset name alone.
	StableHost, CanaryHost     string
	StableSubset, CanarySubset string
}

// Routes names what a Rollout manages in one VirtualService.
type Routes struct {
	// Managed are the HTTP routes whose weights are set.
	Managed []string
	// Owned are the names of the header and mirror routes the Rollout added
	// earlier (as recorded on the VirtualService); those not in force are
	// removed. A route of any other name is the user's, or another Rollout's,
	// and is never touched.
	Owned []string
}

// Rewrite changes vs in place so that it carries want, and reports whether
// anything changed. It performs no I/O.
//
// When want.AllStable() (an abort, or the end of a rollout), a managed route
// that is missing or does not fit is left as it is and the rest is done:
// every other managed route is sent to stable and every owned route is
// removed. The error then names each route left, and vs may be written. For
// any other want, an error means vs may be partly changed and must not be
// written.
func Rewrite(vs *istiov1.VirtualService, r Routes, d Destinations, want traffic.Desired) (bool, error) {
	before := proto.Clone(&vs.Spec)
	spec := &vs.Spec
	var left misfits
	var first *networkingv1.HTTPRoute
	var canaryDest *networkingv1.Destination
	for _, name := range r.Managed {
		route := findRoute(spec.GetHttp(), name)
		if route == nil {
			left = append(left, fmt.Errorf("virtualservice %s/%s route %q: %w", vs.Namespace, vs.Name, name, ErrRouteNotFound))
			continue
		}
		c, err := setWeights(route, d, want.Split)
		if err != nil {
			left = append(left, fmt.Errorf("virtualservice %s/%s route %q: %w", vs.Namespace, vs.Name, name, err))
			continue
		}
		if canaryDest == nil {
			first, canaryDest = route, c
		}
	}
	if len(left) > 0 && !want.AllStable() {
		return false, left[0]
	}
	for _, name := range addedNames(want) {
		if findRoute(spec.GetHttp(), name) != nil && !slices.Contains(r.Owned, name) {
			return false, fmt.Errorf("virtualservice %s/%s: route %q: %w", vs.Namespace, vs.Name, name, ErrRouteTaken)
		}
	}
	http, err := placeRoutes(spec.GetHttp(), r, want, first, canaryDest)
	if err != nil {
		return false, fmt.Errorf("virtualservice %s/%s: %w", vs.Namespace, vs.Name, err)
	}
	spec.Http = http
	return !proto.Equal(before, spec), left.err()
}

// addedNames are the names of the routes Tugboat adds for want: header
// routes, then mirror routes.
func addedNames(want traffic.Desired) []string {
	var names []string
	for _, hr := range want.HeaderRoutes {
		names = append(names, hr.Name)
	}
	for _, mr := range want.MirrorRoutes {
		names = append(names, mr.Name)
	}
	return names
}

func findRoute(routes []*networkingv1.HTTPRoute, name string) *networkingv1.HTTPRoute {
	for _, h := range routes {
		if h.GetName() == name {
			return h
		}
	}
	return nil
}

// setWeights sets the stable and canary weights of a managed route and
// returns its canary destination.
func setWeights(route *networkingv1.HTTPRoute, d Destinations, s traffic.Split) (*networkingv1.Destination, error) {
	var stable, canary *networkingv1.HTTPRouteDestination
	for _, rd := range route.GetRoute() {
		switch {
		case stable == nil && d.matches(rd.GetDestination(), d.StableHost, d.StableSubset):
			stable = rd
		case canary == nil && d.matches(rd.GetDestination(), d.CanaryHost, d.CanarySubset):
			canary = rd
		default:
			return nil, fmt.Errorf("%w: unexpected destination %s", ErrUnexpectedDestination, describe(rd.GetDestination()))
		}
	}
	if stable == nil || canary == nil {
		return nil, fmt.Errorf("%w: want one destination each for %s and %s",
			ErrUnexpectedDestination, d.describe(d.StableHost, d.StableSubset), d.describe(d.CanaryHost, d.CanarySubset))
	}
	stable.Weight, canary.Weight = s.Stable, s.Canary
	return canary.GetDestination(), nil
}

// placeRoutes removes the routes Tugboat added before, then puts the ones in
// force just ahead of the first managed route, where Istio tries them first:
// header routes, then mirror routes.
func placeRoutes(routes []*networkingv1.HTTPRoute, r Routes, want traffic.Desired, managed *networkingv1.HTTPRoute, canary *networkingv1.Destination) ([]*networkingv1.HTTPRoute, error) {
	kept := slices.DeleteFunc(slices.Clone(routes), func(h *networkingv1.HTTPRoute) bool {
		return slices.Contains(r.Owned, h.GetName())
	})
	if len(want.HeaderRoutes)+len(want.MirrorRoutes) == 0 || canary == nil {
		return kept, nil
	}
	at := slices.IndexFunc(kept, func(h *networkingv1.HTTPRoute) bool { return slices.Contains(r.Managed, h.GetName()) })
	if at < 0 {
		at = len(kept)
	}
	add := make([]*networkingv1.HTTPRoute, 0, len(want.HeaderRoutes)+len(want.MirrorRoutes))
	for _, hr := range want.HeaderRoutes {
		add = append(add, headerRoute(hr, canary))
	}
	for _, mr := range want.MirrorRoutes {
		route, err := mirrorRoute(mr, managed, canary)
		if err != nil {
			return nil, err
		}
		add = append(add, route)
	}
	return slices.Insert(kept, at, add...), nil
}

// mirrorRoute is the managed route, whole (its match, destinations with
// their weights, retries, timeouts...), narrowed to the requests that also
// meet the mirror's match, copying a share of them to the canary.
func mirrorRoute(mr traffic.MirrorRoute, managed *networkingv1.HTTPRoute, canary *networkingv1.Destination) (*networkingv1.HTTPRoute, error) {
	route, err := narrowed(managed, mr.Name, mr.Match)
	if err != nil {
		return nil, err
	}
	route.Mirror = proto.Clone(canary).(*networkingv1.Destination)
	route.MirrorPercentage = &networkingv1.Percent{Value: float64(mr.Percentage)}
	return route, nil
}

// narrowed is a copy of route, named name, for the requests that also meet
// one of match; it mirrors nothing.
func narrowed(route *networkingv1.HTTPRoute, name string, match []traffic.RequestMatch) (*networkingv1.HTTPRoute, error) {
	out := proto.Clone(route).(*networkingv1.HTTPRoute)
	out.Name = name
	out.Mirror, out.MirrorPercentage, out.Mirrors = nil, nil, nil
	base := route.GetMatch()
	if len(base) == 0 {
		base = []*networkingv1.HTTPMatchRequest{{}}
	}
	out.Match = nil
	for _, b := range base {
		for _, m := range match {
			both, err := and(b, m)
			if err != nil {
				return nil, fmt.Errorf("mirror route %q and route %q: %w", name, route.GetName(), err)
			}
			out.Match = append(out.Match, both)
		}
	}
	return out, nil
}

// and narrows a managed route's match by a mirror's. Both setting the same
// thing differently is a spec error: the mirror would match nothing.
func and(b *networkingv1.HTTPMatchRequest, m traffic.RequestMatch) (*networkingv1.HTTPMatchRequest, error) {
	out := proto.Clone(b).(*networkingv1.HTTPMatchRequest)
	set := func(field string, have **networkingv1.StringMatch, want *traffic.ValueMatch) error {
		if want == nil {
			return nil
		}
		w := valueMatch(want)
		if *have != nil && !proto.Equal(*have, w) {
			return fmt.Errorf("%w: both match on %s", ErrMirrorMatchConflict, field)
		}
		*have = w
		return nil
	}
	if err := set("the method", &out.Method, m.Method); err != nil {
		return nil, err
	}
	if err := set("the path", &out.Uri, m.Path); err != nil {
		return nil, err
	}
	for _, h := range m.Headers {
		if out.Headers == nil {
			out.Headers = map[string]*networkingv1.StringMatch{}
		}
		have := out.Headers[h.Header]
		if err := set("header "+h.Header, &have, &traffic.ValueMatch{Kind: h.Kind, Value: h.Value}); err != nil {
			return nil, err
		}
		out.Headers[h.Header] = have
	}
	return out, nil
}

func valueMatch(m *traffic.ValueMatch) *networkingv1.StringMatch {
	if m == nil {
		return nil
	}
	return stringMatch(traffic.HeaderMatch{Kind: m.Kind, Value: m.Value})
}

func headerRoute(hr traffic.HeaderRoute, canary *networkingv1.Destination) *networkingv1.HTTPRoute {
	headers := make(map[string]*networkingv1.StringMatch, len(hr.Match))
	for _, m := range hr.Match {
		headers[m.Header] = stringMatch(m)
	}
	return &networkingv1.HTTPRoute{
		Name:  hr.Name,
		Match: []*networkingv1.HTTPMatchRequest{{Headers: headers}},
		Route: []*networkingv1.HTTPRouteDestination{{
			Destination: proto.Clone(canary).(*networkingv1.Destination),
			Weight:      100,
		}},
	}
}

func stringMatch(m traffic.HeaderMatch) *networkingv1.StringMatch {
	switch m.Kind {
	case traffic.Prefix:
		return &networkingv1.StringMatch{MatchType: &networkingv1.StringMatch_Prefix{Prefix: m.Value}}
	case traffic.Regex:
		return &networkingv1.StringMatch{MatchType: &networkingv1.StringMatch_Regex{Regex: m.Value}}
	default:
		return &networkingv1.StringMatch{MatchType: &networkingv1.StringMatch_Exact{Exact: m.Value}}
	}
}

// matches reports whether dst addresses host (short, or qualified with the
// Rollout's namespace) and subset.
func (d Destinations) matches(dst *networkingv1.Destination, host, subset string) bool {
	h := dst.GetHost()
	sameHost := host == "" || h == host || h == host+"."+d.Namespace || strings.HasPrefix(h, host+"."+d.Namespace+".svc")
	return sameHost && dst.GetSubset() == subset
}

func (d Destinations) describe(host, subset string) string {
	return describe(&networkingv1.Destination{Host: host, Subset: subset})
}

func describe(dst *networkingv1.Destination) string {
	if dst.GetHost() == "" {
		return fmt.Sprintf("subset %s of any host", dst.GetSubset())
	}
	if dst.GetSubset() != "" {
		return fmt.Sprintf("%s (subset %s)", dst.GetHost(), dst.GetSubset())
	}
	return dst.GetHost()
}
