// Package reconciler is the Rollout controller: observe the world, let the
// pure planner (package rollout) decide, carry out the plan, and record the
// outcome in one status patch.
package reconciler

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/tugboatdev/tugboat/analysis"
	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/rollout"
	"github.com/tugboatdev/tugboat/rollout/status"
	"github.com/tugboatdev/tugboat/traffic"
)

// Consumer-side interfaces: only the methods this package calls.
type (
	router interface {
		Apply(ctx context.Context, m traffic.Mesh, want traffic.Desired) error
	}
	recorder interface {
		Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any)
	}
)

// Reconciler drives Rollouts.
type Reconciler struct {
	// Client reads from the manager's cache and writes to the API server.
	Client   client.Client
	Router   router
	Recorder recorder
	Metrics  *Metrics
	// Now is time.Now in the controller, fixed or stepped in tests.
	Now func() time.Time

	// patchedFrom holds, per Rollout, the resourceVersion of the last status
	// this controller patched over. Seeing it again means the cache has not
	// caught up with our own write yet: deciding on it would redo the step,
	// and the watch event of the write is on its way to wake us anyway.
	patchedFrom sync.Map
	// primaryFrom holds, per Rollout, the resourceVersion of primary before
	// this controller last updated it (at promotion). Seeing it again means
	// the cache has not caught up: deciding on it could take a committed
	// promotion for one not yet made.
	primaryFrom sync.Map
}

// +kubebuilder:rbac:groups=tugboat.dev,resources=rollouts,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=tugboat.dev,resources=rollouts/finalizers,verbs=update
// +kubebuilder:rbac:groups=tugboat.dev,resources=rollouts/status,verbs=get;patch;update
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=apps,resources=controllerrevisions,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups="",resources=services,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=networking.istio.io,resources=virtualservices;destinationrules,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=tugboat.dev,resources=analysisruns,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=tugboat.dev,resources=analysistemplates;clusteranalysistemplates,verbs=get;list;watch

// Reconcile moves one Rollout on as far as it can go now.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	var ro v1alpha1.Rollout
	if err := r.Client.Get(ctx, req.NamespacedName, &ro); err != nil {
		if apierrors.IsNotFound(err) {
			r.Metrics.forget(req.NamespacedName)
			r.patchedFrom.Delete(req.NamespacedName)
			r.primaryFrom.Delete(req.NamespacedName)
		}
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if !ro.DeletionTimestamp.IsZero() {
		return r.handBack(ctx, &ro)
	}
	if rv, ok := r.patchedFrom.Load(req.NamespacedName); ok && rv == ro.ResourceVersion {
		log.FromContext(ctx).V(1).Info("cache behind our own status write; waiting for it")
		return reconcile.Result{}, nil
	}
	if err := r.ensureFinalizer(ctx, &ro); err != nil {
		return reconcile.Result{}, err
	}
	p := rollout.ProgressFrom(ro.Status)
	w, stop, err := r.observe(ctx, &ro, p)
	var primaryRevision string
	if err == nil && stop != nil {
		primaryRevision, err = r.primaryRevision(ctx, &ro)
	}
	if errors.Is(err, errCacheBehind) {
		return reconcile.Result{RequeueAfter: 200 * time.Millisecond}, nil
	}
	if err != nil {
		return reconcile.Result{}, err
	}
	if stop != nil {
		plan := rollout.OnStop(*stop, ro.PendingRequests(), primaryRevision)
		if plan.Traffic != nil {
			if err := r.actOnStop(ctx, &ro, &plan, *stop); err != nil {
				return reconcile.Result{}, err
			}
		}
		return r.finish(ctx, &ro, plan, nil)
	}
	plan := rollout.Decide(rollout.SpecFrom(ro.Spec), p, w.observed)
	log.FromContext(ctx).V(1).Info("decided", "outcome", plan.Outcome, "step", plan.Next.Step, "canaryReplicas", plan.CanaryReplicas)
	if err := r.act(ctx, &ro, w, &plan); err != nil {
		return reconcile.Result{}, err
	}
	return r.finish(ctx, &ro, plan, w.runs)
}

// finish records the plan in status with one patch, when anything changed,
// and announces transitions. The explanation of the analysis runs observed is
// written with it, or on its own when a verdict changed.
func (r *Reconciler) finish(ctx context.Context, ro *v1alpha1.Rollout, plan rollout.Plan, runs []observedRun) (reconcile.Result, error) {
	base := ro.DeepCopy()
	weight := ro.Status.CanaryWeight
	if plan.Traffic != nil {
		weight = plan.Traffic.Split.Canary
	}
	plan.Next.WriteTo(&ro.Status, weight)
	status.Set(&ro.Status.Conditions, plan.Outcome, plan.Message, ro.Generation)
	ro.Status.Phase = status.Phase(ro.Status.Conditions)
	ro.Status.Message = plan.Message
	ro.Status.ObservedGeneration = ro.Generation
	r.Metrics.observe(ro)
	explained := explain(ro.Status.Analysis, runs, plan, r.Now())
	if equality.Semantic.DeepEqual(base.Status, ro.Status) && analysis.SameVerdict(base.Status.Analysis, explained) {
		return reconcile.Result{RequeueAfter: plan.RequeueAfter}, nil
	}
	ro.Status.Analysis = explained
	// The optimistic lock makes a reconcile that read a stale Rollout from the
	// cache fail instead of repeating a step; it runs again on fresh state.
	patch := client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})
	if err := r.Client.Status().Patch(ctx, ro, patch); err != nil {
		if apierrors.IsConflict(err) {
			log.FromContext(ctx).V(1).Info("status changed meanwhile; reconciling again")
			return reconcile.Result{RequeueAfter: 100 * time.Millisecond}, nil
		}
		return reconcile.Result{}, fmt.Errorf("patch status of rollout %s/%s: %w", ro.Namespace, ro.Name, err)
	}
	r.patchedFrom.Store(client.ObjectKeyFromObject(ro), base.ResourceVersion)
	event := plan.Event()
	if event == "" && plan.Outcome.IsFailure() && status.Reason(base.Status.Conditions) != string(plan.Outcome) {
		event = plan.Outcome // a newly found problem, such as InvalidSpec
	}
	if event != "" {
		eventType := corev1.EventTypeNormal
		if event.IsFailure() {
			eventType = corev1.EventTypeWarning
		}
		r.Recorder.Eventf(ro, nil, eventType, string(event), "Reconcile", "%s", plan.Message)
		r.Metrics.transition(event)
	}
	return reconcile.Result{RequeueAfter: plan.RequeueAfter}, nil
}

// stopWith is a plan that records a problem without moving progress. It
// looks again now and then, for problems such as a missing template that no
// watched object announces the end of.
func stopWith(p rollout.Progress, outcome rollout.Outcome, msg string) *rollout.Plan {
	return &rollout.Plan{Outcome: outcome, Message: msg, Next: p, RequeueAfter: 30 * time.Second}
}

// act carries out the plan: primary, traffic, then the canary's size, so that
// traffic has left the canary before it shrinks. A fault that retrying cannot
// fix turns the plan into InvalidSpec.
func (r *Reconciler) act(ctx context.Context, ro *v1alpha1.Rollout, w *world, plan *rollout.Plan) error {
	if plan.PromotePrimary {
		primary := w.primary.DeepCopy()
		setPrimaryTemplate(primary, w.target)
		if err := r.Client.Update(ctx, primary); err != nil {
			return fmt.Errorf("promote revision %s to deployment %s/%s: %w", plan.Next.CanaryRevision, primary.Namespace, primary.Name, err)
		}
		r.primaryFrom.Store(client.ObjectKeyFromObject(ro), w.primary.ResourceVersion)
	}
	// A canary that grows is scaled before traffic moves to it; one that
	// shrinks, after traffic has left it.
	grow := plan.CanaryReplicas != nil && *plan.CanaryReplicas > ptr.Deref(w.target.Spec.Replicas, 0)
	if grow {
		if err := r.scale(ctx, w.target, *plan.CanaryReplicas); err != nil {
			return err
		}
	}
	if plan.Traffic != nil {
		if err := r.Router.Apply(ctx, w.mesh, *plan.Traffic); err != nil {
			if errors.Is(err, traffic.ErrMisconfigured) {
				*plan = *stopWith(rollout.ProgressFrom(ro.Status), rollout.InvalidSpec, err.Error())
				return nil
			}
			return err
		}
	}
	if n := plan.CanaryReplicas; !grow && n != nil && ptr.Deref(w.target.Spec.Replicas, 1) != *n {
		if err := r.scale(ctx, w.target, *n); err != nil {
			return err
		}
	}
	if plan.Event() != "" {
		// The attempt changed (aborted, promoted, restarted): runs of the old
		// one stop measuring.
		if err := r.terminateRuns(ctx, ro, plan.Next); err != nil {
			return err
		}
	}
	// The target's template is the revision's only when it has not moved on
	// since (it may have, while primary was starting); the next promotion
	// records it otherwise.
	if plan.RecordRevision && rollout.Revision(w.target.Spec.Template) == plan.Next.StableRevision {
		if err := r.recordRevision(ctx, ro, w.target.Spec.Template, plan.Next.StableRevision); err != nil {
			return err
		}
	}
	return nil
}

// actOnStop carries out what was decided while the rollout could not be
// decided on (an abort, or a committed promotion completed): traffic back to
// stable, the canary scaled down if it is still there, its analysis
// stopped. The Services Tugboat keeps say which pods are
// stable and which canary, so the target is not needed. When traffic cannot
// be moved, the plan falls back to the stop, reported as it was.
func (r *Reconciler) actOnStop(ctx context.Context, ro *v1alpha1.Rollout, plan *rollout.Plan, stop rollout.Plan) error {
	var stable, canary corev1.Service
	for _, s := range []struct {
		name string
		into *corev1.Service
	}{{stableServiceName(ro), &stable}, {canaryServiceName(ro), &canary}} {
		if err := r.Client.Get(ctx, client.ObjectKey{Namespace: ro.Namespace, Name: s.name}, s.into); err != nil {
			if apierrors.IsNotFound(err) {
				*plan = stop
				return nil
			}
			return fmt.Errorf("get service %s/%s: %w", ro.Namespace, s.name, err)
		}
		named := s.name == ro.Spec.Service.StableService || s.name == ro.Spec.Service.CanaryService
		if !isManaged(s.into, ro) && !named {
			*plan = stop // someone else's Service: its selector says nothing of ours
			return nil
		}
	}
	if err := r.Router.Apply(ctx, meshOf(ro, stable.Spec.Selector, canary.Spec.Selector), *plan.Traffic); err != nil {
		if errors.Is(err, traffic.ErrMisconfigured) {
			stop.Message += "; traffic could not be sent back to stable: " + err.Error()
			*plan = stop
			return nil
		}
		return err
	}
	var target appsv1.Deployment
	switch err := r.Client.Get(ctx, client.ObjectKey{Namespace: ro.Namespace, Name: ro.Spec.TargetRef.Name}, &target); {
	case err == nil && ptr.Deref(target.Spec.Replicas, 1) != 0:
		if err := r.scale(ctx, &target, 0); err != nil {
			return err
		}
	case err != nil && !apierrors.IsNotFound(err):
		return fmt.Errorf("get target deployment %s/%s: %w", ro.Namespace, ro.Spec.TargetRef.Name, err)
	}
	return r.terminateRuns(ctx, ro, plan.Next)
}

// primaryRevision is the revision primary runs, from the cache; empty when
// there is no primary of ro's.
func (r *Reconciler) primaryRevision(ctx context.Context, ro *v1alpha1.Rollout) (string, error) {
	var primary appsv1.Deployment
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: ro.Namespace, Name: ro.Name + primarySuffix}, &primary); err != nil || !isManaged(&primary, ro) {
		return "", nil
	}
	if !r.caughtUp(ro, &primary) {
		return "", errCacheBehind
	}
	return primary.Annotations[annotationRevision], nil
}

// caughtUp says whether the cache shows primary as this controller last
// wrote it. Until it does, primary's revision is the one from before a
// promotion, and deciding on it would forget the promotion.
func (r *Reconciler) caughtUp(ro *v1alpha1.Rollout, primary *appsv1.Deployment) bool {
	key := client.ObjectKeyFromObject(ro)
	rv, ok := r.primaryFrom.Load(key)
	if !ok {
		return true
	}
	if rv == primary.ResourceVersion {
		return false
	}
	r.primaryFrom.Delete(key)
	return true
}

// scale sets only the target's replicas, with a merge patch that leaves every
// other field to its owner.
func (r *Reconciler) scale(ctx context.Context, d *appsv1.Deployment, replicas int32) error {
	patch := client.RawPatch("application/merge-patch+json", fmt.Appendf(nil, `{"spec":{"replicas":%d}}`, replicas))
	if err := r.Client.Patch(ctx, d, patch); err != nil {
		return fmt.Errorf("scale deployment %s/%s to %d: %w", d.Namespace, d.Name, replicas, err)
	}
	return nil
}
