package istio

import (
	"context"
	"fmt"
	"maps"
	"strings"

	"google.golang.org/protobuf/proto"
	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tugboatdev/tugboat/traffic"
)

// Router puts a rollout's desired traffic on its VirtualService and
// DestinationRule. It reads through the client's cache and writes each object
// at most once per call, and not at all when it already carries what is wanted.
type Router struct {
	Client client.Client
}

// Apply makes the mesh carry want. Errors that retrying cannot fix wrap
// traffic.ErrMisconfigured.
func (r *Router) Apply(ctx context.Context, m traffic.Mesh, want traffic.Desired) error {
	d := Destinations{Namespace: m.Namespace, StableHost: m.StableService, CanaryHost: m.CanaryService}
	if m.DestinationRule != "" {
		host, err := r.applySubsets(ctx, m)
		if err != nil {
			return err
		}
		d = Destinations{Namespace: m.Namespace, StableHost: host, CanaryHost: host, StableSubset: m.StableSubset, CanarySubset: m.CanarySubset}
	}
	var vs istiov1.VirtualService
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: m.Namespace, Name: m.VirtualService}, &vs); err != nil {
		return notFoundIsMisconfigured(err, "virtualservice", m.Namespace, m.VirtualService)
	}
	vs = *vs.DeepCopy()
	owned := strings.FieldsFunc(vs.Annotations[annotationHeaderRoutes], func(r rune) bool { return r == ',' })
	changed, err := Rewrite(&vs, Routes{Managed: m.Routes, Owned: owned}, d, want)
	if err != nil {
		return err
	}
	if recordAddedRoutes(&vs, addedNames(want)) {
		changed = true
	}
	if !changed {
		return nil
	}
	if err := r.Client.Update(ctx, &vs); err != nil {
		return fmt.Errorf("set split %s on virtualservice %s/%s: %w", want.Split, m.Namespace, m.VirtualService, err)
	}
	return nil
}

// annotationHeaderRoutes records, on the VirtualService, the routes Tugboat
// added (header and mirror routes), so that it removes exactly those and
// never a user's route (GitOps tools leave annotations they do not manage
// alone).
const annotationHeaderRoutes = "tugboat.dev/header-routes"

// recordAddedRoutes notes the added routes in force; it reports a change.
func recordAddedRoutes(vs *istiov1.VirtualService, names []string) bool {
	want := strings.Join(names, ",")
	if vs.Annotations[annotationHeaderRoutes] == want {
		return false
	}
	if want == "" {
		delete(vs.Annotations, annotationHeaderRoutes)
		return true
	}
	if vs.Annotations == nil {
		vs.Annotations = map[string]string{}
	}
	vs.Annotations[annotationHeaderRoutes] = want
	return true
}

// applySubsets keeps the stable and canary subsets selecting the right pods,
// and returns the DestinationRule's host.
func (r *Router) applySubsets(ctx context.Context, m traffic.Mesh) (string, error) {
	var dr istiov1.DestinationRule
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: m.Namespace, Name: m.DestinationRule}, &dr); err != nil {
		return "", notFoundIsMisconfigured(err, "destinationrule", m.Namespace, m.DestinationRule)
	}
	dr = *dr.DeepCopy()
	before := proto.Clone(&dr.Spec)
	for name, labels := range map[string]map[string]string{m.StableSubset: m.StableLabels, m.CanarySubset: m.CanaryLabels} {
		found := false
		for _, s := range dr.Spec.GetSubsets() {
			if s.GetName() == name {
				s.Labels, found = maps.Clone(labels), true
			}
		}
		if !found {
			return "", fmt.Errorf("destinationrule %s/%s subset %q: %w", m.Namespace, m.DestinationRule, name, ErrSubsetNotFound)
		}
	}
	if !proto.Equal(before, &dr.Spec) {
		if err := r.Client.Update(ctx, &dr); err != nil {
			return "", fmt.Errorf("set subsets of destinationrule %s/%s: %w", m.Namespace, m.DestinationRule, err)
		}
	}
	return dr.Spec.GetHost(), nil
}

func notFoundIsMisconfigured(err error, kind, ns, name string) error {
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("%s %s/%s: %w: not found", kind, ns, name, traffic.ErrMisconfigured)
	}
	return fmt.Errorf("get %s %s/%s: %w", kind, ns, name, err)
}
