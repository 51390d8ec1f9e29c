package reconciler

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/rollout"
)

// A rollback through the steps rolls an old revision out as a canary, from
// its record. The target holds another template (what git says), so the old
// one runs in a Deployment of its own, <name>-rollback, whose pods the
// canary Service and subset select while status records the rollback, and
// no longer. Like primary it carries the Rollout's labels rather than an
// owner reference (foreground deletion must not take its pods away before
// the hand-back moved their traffic); it is deleted once no rollback
// through the steps needs it, and at the hand-back.
const rollbackSuffix = "-rollback"

func rollbackCanaryName(ro *v1alpha1.Rollout) string { return ro.Name + rollbackSuffix }

// canaryWorkload names the Deployment whose pods take the canary's traffic
// under progress p (status.canaryWorkload), empty at rest.
func canaryWorkload(ro *v1alpha1.Rollout, p rollout.Progress) string {
	switch {
	case !p.InRollout():
		return ""
	case p.RollingBackThroughSteps():
		return rollbackCanaryName(ro)
	}
	return ro.Spec.TargetRef.Name
}

// rollbackLabels rewrites the target's selector labels for the rollback
// canary, as primaryLabels does for primary.
func rollbackLabels(selector, labels map[string]string) map[string]string {
	return suffixed(selector, labels, rollbackSuffix)
}

// rollbackCanaryFor builds <name>-rollback: the recorded template of rev,
// with its own selector labels, the target's strategy, and replicas pods.
func rollbackCanaryFor(ro *v1alpha1.Rollout, target *appsv1.Deployment, t corev1.PodTemplateSpec, rev string, replicas int32) *appsv1.Deployment {
	sel := target.Spec.Selector.MatchLabels
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ro.Namespace,
			Name:      rollbackCanaryName(ro),
			Labels:    ownedLabels(ro),
		},
		Spec: appsv1.DeploymentSpec{
			Replicas:        ptr.To(replicas),
			Selector:        &metav1.LabelSelector{MatchLabels: rollbackLabels(sel, sel)},
			MinReadySeconds: target.Spec.MinReadySeconds,
			Strategy:        *target.Spec.Strategy.DeepCopy(),
		},
	}
	setPrimaryFrom(d, t, rev) // the selector's labels on the template, the revision annotated
	return d
}

// observeRollbackCanary returns <name>-rollback, nil when there is none.
// One this Rollout does not manage is left alone, and is a conflict only
// when a rollback through the steps needs the name. One this controller
// deleted and the cache still shows means the cache is behind.
func (r *Reconciler) observeRollbackCanary(ctx context.Context, ro *v1alpha1.Rollout, needed bool) (*appsv1.Deployment, error) {
	var d appsv1.Deployment
	key := client.ObjectKey{Namespace: ro.Namespace, Name: rollbackCanaryName(ro)}
	err := r.Client.Get(ctx, key, &d)
	gone, deleted := r.rollbackDeleted.Load(client.ObjectKeyFromObject(ro))
	switch {
	case apierrors.IsNotFound(err):
		r.rollbackDeleted.Delete(client.ObjectKeyFromObject(ro))
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("get rollback canary deployment %s: %w", key, err)
	case deleted && gone == d.UID:
		return nil, errCacheBehind
	case !isManaged(&d, ro) && needed:
		return nil, rollout.Invalid("deployment %s exists and is not this Rollout's; a rollback through the steps runs its canary under that name", key)
	case !isManaged(&d, ro):
		return nil, nil
	}
	return &d, nil
}

// ensureRollbackCanary makes <name>-rollback run the revision the plan rolls
// back to through the steps: created at the plan's size, or put on that
// revision when it ran another, but only once status records it, so that
// pods taking a canary's traffic never change revision under it.
func (r *Reconciler) ensureRollbackCanary(ctx context.Context, ro *v1alpha1.Rollout, w *world, plan rollout.Plan) error {
	rev := plan.Next.Pin.Revision
	t := w.records[rev]
	if t == nil || w.target == nil {
		return nil // decided on already: the rollback ends without its record
	}
	if d := w.rollbackCanary; d != nil {
		if d.Annotations[annotationRevision] == rev || w.rollingBackTo != rev {
			return nil
		}
		d = d.DeepCopy()
		setPrimaryFrom(d, *t, rev)
		if err := r.Client.Update(ctx, d); err != nil {
			if apierrors.IsConflict(err) {
				return errCacheBehind
			}
			return fmt.Errorf("put rollback canary %s/%s on revision %s: %w", d.Namespace, d.Name, rev, err)
		}
		w.rollbackCanary = d
		return nil
	}
	d := rollbackCanaryFor(ro, w.target, *t, rev, ptr.Deref(plan.CanaryReplicas, 0))
	if err := r.Client.Create(ctx, d); err != nil {
		switch {
		case apierrors.IsAlreadyExists(err):
			return errCacheBehind // created by an earlier reconcile; not in the cache yet
		case apierrors.IsInvalid(err):
			// Retrying cannot fix it (a selector label too long for the suffix).
			return rollout.Invalid("create rollback canary deployment %s/%s: %v", d.Namespace, d.Name, err)
		}
		return fmt.Errorf("create rollback canary deployment %s/%s: %w", d.Namespace, d.Name, err)
	}
	w.rollbackCanary = d
	return nil
}

// removeRollbackCanary deletes <name>-rollback once neither status nor the
// plan rolls back through the steps: the canary Service and subset select
// the target's pods then (see canaryPods), so no traffic reaches it.
func (r *Reconciler) removeRollbackCanary(ctx context.Context, ro *v1alpha1.Rollout, w *world, plan rollout.Plan) error {
	d := w.rollbackCanary
	if d == nil || w.rollingBackTo != "" || plan.Next.RollingBackThroughSteps() {
		return nil
	}
	return r.deleteRollbackCanary(ctx, ro, d)
}

func (r *Reconciler) deleteRollbackCanary(ctx context.Context, ro *v1alpha1.Rollout, d *appsv1.Deployment) error {
	if err := r.Client.Delete(ctx, d, client.Preconditions{UID: &d.UID}); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("delete rollback canary deployment %s/%s: %w", d.Namespace, d.Name, err)
	}
	r.rollbackDeleted.Store(client.ObjectKeyFromObject(ro), d.UID)
	return nil
}

// canaryPods is the selector of the pods taking the canary's traffic: the
// rollback canary's while status, as observed, records a rollback through
// the steps, the target's otherwise. Status records the rollback with all
// traffic on stable, and ends it so too, so the selector never moves under
// weight.
func canaryPods(w *world) map[string]string {
	sel := w.target.Spec.Selector.MatchLabels
	if w.rollingBackTo != "" {
		return rollbackLabels(sel, sel)
	}
	return sel
}
