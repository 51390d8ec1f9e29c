package istio

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	networkingv1 "istio.io/api/networking/v1"
	istiov1 "istio.io/client-go/pkg/apis/networking/v1"

	"github.com/tugboatdev/tugboat/traffic"
)

// annotationPreviewMirrors records, on the VirtualService, what each
// preview mirroring one of its routes wants: a JSON object from owner to
// its route and mirror. The routes that carry the copies (see
// traffic.MirroringRoutes) are a function of this record and of the
// production routes, so that whichever owner writes, a preview or a Rollout
// moving the weights those routes copy, puts the same routes in one write,
// and no owner removes another's.
const annotationPreviewMirrors = "tugboat.dev/preview-mirrors"

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
		return nil, fmt.Errorf("virtualservice %s/%s annotation %s: %w: %w", vs.Namespace, vs.Name, annotationPreviewMirrors, ErrRecordUnreadable, err)
	}
	if rec == nil {
		rec = map[string]previewWant{}
	}
	return rec, nil
}

func writePreviews(vs *istiov1.VirtualService, rec map[string]previewWant) error {
	if len(rec) == 0 {
		delete(vs.Annotations, annotationPreviewMirrors)
		return nil
	}
	v, err := json.Marshal(rec) // keys sorted: the same record is the same string
	if err != nil {
		return err
	}
	if vs.Annotations == nil {
		vs.Annotations = map[string]string{}
	}
	vs.Annotations[annotationPreviewMirrors] = string(v)
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

func mirroringNames(m map[string][]traffic.MirroringRoute) []string {
	var names []string
	for _, route := range slices.Sorted(maps.Keys(m)) {
		for _, r := range m[route] {
			names = append(names, r.Name)
		}
	}
	return names
}

// placeMirroring removes the routes named in old and puts, just before each
// production route, the mirroring routes want has for it, copied from that
// route as it now is (match, destinations and weights, retries...),
// narrowed to their condition, with their mirrors. A production route that
// is gone gets none, and the misfit is returned.
func placeMirroring(vs *istiov1.VirtualService, old []string, want map[string][]traffic.MirroringRoute) error {
	kept := slices.DeleteFunc(slices.Clone(vs.Spec.GetHttp()), func(h *networkingv1.HTTPRoute) bool {
		return slices.Contains(old, h.GetName())
	})
	var left misfits
	for _, name := range slices.Sorted(maps.Keys(want)) {
		at := slices.IndexFunc(kept, func(h *networkingv1.HTTPRoute) bool { return h.GetName() == name })
		if at < 0 {
			left = append(left, fmt.Errorf("virtualservice %s/%s route %q, mirrored by previews: %w", vs.Namespace, vs.Name, name, ErrRouteNotFound))
			continue
		}
		var add []*networkingv1.HTTPRoute
		for _, mr := range want[name] {
			route, err := mirroringRoute(kept[at], mr)
			if err != nil {
				left = append(left, fmt.Errorf("virtualservice %s/%s: %w", vs.Namespace, vs.Name, err))
				continue
			}
			add = append(add, route)
		}
		kept = slices.Insert(kept, at, add...)
	}
	vs.Spec.Http = kept
	return left.err()
}

// mirroringRoute is the production route narrowed to one condition, with a
// copy to each preview that asked for it.
func mirroringRoute(production *networkingv1.HTTPRoute, mr traffic.MirroringRoute) (*networkingv1.HTTPRoute, error) {
	route, err := narrowed(production, mr.Name, []traffic.RequestMatch{mr.Match})
	if err != nil {
		return nil, err
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

// keepMirroring puts the mirroring routes the record asks for back on vs,
// copied from the production routes as they are now; owned and added
// gain their names, for vsPatch.
func keepMirroring(vs *istiov1.VirtualService, owned, added []string) ([]string, []string, error) {
	rec, err := readPreviews(vs)
	if err != nil {
		return owned, added, err
	}
	if len(rec) == 0 {
		return owned, added, nil
	}
	m := mirroring(rec)
	names := mirroringNames(m)
	err = placeMirroring(vs, names, m)
	return append(slices.Clone(owned), names...), append(slices.Clone(added), names...), err
}

// previewPatch returns the patch that records owner's mirror of route (nil
// removes it) and puts the mirroring routes every recorded preview asks for.
func previewPatch(vs *istiov1.VirtualService, owner, route string, want *traffic.PreviewMirror) (jsonPatch, error) {
	after := vs.DeepCopy()
	rec, err := readPreviews(after)
	if err != nil {
		return nil, err
	}
	old := mirroringNames(mirroring(rec))
	if want == nil {
		delete(rec, owner)
	} else {
		w := *want
		w.Owner = ""
		rec[owner] = previewWant{Route: route, Mirror: w}
	}
	m := mirroring(rec)
	placeErr := placeMirroring(after, old, m)
	if err := writePreviews(after, rec); err != nil {
		return nil, err
	}
	patch, err := vsPatch(vs, after, old, mirroringNames(m))
	if err != nil {
		return nil, err
	}
	return patch, placeErr
}
