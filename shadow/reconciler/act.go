package reconciler

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"
	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
	istiov1alpha3 "istio.io/client-go/pkg/apis/networking/v1alpha3"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/shadow"
	"github.com/tugboatdev/tugboat/traffic"
)

// act carries out an outcome in an order that never lets a copy reach the
// preview unstripped: with the mirror on, the sanitizer is in place before
// the mirror is written; with it off, the mirror goes before the sanitizer.
// Then the analysis run is created, or stopped once it is no longer wanted.
func (r *Reconciler) act(ctx context.Context, p *v1alpha1.Preview, w *world, out shadow.Outcome) error {
	owner := shadow.OwnerOf(p.Namespace, p.Name)
	if out.Mirror {
		if err := r.ensureFilter(ctx, p, w); err != nil {
			return err
		}
		for _, s := range w.placed {
			if !s.same(w.source) {
				if err := r.removeMirror(ctx, owner, s); err != nil {
					return err
				}
			}
		}
		m := shadow.Plan(w.request, w.observed.Decision, shadow.TargetOf(p), shadow.MatchOf(p.Spec.Match))
		err := r.Router.ApplyPreview(ctx, w.source.namespace, w.source.vs, w.source.route, owner,
			&traffic.PreviewMirror{Host: m.Host, Port: m.Port, Percentage: m.Percentage, Match: m.Match})
		if errors.Is(err, traffic.ErrMisconfigured) {
			return &problemError{msg: fmt.Sprintf("the mirror cannot be put on %s: %v", shadow.SourceText(w.source.namespace, w.source.vs, w.source.route), err)}
		}
		if err != nil {
			return err
		}
	} else {
		for _, s := range w.placed {
			if err := r.removeMirror(ctx, owner, s); err != nil {
				return err
			}
		}
		if err := r.deleteFilter(ctx, p); err != nil {
			return err
		}
	}
	return r.actRun(ctx, p, w, out)
}

// same reports whether two sources are the same route.
func (s source) same(o source) bool {
	return s.namespace == o.namespace && s.vs == o.vs && s.route == o.route
}

// removeMirror takes owner's mirror off a route. A VirtualService that is
// gone took the mirror with it; one whose record cannot be read leaves the
// sanitizer in place, since copies may still flow.
func (r *Reconciler) removeMirror(ctx context.Context, owner string, s source) error {
	var vs istiov1.VirtualService
	switch err := r.Client.Get(ctx, client.ObjectKey{Namespace: s.namespace, Name: s.vs}, &vs); {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("get virtualservice %s/%s: %w", s.namespace, s.vs, err)
	}
	err := r.Router.ApplyPreview(ctx, s.namespace, s.vs, s.route, owner, nil)
	if errors.Is(err, traffic.ErrMisconfigured) {
		return &problemError{msg: fmt.Sprintf("the mirror cannot be taken off %s: %v", shadow.SourceText(s.namespace, s.vs, s.route), err)}
	}
	return err
}

func (r *Reconciler) ensureFilter(ctx context.Context, p *v1alpha1.Preview, w *world) error {
	want, err := sanitizerFilter(p, w.selector, w.sanitizer)
	if err != nil {
		return err
	}
	var have istiov1alpha3.EnvoyFilter
	switch err := r.Client.Get(ctx, client.ObjectKeyFromObject(want), &have); {
	case apierrors.IsNotFound(err):
		if err := controllerutil.SetControllerReference(p, want, r.Client.Scheme()); err != nil {
			return err
		}
		if err := r.Client.Create(ctx, want); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create envoyfilter %s/%s: %w", want.Namespace, want.Name, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("get envoyfilter %s/%s: %w", want.Namespace, want.Name, err)
	case !metav1.IsControlledBy(&have, p):
		return &problemError{msg: fmt.Sprintf("envoyfilter %s/%s exists and is not this Preview's", have.Namespace, have.Name)}
	}
	if proto.Equal(&have.Spec, &want.Spec) && equality.Semantic.DeepEqual(have.Labels, want.Labels) {
		return nil
	}
	have.Spec = *want.Spec.DeepCopy()
	have.Labels = want.Labels
	if err := r.Client.Update(ctx, &have); err != nil {
		return fmt.Errorf("update envoyfilter %s/%s: %w", have.Namespace, have.Name, err)
	}
	return nil
}

func (r *Reconciler) deleteFilter(ctx context.Context, p *v1alpha1.Preview) error {
	var have istiov1alpha3.EnvoyFilter
	switch err := r.Client.Get(ctx, client.ObjectKey{Namespace: p.Namespace, Name: filterName(p)}, &have); {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("get envoyfilter %s/%s: %w", p.Namespace, filterName(p), err)
	case !metav1.IsControlledBy(&have, p):
		return nil
	}
	if err := r.Client.Delete(ctx, &have, client.Preconditions{UID: &have.UID}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete envoyfilter %s/%s: %w", have.Namespace, have.Name, err)
	}
	return nil
}

// actRun creates the analysis run the outcome measures with, or stops a
// run the outcome no longer needs (the ttl ran out, the policy withdrew).
func (r *Reconciler) actRun(ctx context.Context, p *v1alpha1.Preview, w *world, out shadow.Outcome) error {
	if w.run == nil {
		return nil
	}
	if w.createRun {
		if !out.Measure {
			return nil
		}
		if err := controllerutil.SetControllerReference(p, w.run, r.Client.Scheme()); err != nil {
			return err
		}
		if err := r.Client.Create(ctx, w.run); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create analysisrun %s/%s: %w", w.run.Namespace, w.run.Name, err)
		}
		return nil
	}
	if out.Measure || w.run.Spec.Terminate || w.run.Status.Phase.Completed() {
		return nil
	}
	patch := client.MergeFrom(w.run.DeepCopy())
	w.run.Spec.Terminate = true
	if err := r.Client.Patch(ctx, w.run, patch); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("terminate analysisrun %s/%s: %w", w.run.Namespace, w.run.Name, err)
	}
	return nil
}
