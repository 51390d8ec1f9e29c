package istio

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"
	networkingv1 "istio.io/api/networking/v1"
	istiov1 "istio.io/client-go/pkg/apis/networking/v1"

	"github.com/tugboatdev/tugboat/traffic"
)

// Previews' mirrors are recorded on the VirtualService, so that whichever
// owner writes (a preview, or a Rollout moving the weights the mirroring
// routes copy) puts the same routes, in one write, and no owner removes
// another's:
//   - annotationPreviewMirrors: what each preview wants, a JSON object from
//     owner to its production route and mirror;
//   - annotationMirroringRoutes: the names of the mirroring routes the last
//     write placed, which the next removes by name. It is kept apart, so
//     that the copies can still be taken away when the wants cannot be read.
const (
	annotationPreviewMirrors  = "tugboat.dev/preview-mirrors"
	annotationMirroringRoutes = "tugboat.dev/mirroring-routes"
)

// previewWant is one preview's entry in the record.
type previewWant struct {
	Route  string                `json:"route"`
	Mirror traffic.PreviewMirror `json:"mirror"`
}

func readPreviews(vs *istiov1.VirtualService) (map[string]previewWant, error) {
	v, ok := vs.Annotations[annotationPreviewMirrors]
	if !ok {
		return map[string]previewWant{}, nil
	}
	var rec map[string]previewWant
	if err := json.Unmarshal([]byte(v), &rec); err != nil {
		return nil, fmt.Errorf("virtualservice %s/%s annotation %s, the record of what previews mirror: %w: %w", vs.Namespace, vs.Name, annotationPreviewMirrors, ErrRecordUnreadable, err)
	}
	if rec == nil {
		rec = map[string]previewWant{}
	}
	return rec, nil
}

// UnknownPreviews stands, among PreviewOwners, for every preview: vs
// carries mirroring routes under a record of wants that cannot be read, so
// any of them may be a preview's, and taking any preview's mirror off vs
// takes them all.
const UnknownPreviews = "preview:*"

// PreviewOwners are the previews recorded as mirroring a route of vs, for
// the Preview controller's index: it finds a preview's mirrors by them even
// once the Preview is gone. With the record unreadable and mirroring routes
// placed, it is UnknownPreviews alone.
func PreviewOwners(vs *istiov1.VirtualService) []string {
	rec, err := readPreviews(vs)
	if err != nil {
		if len(placedRoutes(vs)) > 0 {
			return []string{UnknownPreviews}
		}
		return nil
	}
	return slices.Sorted(maps.Keys(rec))
}

// MirroringPreviews are the previews recorded as mirroring route of vs.
func MirroringPreviews(vs *istiov1.VirtualService, route string) []string {
	rec, err := readPreviews(vs)
	if err != nil {
		return nil
	}
	var out []string
	for _, owner := range slices.Sorted(maps.Keys(rec)) {
		if rec[owner].Route == route {
			out = append(out, owner)
		}
	}
	return out
}

// placedRoutes are the mirroring routes the last write placed.
func placedRoutes(vs *istiov1.VirtualService) []string {
	return strings.FieldsFunc(vs.Annotations[annotationMirroringRoutes], func(r rune) bool { return r == ',' })
}

func setAnnotation(vs *istiov1.VirtualService, key, value string) {
	if value == "" {
		delete(vs.Annotations, key)
		return
	}
	if vs.Annotations == nil {
		vs.Annotations = map[string]string{}
	}
	vs.Annotations[key] = value
}

func writePreviews(vs *istiov1.VirtualService, rec map[string]previewWant, placed []string) error {
	setAnnotation(vs, annotationMirroringRoutes, strings.Join(placed, ","))
	if len(rec) == 0 {
		setAnnotation(vs, annotationPreviewMirrors, "")
		return nil
	}
	v, err := json.Marshal(rec) // keys sorted: the same record is the same string
	if err != nil {
		return err
	}
	setAnnotation(vs, annotationPreviewMirrors, string(v))
	return nil
}

// mirroring is, per production route, the routes the record puts before it.
func mirroring(rec map[string]previewWant) map[string][]traffic.MirroringRoute {
	by := map[string][]traffic.PreviewMirror{}
	for _, owner := range slices.Sorted(maps.Keys(rec)) {
		w := rec[owner]
		m := w.Mirror
		m.Owner = owner
		by[w.Route] = append(by[w.Route], m)
	}
	out := map[string][]traffic.MirroringRoute{}
	for route, ms := range by {
		out[route] = traffic.MirroringRoutes(route, ms)
	}
	return out
}

// placeMirroring removes the routes named in old and puts, just before each
// production route, the mirroring routes want has for it, copied from that
// route as it now is (match, destinations and weights, its own mirrors,
// retries...), narrowed to their condition, with the previews' copies. It
// returns the names placed. What cannot be placed (the production route is
// gone, a route of that name is someone else's) is left out: a misfit of
// route own comes back as ownErr, one of any other route as others, so
// that one preview's broken route stops no other owner.
func placeMirroring(vs *istiov1.VirtualService, old []string, want map[string][]traffic.MirroringRoute, own string) (placed []string, ownErr, others error) {
	kept := slices.DeleteFunc(slices.Clone(vs.Spec.GetHttp()), func(h *networkingv1.HTTPRoute) bool {
		return slices.Contains(old, h.GetName())
	})
	var mine, theirs misfits
	misfit := func(route string, err error) {
		if route == own {
			mine = append(mine, err)
		} else {
			theirs = append(theirs, err)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(want)) {
		at := slices.IndexFunc(kept, func(h *networkingv1.HTTPRoute) bool { return h.GetName() == name })
		if at < 0 {
			misfit(name, fmt.Errorf("virtualservice %s/%s route %q, mirrored by previews: %w", vs.Namespace, vs.Name, name, ErrRouteNotFound))
			continue
		}
		var add []*networkingv1.HTTPRoute
		for _, mr := range want[name] {
			if findRoute(kept, mr.Name) != nil {
				misfit(name, fmt.Errorf("virtualservice %s/%s route %q: %w", vs.Namespace, vs.Name, mr.Name, ErrRouteTaken))
				continue
			}
			route, err := mirroringRoute(kept[at], mr)
			if err != nil {
				misfit(name, fmt.Errorf("virtualservice %s/%s: %w", vs.Namespace, vs.Name, err))
				continue
			}
			add = append(add, route)
			placed = append(placed, mr.Name)
		}
		kept = slices.Insert(kept, at, add...)
	}
	vs.Spec.Http = kept
	return placed, mine.err(), theirs.err()
}

// mirroringRoute is the production route narrowed to one condition, copying
// as it did (its mirror and mirrors) and to each preview that asked.
func mirroringRoute(production *networkingv1.HTTPRoute, mr traffic.MirroringRoute) (*networkingv1.HTTPRoute, error) {
	route, err := narrowed(production, mr.Name, []traffic.RequestMatch{mr.Match})
	if err != nil {
		return nil, err
	}
	if m := production.GetMirror(); m != nil {
		// Istio takes mirror or mirrors, not both: production's own copy
		// becomes an entry of the list (no percentage is every request).
		own := &networkingv1.HTTPMirrorPolicy{Destination: proto.Clone(m).(*networkingv1.Destination)}
		if p := production.GetMirrorPercentage(); p != nil {
			own.Percentage = proto.Clone(p).(*networkingv1.Percent)
		}
		route.Mirrors = append(route.Mirrors, own)
	}
	for _, m := range production.GetMirrors() {
		route.Mirrors = append(route.Mirrors, proto.Clone(m).(*networkingv1.HTTPMirrorPolicy))
	}
	for _, m := range mr.Mirrors {
		dst := &networkingv1.Destination{Host: m.Host}
		if m.Port != 0 {
			dst.Port = &networkingv1.PortSelector{Number: uint32(m.Port)}
		}
		route.Mirrors = append(route.Mirrors, &networkingv1.HTTPMirrorPolicy{Destination: dst, Percentage: &networkingv1.Percent{Value: float64(m.Percentage)}})
	}
	return route, nil
}

// keepMirroring, in a Rollout's write, puts the mirroring routes back on vs
// copied from the production routes as they are now (at the new weights);
// owned and added gain their names, for vsPatch. It never stops the
// Rollout: what cannot be placed is left out (those copies stop), and with
// the previews' record unreadable every mirroring route goes, which the
// previews report on their own writes.
func keepMirroring(vs *istiov1.VirtualService, owned, added []string) ([]string, []string) {
	old := placedRoutes(vs)
	rec, err := readPreviews(vs)
	if err != nil {
		rec = nil
	}
	if len(old) == 0 && len(rec) == 0 {
		return owned, added
	}
	placed, _, _ := placeMirroring(vs, old, mirroring(rec), "")
	setAnnotation(vs, annotationMirroringRoutes, strings.Join(placed, ","))
	return append(slices.Clone(owned), old...), append(slices.Clone(added), placed...)
}

// previewPatch returns the patch that records owner's mirror of route (nil
// removes it) and puts the mirroring routes every recorded preview asks for.
// A misfit of owner's own route means nothing is written, unless it is
// removing itself.
func previewPatch(vs *istiov1.VirtualService, owner, route string, want *traffic.PreviewMirror) (jsonPatch, error) {
	after := vs.DeepCopy()
	old := placedRoutes(after)
	rec, err := readPreviews(after)
	if err != nil && want != nil {
		return nil, err
	}
	if err != nil {
		// Taking a mirror away must not wait for a person to repair the
		// record: every mirroring route goes with it, and the previews still
		// allowed put theirs back on their next write.
		rec = map[string]previewWant{}
	}
	if want == nil {
		delete(rec, owner)
	} else {
		w := *want
		w.Owner = ""
		rec[owner] = previewWant{Route: route, Mirror: w}
	}
	placed, ownErr, _ := placeMirroring(after, old, mirroring(rec), route)
	if ownErr != nil && want != nil {
		return nil, ownErr
	}
	if err := writePreviews(after, rec, placed); err != nil {
		return nil, err
	}
	return vsPatch(vs, after, old, placed)
}
