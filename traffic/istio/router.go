package istio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tugboatdev/tugboat/traffic"
)

// Router puts a rollout's desired traffic on its VirtualService and
// DestinationRule. It reads through the client's cache and writes each object
// at most once per call, as a JSON patch of only the fields Tugboat owns, and
// not at all when it already carries what is wanted.
type Router struct {
	Client client.Client
}

// Apply makes the mesh carry want. Errors that retrying cannot fix (a route,
// subset or object missing, a destination that is neither stable nor canary)
// wrap traffic.ErrMisconfigured.
//
// When want.AllStable() (an abort, or the end of a rollout), such an error
// does not stop the rest; callers rely on this to carry on and report what
// could not be done. Apply sends every managed route that exists and fits to
// stable, removes every route m.Owner added, and fixes the subsets that
// exist; when the DestinationRule is gone it matches route destinations by
// subset name alone. It then returns an error wrapping
// traffic.ErrMisconfigured that names each thing it could not do. For any
// other want, such an error means nothing was written.
//
// A write computed from a stale read fails (the patch tests the
// resourceVersion read) with a conflict, for a retry.
func (r *Router) Apply(ctx context.Context, m traffic.Mesh, want traffic.Desired) error {
	var left misfits
	// keep notes a misfit and carries on; any other error stops Apply.
	keep := func(err error) error {
		if errors.Is(err, traffic.ErrMisconfigured) {
			left = append(left, err)
			return nil
		}
		return err
	}
	d, subsets, err := r.planSubsets(ctx, m)
	if err := keep(err); err != nil {
		return err
	}
	routes, err := r.planRoutes(ctx, m, d, want)
	if err := keep(err); err != nil {
		return err
	}
	if len(left) > 0 && !want.AllStable() {
		return left.err()
	}
	// The subsets select the right pods before traffic moves to them.
	for _, w := range []*write{subsets, routes} {
		if err := w.do(ctx, r.Client); err != nil {
			return err
		}
	}
	return left.err()
}

// write is a patch to one object, and what it does, for errors.
type write struct {
	obj      client.Object
	resource string // as in virtualservices
	patch    jsonPatch
	what     string
}

func (w *write) do(ctx context.Context, c client.Client) error {
	if w == nil || len(w.patch) == 0 {
		return nil
	}
	data, err := json.Marshal(w.patch)
	if err != nil {
		return fmt.Errorf("%s: encode patch: %w", w.what, err)
	}
	err = c.Patch(ctx, w.obj, client.RawPatch(types.JSONPatchType, data))
	if notAsRead(err) {
		err = apierrors.NewConflict(schema.GroupResource{Group: istiov1.SchemeGroupVersion.Group, Resource: w.resource}, w.obj.GetName(), errChangedSinceRead)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", w.what, err)
	}
	return nil
}

var errChangedSinceRead = errors.New("it changed since it was read")

// notAsRead reports whether err is the API server refusing a JSON patch that
// does not apply to the object as it is: a test failed (the resourceVersion
// read is not the latest, as when the cache lags a write). That is a
// conflict, as an Update from a stale read is, but it comes back as a bare
// 422, without the field causes of a failed validation.
func notAsRead(err error) bool {
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return false
	}
	s := status.Status()
	return s.Code == http.StatusUnprocessableEntity && (s.Details == nil || len(s.Details.Causes) == 0)
}

// planSubsets returns how the versions are addressed, and the write that
// keeps the stable and canary subsets selecting the right pods. A misfit
// error comes with what can still be done: without the DestinationRule, the
// destinations are the subsets of any host.
func (r *Router) planSubsets(ctx context.Context, m traffic.Mesh) (Destinations, *write, error) {
	if m.DestinationRule == "" {
		return Destinations{Namespace: m.Namespace, StableHost: m.StableService, CanaryHost: m.CanaryService}, nil, nil
	}
	d := Destinations{Namespace: m.Namespace, StableSubset: m.StableSubset, CanarySubset: m.CanarySubset}
	var dr istiov1.DestinationRule
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: m.Namespace, Name: m.DestinationRule}, &dr); err != nil {
		return d, nil, notFoundIsMisconfigured(err, "destinationrule", m.Namespace, m.DestinationRule)
	}
	d.StableHost, d.CanaryHost = dr.Spec.GetHost(), dr.Spec.GetHost()
	patch, err := subsetsPatch(&dr, m)
	return d, &write{obj: &dr, resource: "destinationrules", patch: patch, what: fmt.Sprintf("set subsets of destinationrule %s/%s", m.Namespace, m.DestinationRule)}, err
}

// planRoutes returns the write that makes the VirtualService carry want. A
// misfit error comes with a write only when want.AllStable().
func (r *Router) planRoutes(ctx context.Context, m traffic.Mesh, d Destinations, want traffic.Desired) (*write, error) {
	var vs istiov1.VirtualService
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: m.Namespace, Name: m.VirtualService}, &vs); err != nil {
		return nil, notFoundIsMisconfigured(err, "virtualservice", m.Namespace, m.VirtualService)
	}
	patch, err := routesPatch(&vs, m, d, want)
	if patch == nil {
		return nil, err
	}
	return &write{obj: &vs, resource: "virtualservices", patch: patch, what: fmt.Sprintf("set split %s on virtualservice %s/%s", want.Split, m.Namespace, m.VirtualService)}, err
}

func notFoundIsMisconfigured(err error, kind, ns, name string) error {
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("%s %s/%s: %w: not found", kind, ns, name, traffic.ErrMisconfigured)
	}
	return fmt.Errorf("get %s %s/%s: %w", kind, ns, name, err)
}

// ApplyPreview records owner's mirror of a production route of the
// VirtualService namespace/name (nil removes it) and puts the mirroring
// routes of every preview recorded there, in one write, or none when it
// carries them already. Other owners' routes and mirrors stay. Owner's
// route gone or not fitting wraps traffic.ErrMisconfigured and nothing is
// written, unless want is nil (the mirror goes whatever else is wrong);
// another preview's broken route never stops it.
func (r *Router) ApplyPreview(ctx context.Context, namespace, name, route, owner string, want *traffic.PreviewMirror) error {
	var vs istiov1.VirtualService
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &vs); err != nil {
		return notFoundIsMisconfigured(err, "virtualservice", namespace, name)
	}
	patch, err := previewPatch(&vs, owner, route, want)
	if err != nil {
		return err
	}
	w := &write{obj: &vs, resource: "virtualservices", patch: patch, what: fmt.Sprintf("mirror route %s of virtualservice %s/%s for %s", route, namespace, name, owner)}
	return w.do(ctx, r.Client)
}
