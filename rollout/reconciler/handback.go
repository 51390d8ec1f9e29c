package reconciler

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/rollout"
	"github.com/tugboatdev/tugboat/traffic"
)

// finalizer holds a deleted Rollout until the target Deployment serves its
// traffic again: deleting a Rollout never takes an application down.
const finalizer = "tugboat.dev/hand-back"

// ensureFinalizer adds the hand-back finalizer, once in a Rollout's life.
func (r *Reconciler) ensureFinalizer(ctx context.Context, ro *v1alpha1.Rollout) error {
	if controllerutil.ContainsFinalizer(ro, finalizer) {
		return nil
	}
	patch := client.MergeFromWithOptions(ro.DeepCopy(), client.MergeFromWithOptimisticLock{})
	controllerutil.AddFinalizer(ro, finalizer)
	if err := r.Client.Patch(ctx, ro, patch); err != nil {
		return fmt.Errorf("add finalizer to rollout %s/%s: %w", ro.Namespace, ro.Name, err)
	}
	return nil
}

// observeDeletion reads what the hand-back of a deleted Rollout needs
// (rollout.Deletion); like observe, it writes nothing.
func (r *Reconciler) observeDeletion(ctx context.Context, ro *v1alpha1.Rollout, p rollout.Progress) (*world, error) {
	w := &world{services: map[string]*corev1.Service{}, stableRevision: p.StableRevision}
	o := &w.observed
	o.Now, o.Deleting = r.Now(), true
	d := &o.Deletion
	d.TargetName, d.StableService, d.CanaryService = ro.Spec.TargetRef.Name, stableServiceName(ro), canaryServiceName(ro)
	var target appsv1.Deployment
	gone, err := r.missing(ctx, client.ObjectKey{Namespace: ro.Namespace, Name: ro.Spec.TargetRef.Name}, &target)
	if err != nil {
		return nil, err
	}
	if gone || !target.DeletionTimestamp.IsZero() || !matchLabelsOnly(target.Spec.Selector) {
		d.TargetGone = true
	} else {
		w.target = &target
		o.TargetRevision = rollout.Revision(target.Spec.Template)
		d.TargetReplicas = ptr.Deref(target.Spec.Replicas, 1)
		d.TargetServing = serving(&target)
		d.GivenBack = target.Annotations[annotationHandedBack] == string(ro.UID)
	}
	var primary appsv1.Deployment
	primaryGone, err := r.missing(ctx, client.ObjectKey{Namespace: ro.Namespace, Name: ro.Name + primarySuffix}, &primary)
	if err != nil {
		return nil, err
	}
	if !primaryGone && isManaged(&primary, ro) {
		w.primary = &primary
		d.Primary, d.PrimaryDeleting = true, !primary.DeletionTimestamp.IsZero()
		d.PrimaryReplicas = ptr.Deref(primary.Spec.Replicas, 1)
		o.PrimaryRevision = primary.Annotations[annotationRevision]
	}
	for _, name := range []string{stableServiceName(ro), canaryServiceName(ro)} {
		var svc corev1.Service
		gone, err := r.missing(ctx, client.ObjectKey{Namespace: ro.Namespace, Name: name}, &svc)
		if err != nil {
			return nil, err
		}
		if !gone && name == stableServiceName(ro) {
			d.StableOnTarget = w.target != nil && maps.Equal(svc.Spec.Selector, w.target.Spec.Selector.MatchLabels)
		}
		if !gone && (isManaged(&svc, ro) || named(ro, name)) {
			w.services[name] = &svc
		}
	}
	w.disown = ownedBy(ro, w)
	var rollbackCanary appsv1.Deployment
	rollbackGone, err := r.missing(ctx, client.ObjectKey{Namespace: ro.Namespace, Name: rollbackCanaryName(ro)}, &rollbackCanary)
	if err != nil {
		return nil, err
	}
	if !rollbackGone && isManaged(&rollbackCanary, ro) {
		w.rollbackCanary = &rollbackCanary
	}
	var vs istiov1.VirtualService
	vsGone, err := r.missing(ctx, client.ObjectKey{Namespace: ro.Namespace, Name: ro.Spec.TrafficRouting.Istio.VirtualService.Name}, &vs)
	if err != nil {
		return nil, err
	}
	d.MeshGone = vsGone || !vs.DeletionTimestamp.IsZero()
	return w, nil
}

// serving is how many Ready pods of its current template d runs, when it
// runs no others; 0 otherwise.
func serving(d *appsv1.Deployment) int32 {
	s := d.Status
	if d.Generation != s.ObservedGeneration || s.Replicas != s.UpdatedReplicas {
		return 0
	}
	return min(s.UpdatedReplicas, s.ReadyReplicas)
}

// actHandBack carries out a hand-back plan in act's order: routes, the
// target's one-time changes and the Services (which re-running the plan
// repeats harmlessly), the status, then what cannot be undone: primary and
// the Services deleted, the Rollout let go.
func (r *Reconciler) actHandBack(ctx context.Context, ro *v1alpha1.Rollout, w *world, plan rollout.Plan) (reconcile.Result, error) {
	hb := plan.HandBack
	if !controllerutil.ContainsFinalizer(ro, finalizer) || hb == nil {
		return reconcile.Result{}, nil
	}
	for _, o := range w.disown {
		if err := r.disown(ctx, o, ro); err != nil {
			return reconcile.Result{}, err
		}
	}
	runs, err := r.listRuns(ctx, ro)
	if err != nil {
		return reconcile.Result{}, err
	}
	if err := r.terminateRuns(ctx, ro, runs, rollout.Progress{}); err != nil {
		return reconcile.Result{}, err
	}
	if hb.RouteTo != 0 && plan.Traffic != nil {
		if err := r.routeAllStable(ctx, r.handBackMesh(ro, w, hb.RouteTo)); err != nil {
			return reconcile.Result{}, err
		}
	}
	if hb.GiveBack && w.target != nil {
		if err := r.giveBack(ctx, ro, w, hb); err != nil {
			return reconcile.Result{}, err
		}
	}
	if hb.ServicesToTarget && w.target != nil {
		for _, name := range []string{stableServiceName(ro), canaryServiceName(ro)} {
			if err := r.handBackService(ctx, ro, w.services[name], w.target.Spec.Selector.MatchLabels); err != nil {
				return reconcile.Result{}, err
			}
		}
	}
	if !hb.Release {
		return r.finish(ctx, ro, plan)
	}
	if w.rollbackCanary != nil {
		// A rollback through the steps under way: traffic left it above.
		if err := r.deleteRollbackCanary(ctx, ro, w.rollbackCanary); err != nil {
			return reconcile.Result{}, err
		}
	}
	if hb.DeletePrimary && w.primary != nil {
		if err := r.Client.Delete(ctx, w.primary, client.Preconditions{UID: &w.primary.UID}); client.IgnoreNotFound(err) != nil {
			return reconcile.Result{}, fmt.Errorf("delete primary %s/%s: %w", w.primary.Namespace, w.primary.Name, err)
		}
	}
	if hb.DeleteServices {
		for name, svc := range w.services {
			if !isManaged(svc, ro) || named(ro, name) {
				continue // the user's own Services stay
			}
			if err := r.Client.Delete(ctx, svc, client.Preconditions{UID: &svc.UID}); client.IgnoreNotFound(err) != nil {
				return reconcile.Result{}, fmt.Errorf("delete service %s/%s: %w", svc.Namespace, svc.Name, err)
			}
		}
	}
	eventType := corev1.EventTypeNormal
	if hb.RouteTo == rollout.PrimaryPods {
		eventType = corev1.EventTypeWarning // primary left serving, for the user to remove
	}
	r.Recorder.Eventf(ro, nil, eventType, string(plan.Event()), "Delete", "%s", plan.Message)
	return reconcile.Result{}, r.letGo(ctx, ro)
}

// handBackMesh is the mesh with stable selecting the given pods.
func (r *Reconciler) handBackMesh(ro *v1alpha1.Rollout, w *world, to rollout.Pods) traffic.Mesh {
	var primary, target map[string]string
	if w.primary != nil && w.primary.Spec.Selector != nil {
		primary = w.primary.Spec.Selector.MatchLabels
	}
	if w.target != nil {
		target = w.target.Spec.Selector.MatchLabels
	}
	switch {
	case to == rollout.TargetPods:
		return meshOf(ro, target, target)
	case target == nil:
		return meshOf(ro, primary, primary)
	}
	return meshOf(ro, primary, target)
}

// annotationHandedBack on the target names the Rollout (by UID) that handed
// it back, so that the one-time changes are made once.
const annotationHandedBack = "tugboat.dev/handed-back-by"

// giveBack makes the one-time changes of a hand-back to the target: at
// least primary's size and, when the plan says so, primary's template back
// (the application keeps running what was serving). Later changes by the
// target's owners are theirs.
func (r *Reconciler) giveBack(ctx context.Context, ro *v1alpha1.Rollout, w *world, hb *rollout.HandBack) error {
	target := w.target
	base := target.DeepCopy()
	switch {
	case hb.RestoreTemplate && hb.FromRecord && w.stableTemplate != nil:
		target.Spec.Template = *w.stableTemplate.DeepCopy()
	case hb.RestoreTemplate && !hb.FromRecord && w.primary != nil:
		target.Spec.Template = recordedForm(w.primary)
	}
	target.Spec.Replicas = ptr.To(max(ptr.Deref(target.Spec.Replicas, 1), hb.Replicas))
	if target.Annotations == nil {
		target.Annotations = map[string]string{}
	}
	target.Annotations[annotationHandedBack] = string(ro.UID)
	if err := r.Client.Patch(ctx, target, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("hand deployment %s/%s back at %d replicas: %w", target.Namespace, target.Name, hb.Replicas, err)
	}
	return nil
}

// routeAllStable sends all traffic to stable. A VirtualService or DestinationRule that
// is gone or no longer fits (deleted along with the Rollout, say) has no
// traffic left to move, and must not hold the Rollout.
func (r *Reconciler) routeAllStable(ctx context.Context, m traffic.Mesh) error {
	if err := r.Router.Apply(ctx, m, traffic.AtRest()); err != nil && !errors.Is(err, traffic.ErrMisconfigured) {
		return err
	}
	return nil
}

// handBackService points a Service at the target's pods, and drops any owner
// reference to the Rollout, so that it outlives it.
func (r *Reconciler) handBackService(ctx context.Context, ro *v1alpha1.Rollout, svc *corev1.Service, selector map[string]string) error {
	if svc == nil {
		return nil
	}
	base := svc.DeepCopy()
	svc.Spec.Selector = maps.Clone(selector)
	svc.OwnerReferences = slices.DeleteFunc(svc.OwnerReferences, func(o metav1.OwnerReference) bool { return o.UID == ro.UID })
	if maps.Equal(base.Spec.Selector, svc.Spec.Selector) && len(base.OwnerReferences) == len(svc.OwnerReferences) {
		return nil
	}
	if err := r.Client.Patch(ctx, svc, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("hand service %s/%s back to the target: %w", svc.Namespace, svc.Name, err)
	}
	return nil
}

// letGo removes the finalizer; garbage collection does the rest.
func (r *Reconciler) letGo(ctx context.Context, ro *v1alpha1.Rollout) error {
	patch := client.MergeFromWithOptions(ro.DeepCopy(), client.MergeFromWithOptimisticLock{})
	controllerutil.RemoveFinalizer(ro, finalizer)
	if err := r.Client.Patch(ctx, ro, patch); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("remove finalizer from rollout %s/%s: %w", ro.Namespace, ro.Name, err)
	}
	return nil
}

// missing reads key into o and reports whether it does not exist.
func (r *Reconciler) missing(ctx context.Context, key client.ObjectKey, o client.Object) (bool, error) {
	err := r.Client.Get(ctx, key, o)
	if apierrors.IsNotFound(err) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("get %T %s: %w", o, key, err)
	}
	return false, nil
}
