package traffic

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
)

// PreviewMirror is one preview's copy of a production route's traffic:
// Percentage percent of the requests that meet any of Match go, as well, to
// Host:Port. Owner names the preview; several may mirror one route.
type PreviewMirror struct {
	Owner      string         `json:"-"`
	Host       string         `json:"host"`
	Port       int32          `json:"port,omitempty"`
	Percentage int32          `json:"percentage"`
	Match      []RequestMatch `json:"match"`
}

// MirrorTo is one entry of an added route's mirrors list.
type MirrorTo struct {
	Owner      string
	Host       string
	Port       int32
	Percentage int32
}

// MirroringRoute is a route added before a production route: the
// production route's destinations, for the requests that meet Match, with
// a copy to each of Mirrors.
type MirroringRoute struct {
	Name    string
	Match   RequestMatch
	Mirrors []MirrorTo
}

// MirroringRoutes merges the previews mirroring one production route into
// the routes to add before it. Istio sends a request along the first route
// that matches, so previews cannot each add a route of their own: there is
// one route for each distinct condition the previews ask for, most specific
// first, and each copies to every preview that asks for a condition the
// route's implies (a preview of GET requests gets the copies of the route
// for GET requests with x-beta too). Two previews whose conditions overlap
// without either implying the other share only what the earlier route
// takes. The result depends on the set of previews alone, not on their
// order, so that every owner's write computes the same routes.
func MirroringRoutes(route string, previews []PreviewMirror) []MirroringRoute {
	conds := map[string]RequestMatch{}
	for _, p := range previews {
		for _, m := range p.Match {
			conds[matchKey(m)] = canonical(m)
		}
	}
	keys := make([]string, 0, len(conds))
	for k := range conds {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		// More conditions first, then a fixed order.
		return cmp.Or(cmp.Compare(weight(conds[b]), weight(conds[a])), cmp.Compare(a, b))
	})
	var out []MirroringRoute
	for _, k := range keys {
		c := conds[k]
		r := MirroringRoute{Name: mirroringRouteName(route, k), Match: c}
		for _, p := range previews {
			if slices.ContainsFunc(p.Match, func(m RequestMatch) bool { return implies(c, m) }) {
				r.Mirrors = append(r.Mirrors, MirrorTo{Owner: p.Owner, Host: p.Host, Port: p.Port, Percentage: p.Percentage})
			}
		}
		slices.SortFunc(r.Mirrors, func(a, b MirrorTo) int { return cmp.Compare(a.Owner, b.Owner) })
		out = append(out, r)
	}
	return out
}

// implies reports whether every request that meets c meets m: each part m
// sets, c sets the same.
func implies(c, m RequestMatch) bool {
	same := func(a, b *ValueMatch) bool { return b == nil || a != nil && *a == *b }
	if !same(c.Method, m.Method) || !same(c.Path, m.Path) {
		return false
	}
	for _, h := range m.Headers {
		if !slices.Contains(c.Headers, h) {
			return false
		}
	}
	return true
}

func weight(m RequestMatch) int {
	n := len(m.Headers)
	if m.Method != nil {
		n++
	}
	if m.Path != nil {
		n++
	}
	return n
}

// canonical is m with its headers in a fixed order, so that the route for
// a condition reads the same whoever asked for it first.
func canonical(m RequestMatch) RequestMatch {
	m.Headers = slices.Clone(m.Headers)
	slices.SortFunc(m.Headers, func(a, b HeaderMatch) int {
		return cmp.Or(cmp.Compare(a.Header, b.Header), cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Value, b.Value))
	})
	return m
}

// matchKey is a canonical form of a condition: the same condition, however
// its headers are ordered, has the same key.
func matchKey(m RequestMatch) string {
	part := func(v *ValueMatch) string {
		if v == nil {
			return "-"
		}
		return v.Kind.String() + ":" + v.Value
	}
	hs := make([]string, len(m.Headers))
	for i, h := range m.Headers {
		hs[i] = fmt.Sprintf("%q=%s:%q", h.Header, h.Kind, h.Value)
	}
	slices.Sort(hs)
	return fmt.Sprintf("method=%s path=%s headers=%s", part(m.Method), part(m.Path), strings.Join(hs, ","))
}

// mirroringRouteName names the route for one condition of one production
// route, the same on every write.
func mirroringRouteName(route, key string) string {
	h := fnv.New32a()
	fmt.Fprintf(h, "%s\x00%s", route, key)
	return fmt.Sprintf("%s-mirror-%08x", route, h.Sum32())
}
