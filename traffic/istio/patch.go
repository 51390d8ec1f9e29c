package istio

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"
	networkingv1 "istio.io/api/networking/v1"
	istiov1 "istio.io/client-go/pkg/apis/networking/v1"

	"github.com/tugboatdev/tugboat/traffic"
)

// jsonPatch is an RFC 6902 JSON patch. Tugboat writes the mesh objects as
// patches that carry only the fields it owns: the compiled Istio types drop
// the fields they do not know (a newer Istio's) and omit a weight of 0, so an
// Update of the typed object would erase the first and show the second as
// drift to GitOps tools.
type jsonPatch []op

// op is one operation of a JSON patch.
type op struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value,omitempty"` // nil only for remove
}

func (p *jsonPatch) test(path string, v any) { *p = append(*p, op{Op: "test", Path: path, Value: v}) }

// add sets an object's member, whether it is there or not (replace would fail
// on a weight the user left out), or inserts into an array.
func (p *jsonPatch) add(path string, v any) { *p = append(*p, op{Op: "add", Path: path, Value: v}) }

func (p *jsonPatch) remove(path string) { *p = append(*p, op{Op: "remove", Path: path}) }

// lockedTo makes p apply only to the object at resourceVersion, the one it
// was computed from: the typed object does not hold every field, nor does a
// stale read from the cache hold the latest routes. An empty patch stays
// empty: there is nothing to write.
func (p jsonPatch) lockedTo(resourceVersion string) jsonPatch {
	if len(p) == 0 {
		return nil
	}
	return append(jsonPatch{{Op: "test", Path: "/metadata/resourceVersion", Value: resourceVersion}}, p...)
}

// pointer is the JSON pointer (RFC 6901) to the member named by parts.
func pointer(parts ...any) string {
	var b strings.Builder
	for _, part := range parts {
		b.WriteByte('/')
		b.WriteString(pointerEscape.Replace(fmt.Sprint(part)))
	}
	return b.String()
}

var pointerEscape = strings.NewReplacer("~", "~0", "/", "~1")

// errBeyondPatch means Rewrite changed the VirtualService in a way the patch
// does not carry; it is a bug, and nothing is written.
var errBeyondPatch = errors.New("the rewrite changed more than Tugboat writes")

// routesPatch returns the patch that makes vs, as read, carry want for the
// Rollout m names; vs is left as it is. It performs no I/O. A misfit error
// comes with a patch only when want.AllStable(), as Rewrite's does.
func routesPatch(vs *istiov1.VirtualService, m traffic.Mesh, d Destinations, want traffic.Desired) (jsonPatch, error) {
	after := vs.DeepCopy()
	var left misfits
	owned, recErr := ownedRoutes(after, m.Owner)
	if recErr != nil {
		if !want.AllStable() {
			return nil, recErr
		}
		left = append(left, recErr)
	}
	if _, err := Rewrite(after, Routes{Managed: m.Routes, Owned: owned}, d, want); err != nil {
		if !want.AllStable() {
			return nil, err
		}
		left = append(left, err)
	}
	added := addedNames(want)
	if recErr == nil { // an unreadable record is left as it is
		if err := recordAdded(after, m.Owner, added); err != nil {
			return nil, err
		}
	}
	// The previews' mirroring routes copy the production routes' weights:
	// they move with them, in the same write.
	owned, added = keepMirroring(after, owned, added)
	patch, err := vsPatch(vs, after, owned, added)
	if err != nil {
		return nil, err
	}
	return patch, left.err()
}

// vsPatch returns the patch that makes the VirtualService read as before
// into after, when after is before as Rewrite and recordAdded left it, given
// the owned routes Rewrite removed and the added routes it put in. It writes
// the weights that changed in the routes kept (explicitly, 0 included), the
// owned routes removed and the added routes put in (unless they are already
// there as wanted), and the record annotations; nothing else, so every other
// field, known to the typed object or not, stays as it is on the server.
// Each route touched is first tested by name at its index.
func vsPatch(before, after *istiov1.VirtualService, owned, added []string) (jsonPatch, error) {
	b, a := before.Spec.GetHttp(), after.Spec.GetHttp()
	removed, keptB := partition(b, owned)
	put, keptA := partition(a, added)
	if len(keptA) != len(keptB) {
		return nil, fmt.Errorf("virtualservice %s/%s: %d of %d routes kept: %w", before.Namespace, before.Name, len(keptA), len(keptB), errBeyondPatch)
	}
	var p jsonPatch
	for k, i := range keptB {
		if err := p.weights(i, b[i], a[keptA[k]]); err != nil {
			return nil, fmt.Errorf("virtualservice %s/%s route %d: %w", before.Namespace, before.Name, i, err)
		}
	}
	// Weights are set at the indices read; removing from the back keeps the
	// indices still to remove, and inserting from the front puts each added
	// route where after has it.
	if !sameRoutes(b, removed, a, put) {
		for _, i := range slices.Backward(removed) {
			p.test(pointer("spec", "http", i, "name"), b[i].GetName())
			p.remove(pointer("spec", "http", i))
		}
		for _, i := range put {
			p.add(pointer("spec", "http", i), a[i])
		}
	}
	p.annotations(before.Annotations, after.Annotations, annotationAddedRoutes, annotationHeaderRoutes, annotationPreviewMirrors, annotationMirroringRoutes)
	return p.lockedTo(before.ResourceVersion), nil
}

// partition returns the indices of the routes named in names, and of the others.
func partition(routes []*networkingv1.HTTPRoute, names []string) (in, out []int) {
	for i, h := range routes {
		if h.GetName() != "" && slices.Contains(names, h.GetName()) {
			in = append(in, i)
		} else {
			out = append(out, i)
		}
	}
	return in, out
}

// sameRoutes reports whether the routes removed from b are those put into a,
// at the same places.
func sameRoutes(b []*networkingv1.HTTPRoute, removed []int, a []*networkingv1.HTTPRoute, put []int) bool {
	return slices.Equal(removed, put) && !slices.ContainsFunc(removed, func(i int) bool { return !proto.Equal(b[i], a[i]) })
}

// weights sets the destination weights of route i that differ from b in a,
// where a must be b but for its weights.
func (p *jsonPatch) weights(i int, b, a *networkingv1.HTTPRoute) error {
	if len(b.GetRoute()) != len(a.GetRoute()) {
		return fmt.Errorf("destinations changed: %w", errBeyondPatch)
	}
	check := proto.Clone(b).(*networkingv1.HTTPRoute)
	tested := false
	for j, d := range a.GetRoute() {
		check.Route[j].Weight = d.GetWeight()
		if b.Route[j].GetWeight() == d.GetWeight() {
			continue
		}
		if !tested {
			p.test(pointer("spec", "http", i, "name"), b.GetName())
			tested = true
		}
		p.add(pointer("spec", "http", i, "route", j, "weight"), d.GetWeight())
	}
	if !proto.Equal(check, a) {
		return fmt.Errorf("more than weights changed: %w", errBeyondPatch)
	}
	return nil
}

// annotations sets or removes the keys whose values differ from before in
// after.
func (p *jsonPatch) annotations(before, after map[string]string, keys ...string) {
	if len(before) == 0 {
		// There is no map to add a member to; the typed object holds every
		// annotation, so the map is empty and can be put whole.
		put := map[string]string{}
		for _, k := range keys {
			if v, ok := after[k]; ok {
				put[k] = v
			}
		}
		if len(put) > 0 {
			p.add("/metadata/annotations", put)
		}
		return
	}
	for _, k := range keys {
		bv, had := before[k]
		av, has := after[k]
		switch {
		case has && (!had || av != bv):
			p.add(pointer("metadata", "annotations", k), av)
		case had && !has:
			p.remove(pointer("metadata", "annotations", k))
		}
	}
}

// subsetsPatch returns the patch that gives the stable and canary subsets of
// dr the labels m wants, and nothing else, with a misfit for each subset
// that is missing; the subsets there are patched even then.
func subsetsPatch(dr *istiov1.DestinationRule, m traffic.Mesh) (jsonPatch, error) {
	var p jsonPatch
	var missing misfits
	subsets := dr.Spec.GetSubsets()
	for _, want := range []struct {
		name   string
		labels map[string]string
	}{{m.StableSubset, m.StableLabels}, {m.CanarySubset, m.CanaryLabels}} {
		i := slices.IndexFunc(subsets, func(s *networkingv1.Subset) bool { return s.GetName() == want.name })
		if i < 0 {
			missing = append(missing, fmt.Errorf("destinationrule %s/%s subset %q: %w", dr.Namespace, dr.Name, want.name, ErrSubsetNotFound))
			continue
		}
		if maps.Equal(subsets[i].GetLabels(), want.labels) {
			continue
		}
		labels := maps.Clone(want.labels)
		if labels == nil {
			labels = map[string]string{}
		}
		p.test(pointer("spec", "subsets", i, "name"), want.name)
		p.add(pointer("spec", "subsets", i, "labels"), labels)
	}
	return p.lockedTo(dr.ResourceVersion), missing.err()
}
