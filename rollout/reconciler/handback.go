package reconciler

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

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

// handBack gives a deleted Rollout's application back to its target
// Deployment, then lets the Rollout go:
//
//  1. all traffic to stable (primary); once, the target gets primary's
//     template back if it holds a revision whose rollout never completed,
//     and at least primary's size;
//  2. once the target is Ready, the stable Service (and subset) select the
//     target's pods instead of primary's;
//  3. primary is deleted; the Services stay, so that the VirtualService that
//     names them keeps working;
//  4. the finalizer goes.
//
// Primary and the Services carry no owner reference (see isManaged), so no
// deletion policy, foreground included, removes them before step 3. After
// step 1 the target is its owner's again: a GitOps tool or an autoscaler
// may change it, and the hand-back waits for what they set. A target that
// never gets Ready holds the Rollout, reported in status: letting go would
// leave no pods behind the traffic.
func (r *Reconciler) handBack(ctx context.Context, ro *v1alpha1.Rollout) (reconcile.Result, error) {
	if !controllerutil.ContainsFinalizer(ro, finalizer) {
		return reconcile.Result{}, nil
	}
	var target, primary appsv1.Deployment
	gone, err := r.missing(ctx, client.ObjectKey{Namespace: ro.Namespace, Name: ro.Spec.TargetRef.Name}, &target)
	if err != nil {
		return reconcile.Result{}, err
	}
	primaryGone, err := r.missing(ctx, client.ObjectKey{Namespace: ro.Namespace, Name: ro.Name + primarySuffix}, &primary)
	if err != nil {
		return reconcile.Result{}, err
	}
	hasPrimary := !primaryGone && isManaged(&primary, ro)
	// An earlier version's owner references would let garbage collection
	// take primary and the Services first.
	if hasPrimary {
		if err := r.disown(ctx, &primary, ro); err != nil {
			return reconcile.Result{}, err
		}
	}
	for _, name := range []string{stableServiceName(ro), canaryServiceName(ro)} {
		var svc corev1.Service
		if gone, err := r.missing(ctx, client.ObjectKey{Namespace: ro.Namespace, Name: name}, &svc); err != nil || gone {
			if err != nil {
				return reconcile.Result{}, err
			}
			continue
		}
		if err := r.disown(ctx, &svc, ro); err != nil {
			return reconcile.Result{}, err
		}
	}
	if err := r.terminateRuns(ctx, ro, rollout.Progress{}); err != nil {
		return reconcile.Result{}, err
	}
	if gone || !target.DeletionTimestamp.IsZero() || target.Spec.Selector == nil {
		return reconcile.Result{}, r.withoutTarget(ctx, ro, &primary, hasPrimary)
	}
	targetLabels := target.Spec.Selector.MatchLabels
	replicas := max(ptr.Deref(target.Spec.Replicas, 0), 1) // primary gone: whatever the target can do
	if hasPrimary {
		replicas = ptr.Deref(primary.Spec.Replicas, 1)
	}
	// Until the target serves, stable is primary, unless the Services were
	// handed over already (a step after that failed): never back to primary.
	var stable corev1.Service
	stableGone, err := r.missing(ctx, client.ObjectKey{Namespace: ro.Namespace, Name: stableServiceName(ro)}, &stable)
	if err != nil {
		return reconcile.Result{}, err
	}
	if hasPrimary && primary.DeletionTimestamp.IsZero() && (stableGone || !maps.Equal(stable.Spec.Selector, targetLabels)) {
		if err := r.route(ctx, meshOf(ro, primary.Spec.Selector.MatchLabels, targetLabels)); err != nil {
			return reconcile.Result{}, err
		}
	}
	if err := r.restoreStable(ctx, ro, &target, &primary, hasPrimary, replicas); err != nil {
		return reconcile.Result{}, err
	}
	want := max(1, min(replicas, ptr.Deref(target.Spec.Replicas, 1)))
	if !servesAt(&target, want) {
		msg := fmt.Sprintf("the Rollout is being deleted; deployment %s takes the traffic back once %d of its pods are Ready", target.Name, want)
		plan := rollout.Plan{Outcome: rollout.HandingBack, Message: msg, Next: rollout.ProgressFrom(ro.Status), Traffic: ptr.To(traffic.AtRest()), RequeueAfter: 30 * time.Second}
		return r.finish(ctx, ro, plan, nil)
	}
	if err := r.route(ctx, meshOf(ro, targetLabels, targetLabels)); err != nil {
		return reconcile.Result{}, err
	}
	for _, name := range []string{stableServiceName(ro), canaryServiceName(ro)} {
		if err := r.handBackService(ctx, ro, name, targetLabels); err != nil {
			return reconcile.Result{}, err
		}
	}
	if hasPrimary {
		if err := r.deletePrimary(ctx, &primary); err != nil {
			return reconcile.Result{}, err
		}
	}
	r.Recorder.Eventf(ro, nil, corev1.EventTypeNormal, string(rollout.HandingBack), "Delete",
		"deployment %s serves all traffic again through Services %s and %s", target.Name, stableServiceName(ro), canaryServiceName(ro))
	return reconcile.Result{}, r.letGo(ctx, ro)
}

// annotationHandedBack on the target names the Rollout (by UID) that handed
// it back, so that the one-time changes are made once.
const annotationHandedBack = "tugboat.dev/handed-back-by"

// restoreStable makes the one-time changes of a hand-back: the target gets
// primary's template when it holds a revision whose rollout never completed
// (the application keeps running what was serving), and at least primary's
// size. Later changes by the target's owners are theirs.
func (r *Reconciler) restoreStable(ctx context.Context, ro *v1alpha1.Rollout, target, primary *appsv1.Deployment, hasPrimary bool, replicas int32) error {
	if target.Annotations[annotationHandedBack] == string(ro.UID) {
		return nil
	}
	base := target.DeepCopy()
	stable, rev := ro.Status.StableRevision, rollout.Revision(target.Spec.Template)
	restore := hasPrimary && stable != "" && primary.Annotations[annotationRevision] == stable && rev != stable
	if restore {
		target.Spec.Template = targetTemplate(primary, target)
	}
	target.Spec.Replicas = ptr.To(max(ptr.Deref(target.Spec.Replicas, 1), replicas))
	if target.Annotations == nil {
		target.Annotations = map[string]string{}
	}
	target.Annotations[annotationHandedBack] = string(ro.UID)
	if err := r.Client.Patch(ctx, target, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("hand deployment %s/%s back at %d replicas: %w", target.Namespace, target.Name, replicas, err)
	}
	if restore {
		r.Recorder.Eventf(ro, target, corev1.EventTypeWarning, string(rollout.HandingBack), "Delete",
			"deployment %s got back stable revision %s: the rollout of revision %s never completed", target.Name, stable, rev)
	}
	return nil
}

// withoutTarget lets a Rollout whose target is gone go. When its
// VirtualService is gone too, the whole application is being deleted, and
// primary and the Services Tugboat created go with it. Otherwise primary may
// be all that serves (the target was deleted first): the routes Tugboat added
// are removed, and primary and the Services are left serving, with a Warning.
func (r *Reconciler) withoutTarget(ctx context.Context, ro *v1alpha1.Rollout, primary *appsv1.Deployment, hasPrimary bool) error {
	var vs istiov1.VirtualService
	vsGone, err := r.missing(ctx, client.ObjectKey{Namespace: ro.Namespace, Name: ro.Spec.TrafficRouting.Istio.VirtualService.Name}, &vs)
	if err != nil {
		return err
	}
	if !vsGone && vs.DeletionTimestamp.IsZero() && hasPrimary {
		if err := r.route(ctx, meshOf(ro, primary.Spec.Selector.MatchLabels, primary.Spec.Selector.MatchLabels)); err != nil {
			return err
		}
		r.Recorder.Eventf(ro, nil, corev1.EventTypeWarning, string(rollout.HandingBack), "Delete",
			"deployment %s is gone, so %s keeps serving through Services %s and %s; they are yours to remove",
			ro.Spec.TargetRef.Name, primary.Name, stableServiceName(ro), canaryServiceName(ro))
		return r.letGo(ctx, ro)
	}
	return r.removeAll(ctx, ro, primary, hasPrimary)
}

// removeAll deletes primary and the Services Tugboat created, when the
// application is being deleted along with the Rollout, and lets it go.
func (r *Reconciler) removeAll(ctx context.Context, ro *v1alpha1.Rollout, primary *appsv1.Deployment, hasPrimary bool) error {
	if hasPrimary {
		if err := r.deletePrimary(ctx, primary); err != nil {
			return err
		}
	}
	for _, name := range []string{stableServiceName(ro), canaryServiceName(ro)} {
		var svc corev1.Service
		gone, err := r.missing(ctx, client.ObjectKey{Namespace: ro.Namespace, Name: name}, &svc)
		if err != nil {
			return err
		}
		if gone || !isManaged(&svc, ro) || name == ro.Spec.Service.StableService || name == ro.Spec.Service.CanaryService {
			continue // the user's own Services stay
		}
		if err := r.Client.Delete(ctx, &svc, client.Preconditions{UID: &svc.UID}); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("delete service %s/%s: %w", svc.Namespace, svc.Name, err)
		}
	}
	return r.letGo(ctx, ro)
}

func (r *Reconciler) deletePrimary(ctx context.Context, primary *appsv1.Deployment) error {
	if err := r.Client.Delete(ctx, primary, client.Preconditions{UID: &primary.UID}); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("delete primary %s/%s: %w", primary.Namespace, primary.Name, err)
	}
	return nil
}

// servesAt reports whether d runs at least want Ready pods of its current
// template, and no others.
func servesAt(d *appsv1.Deployment, want int32) bool {
	s := d.Status
	return d.Generation == s.ObservedGeneration && s.UpdatedReplicas >= want && s.ReadyReplicas >= want &&
		s.Replicas == s.UpdatedReplicas
}

// route sends all traffic to stable. A VirtualService or DestinationRule that
// is gone or no longer fits (deleted along with the Rollout, say) has no
// traffic left to move, and must not hold the Rollout.
func (r *Reconciler) route(ctx context.Context, m traffic.Mesh) error {
	if err := r.Router.Apply(ctx, m, traffic.AtRest()); err != nil && !errors.Is(err, traffic.ErrMisconfigured) {
		return err
	}
	return nil
}

// handBackService points a Service at the target's pods, and drops any owner
// reference to the Rollout, so that it outlives it.
func (r *Reconciler) handBackService(ctx context.Context, ro *v1alpha1.Rollout, name string, selector map[string]string) error {
	var svc corev1.Service
	gone, err := r.missing(ctx, client.ObjectKey{Namespace: ro.Namespace, Name: name}, &svc)
	if err != nil || gone {
		return err
	}
	named := name == ro.Spec.Service.StableService || name == ro.Spec.Service.CanaryService
	if !isManaged(&svc, ro) && !named {
		return nil // not ours to change
	}
	base := svc.DeepCopy()
	svc.Spec.Selector = maps.Clone(selector)
	svc.OwnerReferences = slices.DeleteFunc(svc.OwnerReferences, func(o metav1.OwnerReference) bool { return o.UID == ro.UID })
	if maps.Equal(base.Spec.Selector, svc.Spec.Selector) && len(base.OwnerReferences) == len(svc.OwnerReferences) {
		return nil
	}
	if err := r.Client.Patch(ctx, &svc, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("hand service %s/%s back to the target: %w", ro.Namespace, name, err)
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
