package reconciler

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/rollout"
	"github.com/tugboatdev/tugboat/traffic"
)

// act carries out a plan. It is the only place a reconcile writes, always in
// this order:
//
//  1. create: the hand-back finalizer, and what the Rollout needs and lacks
//     (primary, the rollback canary, the Services, the attempt's
//     AnalysisRuns); owner references an earlier version put on primary and
//     the Services go;
//  2. primary back on the stable revision, when the plan says so;
//  3. grow the canary, before traffic moves to it;
//  4. traffic;
//  5. shrink the canary, once traffic has left it;
//  6. record: the one status patch;
//  7. what re-running the plan could not undo, now that status records the
//     plan: primary takes the canary's template, or a revision rolled back to;
//  8. clean-up that is safe to repeat: runs of ended attempts stopped, the
//     stable revision recorded, a rollback canary that traffic has left
//     deleted; then the transition is announced, and finished runs past
//     the history limits are deleted (a failure there holds nothing up).
//
// A problem found only by writing (a route that does not exist, an object
// the API server refuses) comes back as a *rollout.SpecError for Reconcile
// to decide on; traffic moving wholly to stable is carried out as far as it
// goes, and what could not be done is reported in the status message.
func (r *Reconciler) act(ctx context.Context, ro *v1alpha1.Rollout, w *world, plan rollout.Plan) (reconcile.Result, error) {
	if err := r.create(ctx, ro, w, plan); err != nil {
		return reconcile.Result{}, err
	}
	if plan.RestorePrimary && w.primary != nil && w.stableTemplate != nil {
		primary := w.primary.DeepCopy()
		setPrimaryFrom(primary, *w.stableTemplate, plan.Next.StableRevision)
		if err := r.updatePrimary(ctx, ro, w, primary); err != nil {
			return reconcile.Result{}, fmt.Errorf("put stable revision %s back on deployment %s/%s: %w", plan.Next.StableRevision, primary.Namespace, primary.Name, err)
		}
		w.observed.PrimaryRevision = plan.Next.StableRevision // for a plan decided again in this reconcile
	}
	// The canary's pods are the target's, or the rollback canary's while a
	// rollback goes through the steps (the target has none meanwhile).
	canary, idle := w.target, (*appsv1.Deployment)(nil)
	if plan.Next.RollingBackThroughSteps() {
		canary, idle = w.rollbackCanary, w.target
	}
	grow := canary != nil && plan.CanaryReplicas != nil && *plan.CanaryReplicas > ptr.Deref(canary.Spec.Replicas, 0)
	if grow {
		if err := r.scale(ctx, canary, *plan.CanaryReplicas); err != nil {
			return reconcile.Result{}, err
		}
	}
	if plan.Traffic != nil {
		notDone, err := r.route(ctx, w, *plan.Traffic)
		if notDone != "" && plan.Next.Abort != nil {
			// An abort does all it can, and says what it could not.
			plan.Message += "; " + notDone
			err = nil
		}
		if err != nil {
			return reconcile.Result{}, err
		}
	}
	if n := plan.CanaryReplicas; !grow && canary != nil && n != nil && ptr.Deref(canary.Spec.Replicas, 1) != *n {
		if err := r.scale(ctx, canary, *n); err != nil {
			return reconcile.Result{}, err
		}
	}
	if idle != nil && plan.Traffic != nil && ptr.Deref(idle.Spec.Replicas, 1) != 0 {
		if err := r.scale(ctx, idle, 0); err != nil {
			return reconcile.Result{}, err
		}
	}

	base, changed, err := r.record(ctx, ro, plan, w.runs)
	if errors.Is(err, errStatusChanged) {
		return reconcile.Result{RequeueAfter: 100 * time.Millisecond}, nil
	}
	if err != nil {
		return reconcile.Result{}, err
	}
	if changed {
		// Told once the change is recorded, whatever fails after it: a
		// reconcile that follows sees nothing new to tell.
		r.notify(ro, base, plan)
	}

	if plan.PromotePrimary && w.primary != nil && w.target != nil {
		primary := w.primary.DeepCopy()
		setPrimaryTemplate(primary, w.target)
		if err := r.updatePrimary(ctx, ro, w, primary); err != nil {
			return reconcile.Result{}, fmt.Errorf("promote revision %s to deployment %s/%s: %w", plan.Next.CanaryRevision, primary.Namespace, primary.Name, err)
		}
	}
	if plan.RollBackPrimary && w.primary != nil && plan.Next.Pin != nil && w.records[plan.Next.Pin.Revision] != nil {
		// In place, as at a promotion; should this fail, primary is put on
		// the revision status records at the next reconcile.
		rev := plan.Next.Pin.Revision
		primary := w.primary.DeepCopy()
		setPrimaryFrom(primary, *w.records[rev], rev)
		if err := r.updatePrimary(ctx, ro, w, primary); err != nil {
			return reconcile.Result{}, fmt.Errorf("roll deployment %s/%s back to revision %s: %w", primary.Namespace, primary.Name, rev, err)
		}
	}
	runs, err := r.listRuns(ctx, ro)
	if err != nil {
		return reconcile.Result{}, err
	}
	if err := r.terminateRuns(ctx, ro, runs, plan.Next); err != nil {
		return reconcile.Result{}, err
	}
	if err := r.recordStable(ctx, ro, w, plan); err != nil {
		return reconcile.Result{}, err
	}
	if err := r.removeRollbackCanary(ctx, ro, w, plan); err != nil {
		return reconcile.Result{}, err
	}
	if changed && plan.Event() == rollout.RolledBack {
		r.announceRollback(ctx, ro, plan, images(w.records[plan.Next.Pin.Revision]))
	} else if changed {
		r.announce(ro, base, plan)
	}
	res := reconcile.Result{RequeueAfter: plan.RequeueAfter}
	if r.pruneRuns(ctx, ro, base, runs, rollout.ProgressFrom(base.Status), plan.Next) && (res.RequeueAfter == 0 || res.RequeueAfter > pruneRetry) {
		res.RequeueAfter = pruneRetry
	}
	return res, nil
}

// create makes what the Rollout needs and lacks.
func (r *Reconciler) create(ctx context.Context, ro *v1alpha1.Rollout, w *world, plan rollout.Plan) error {
	if err := r.ensureFinalizer(ctx, ro); err != nil {
		return err
	}
	for _, o := range w.disown {
		if err := r.disown(ctx, o, ro); err != nil {
			return err
		}
	}
	if w.primary == nil && !w.primaryTaken && w.target != nil && (w.stableRevision == "" || w.stableTemplate != nil || w.observed.TargetRevision == w.stableRevision) {
		primary, err := r.createPrimary(ctx, ro, w)
		if err != nil {
			return err
		}
		w.primary = primary
	}
	if w.target != nil && w.primary != nil {
		// An existing stable Service keeps selecting the target until
		// primary can serve.
		repointStable := w.observed.PrimaryReady || plan.Next.StableRevision != ""
		for _, svc := range []struct {
			name     string
			selector map[string]string
			repoint  bool
		}{
			{stableServiceName(ro), w.primary.Spec.Selector.MatchLabels, repointStable},
			// The canary Service selects the rollback canary's pods while
			// status records a rollback through the steps (see canaryPods).
			{canaryServiceName(ro), canaryPods(w), true},
		} {
			if err := r.ensureService(ctx, ro, w, svc.name, svc.selector, svc.repoint); err != nil {
				return err
			}
		}
	}
	if plan.Next.RollingBackThroughSteps() {
		if err := r.ensureRollbackCanary(ctx, ro, w, plan); err != nil {
			return err
		}
	}
	if err := r.createRuns(ctx, ro, w.runs, plan.Next); err != nil {
		for i := range w.runs {
			w.runs[i].create = false // reported; not tried again in this reconcile
		}
		return err
	}
	return nil
}

// createPrimary creates <name>-primary: on the stable revision's recorded
// template once there is a stable revision (a person deleted primary), from
// the target before.
func (r *Reconciler) createPrimary(ctx context.Context, ro *v1alpha1.Rollout, w *world) (*appsv1.Deployment, error) {
	// The target serves until primary is Ready; primary starts at its size.
	replicas := max(1, ptr.Deref(w.target.Spec.Replicas, 1))
	p := primaryFor(ro, w.target, replicas)
	if w.stableRevision != "" && w.stableTemplate != nil {
		// On the stable revision status recorded when observed, named as
		// such: a plan that moves stable (a rollback) puts primary on the
		// new one after status records it.
		setPrimaryFrom(p, *w.stableTemplate, w.stableRevision)
	}
	if err := r.Client.Create(ctx, p); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return nil, errCacheBehind // created by an earlier reconcile; not in the cache yet
		}
		return nil, fmt.Errorf("create primary deployment %s/%s: %w", p.Namespace, p.Name, err)
	}
	return p, nil
}

// updatePrimary writes primary and remembers what the cache showed before,
// so that the next reconcile waits for the cache to show the write.
func (r *Reconciler) updatePrimary(ctx context.Context, ro *v1alpha1.Rollout, w *world, primary *appsv1.Deployment) error {
	if err := r.Client.Update(ctx, primary); err != nil {
		return err
	}
	if primary.ResourceVersion != w.primary.ResourceVersion {
		r.primaryFrom.Store(client.ObjectKeyFromObject(ro), w.primary.ResourceVersion)
	}
	w.primary = primary
	return nil
}

// ensureService creates a missing Service, or points an existing one that
// this Rollout keeps or names at the right pods.
func (r *Reconciler) ensureService(ctx context.Context, ro *v1alpha1.Rollout, w *world, name string, selector map[string]string, repoint bool) error {
	svc := w.services[name]
	if svc == nil && !w.servicesTaken[name] {
		want := serviceFor(ro, name, selector)
		// AlreadyExists: created by an earlier reconcile, not in the cache yet.
		if err := r.Client.Create(ctx, want); err != nil && !apierrors.IsAlreadyExists(err) {
			if apierrors.IsInvalid(err) {
				// Retrying cannot fix it (a target port no Service takes).
				return rollout.Invalid("create service %s/%s: %v", ro.Namespace, name, err)
			}
			return fmt.Errorf("create service %s/%s: %w", ro.Namespace, name, err)
		}
		w.services[name] = want
		return nil
	}
	if svc == nil || maps.Equal(svc.Spec.Selector, selector) || !repoint {
		return nil
	}
	svc = svc.DeepCopy()
	svc.Spec.Selector = maps.Clone(selector)
	if err := r.Client.Update(ctx, svc); err != nil {
		return fmt.Errorf("point service %s/%s at %v: %w", ro.Namespace, name, selector, err)
	}
	w.services[name] = svc
	return nil
}

// route puts traffic on the mesh. A misconfiguration is a problem for
// Decide, a *rollout.SpecError. When all traffic goes to stable, the router
// did all it could first, and notDone says what it could not.
func (r *Reconciler) route(ctx context.Context, w *world, want traffic.Desired) (notDone string, err error) {
	if !w.meshKnown {
		msg := "traffic cannot be moved: the pods of stable and canary cannot be told apart with the target and its Services gone"
		return msg, rollout.Invalid("%s", msg)
	}
	err = r.Router.Apply(ctx, w.mesh, want)
	switch {
	case err == nil:
		return "", nil
	case !errors.Is(err, traffic.ErrMisconfigured):
		return "", err
	case want.AllStable():
		notDone = "not done: " + err.Error()
	}
	return notDone, rollout.Invalid("%s", err.Error())
}

// recordStable keeps the stable revision's template as a ControllerRevision
// once primary (or the target) runs it. It is tried on every reconcile until
// it is there, so a restart between recording status and this loses nothing.
func (r *Reconciler) recordStable(ctx context.Context, ro *v1alpha1.Rollout, w *world, plan rollout.Plan) error {
	rev := plan.Next.StableRevision
	if rev == "" || (rev == w.stableRevision && w.observed.StableRecorded) {
		return nil
	}
	var template *corev1.PodTemplateSpec
	if w.primary != nil && w.primary.Annotations[annotationRevision] == rev {
		if t := recordedForm(w.primary); rollout.Revision(t) == rev {
			template = &t
		}
	}
	if template == nil && w.target != nil && rollout.Revision(w.target.Spec.Template) == rev {
		template = &w.target.Spec.Template
	}
	if template == nil {
		return nil // recorded once primary or the target shows it
	}
	how := "steps"
	if w.stableRevision == "" {
		how = "initial"
	}
	return r.recordRevision(ctx, ro, *template, rev, aboutRevision(ro, *template, how, r.Now()))
}

// recordedForm is primary's template as the target carries it: the
// selector's labels without the -primary suffix (see primaryLabels).
func recordedForm(primary *appsv1.Deployment) corev1.PodTemplateSpec {
	t := *primary.Spec.Template.DeepCopy()
	t.Labels = maps.Clone(t.Labels)
	for k, v := range primary.Spec.Selector.MatchLabels {
		t.Labels[k] = strings.TrimSuffix(v, primarySuffix)
	}
	return t
}

// scale sets only the target's replicas, with a merge patch that leaves every
// other field to its owner.
func (r *Reconciler) scale(ctx context.Context, d *appsv1.Deployment, replicas int32) error {
	patch := client.RawPatch("application/merge-patch+json", fmt.Appendf(nil, `{"spec":{"replicas":%d}}`, replicas))
	if err := r.Client.Patch(ctx, d, patch); err != nil {
		return fmt.Errorf("scale deployment %s/%s to %d: %w", d.Namespace, d.Name, replicas, err)
	}
	d.Spec.Replicas = ptr.To(replicas)
	return nil
}

// setPrimaryFrom puts a recorded template (as the target carries it) into
// primary, with primary's selector labels.
func setPrimaryFrom(primary *appsv1.Deployment, t corev1.PodTemplateSpec, rev string) {
	t = *t.DeepCopy()
	t.Labels = maps.Clone(t.Labels)
	if t.Labels == nil {
		t.Labels = map[string]string{}
	}
	for k, v := range primary.Spec.Selector.MatchLabels {
		t.Labels[k] = v
	}
	primary.Spec.Template = t
	if primary.Annotations == nil {
		primary.Annotations = map[string]string{}
	}
	primary.Annotations[annotationRevision] = rev
}

// disown removes an owner reference to ro that an earlier version of Tugboat
// put on primary or a Service: garbage collection must not remove them
// before the application is handed back (see handBack).
func (r *Reconciler) disown(ctx context.Context, o client.Object, ro *v1alpha1.Rollout) error {
	refs := o.GetOwnerReferences()
	kept := slices.DeleteFunc(slices.Clone(refs), func(ref metav1.OwnerReference) bool { return ref.UID == ro.UID })
	if len(kept) == len(refs) {
		return nil
	}
	patch := client.MergeFromWithOptions(o.DeepCopyObject().(client.Object), client.MergeFromWithOptimisticLock{})
	o.SetOwnerReferences(kept)
	if err := r.Client.Patch(ctx, o, patch); err != nil {
		return fmt.Errorf("remove the owner reference to rollout %s from %s: %w", ro.Name, client.ObjectKeyFromObject(o), err)
	}
	return nil
}
