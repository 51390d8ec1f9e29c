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
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/tugboatdev/tugboat/analysis"
	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/notify"
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
	// notifier hands a notification over for sending; it never blocks.
	notifier interface {
		Notify(namespace string, to []v1alpha1.Notification, e notify.Event)
	}
)

// Reconciler drives Rollouts.
type Reconciler struct {
	// Client reads from the manager's cache and writes to the API server.
	Client   client.Client
	Router   router
	Recorder recorder
	Metrics  *Metrics
	// Notifier, when set, sends spec.notifications.
	Notifier notifier
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
	// rollbackDeleted holds, per Rollout, the UID of the rollback canary this
	// controller last deleted, until the cache no longer shows it.
	rollbackDeleted sync.Map
	// prunedRuns holds, per Rollout, the UIDs of the AnalysisRuns this
	// controller deleted (map[types.UID]bool), until the cache no longer
	// shows them.
	prunedRuns sync.Map
}

// +kubebuilder:rbac:groups=tugboat.dev,resources=rollouts,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=tugboat.dev,resources=rollouts/finalizers,verbs=update
// +kubebuilder:rbac:groups=tugboat.dev,resources=rollouts/status,verbs=get;patch;update
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=apps,resources=controllerrevisions,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups="",resources=services,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=networking.istio.io,resources=virtualservices;destinationrules,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=tugboat.dev,resources=analysisruns,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=tugboat.dev,resources=analysistemplates;clusteranalysistemplates,verbs=get;list;watch

// Reconcile moves one Rollout on as far as it can go now: observe (reads
// only), decide (pure), act (every write, in a fixed order).
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	var ro v1alpha1.Rollout
	if err := r.Client.Get(ctx, req.NamespacedName, &ro); err != nil {
		if apierrors.IsNotFound(err) {
			r.Metrics.forget(req.NamespacedName)
			r.patchedFrom.Delete(req.NamespacedName)
			r.primaryFrom.Delete(req.NamespacedName)
			r.rollbackDeleted.Delete(req.NamespacedName)
			r.prunedRuns.Delete(req.NamespacedName)
		}
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if !ro.DeletionTimestamp.IsZero() {
		if !controllerutil.ContainsFinalizer(&ro, finalizer) {
			return reconcile.Result{}, nil
		}
		w, err := r.observeDeletion(ctx, &ro, rollout.ProgressFrom(ro.Status))
		if err != nil {
			return reconcile.Result{}, err
		}
		return r.actHandBack(ctx, &ro, w, rollout.Decide(rollout.SpecFrom(ro.Spec), rollout.ProgressFrom(ro.Status), w.observed))
	}
	if rv, ok := r.patchedFrom.Load(req.NamespacedName); ok && rv == ro.ResourceVersion {
		log.FromContext(ctx).V(1).Info("cache behind our own status write; waiting for it")
		return reconcile.Result{}, nil
	}
	p := rollout.ProgressFrom(ro.Status)
	w, err := r.observe(ctx, &ro, p)
	if errors.Is(err, errCacheBehind) {
		return reconcile.Result{RequeueAfter: 200 * time.Millisecond}, nil
	}
	if err != nil {
		return reconcile.Result{}, err
	}
	spec := rollout.SpecFrom(ro.Spec)
	plan := rollout.Decide(spec, p, w.observed)
	log.FromContext(ctx).V(1).Info("decided", "outcome", plan.Outcome, "step", plan.Next.Step, "canaryReplicas", plan.CanaryReplicas)
	res, err := r.act(ctx, &ro, w, plan)
	var problem *rollout.SpecError
	if errors.As(err, &problem) && w.observed.Problem == nil {
		// Found only by writing: decided on like any other problem.
		w.observed.Problem = problem
		plan = rollout.Decide(spec, p, w.observed)
		log.FromContext(ctx).V(1).Info("decided again", "outcome", plan.Outcome, "problem", problem.Message)
		res, err = r.act(ctx, &ro, w, plan)
	}
	if errors.As(err, &problem) {
		// The problem stands in the way of the plan made for it too (a
		// committed promotion whose route is gone, say): it is recorded, and
		// nothing else is done until a person fixes it.
		return r.finish(ctx, &ro, rollout.Plan{Outcome: problem.Outcome, Message: problem.Message, Next: p, RequeueAfter: 30 * time.Second})
	}
	if errors.Is(err, errCacheBehind) {
		return reconcile.Result{RequeueAfter: 200 * time.Millisecond}, nil
	}
	return res, err
}

// errStatusChanged means status changed since it was read: nothing was
// written, and the reconcile runs again shortly on fresh state.
var errStatusChanged = errors.New("status changed meanwhile")

// record writes the plan into status with one patch, when anything changed
// (changed reports it). The explanation of the analysis runs observed is
// written with it, or on its own when a verdict changed. base is the Rollout
// as read.
func (r *Reconciler) record(ctx context.Context, ro *v1alpha1.Rollout, plan rollout.Plan, runs []observedRun) (base *v1alpha1.Rollout, changed bool, err error) {
	base = ro.DeepCopy()
	weight := ro.Status.CanaryWeight
	if plan.Traffic != nil {
		weight = plan.Traffic.Split.Canary
	}
	plan.Next.WriteTo(&ro.Status, weight)
	ro.Status.CanaryWorkload = canaryWorkload(ro, plan.Next)
	status.Set(&ro.Status.Conditions, plan.Outcome, plan.Message, ro.Generation)
	status.SetRolledBack(&ro.Status.Conditions, ro.Status.Rollback, ro.Generation)
	ro.Status.Phase = status.Phase(ro.Status.Conditions)
	ro.Status.Message = status.Shorten(plan.Message)
	ro.Status.ObservedGeneration = ro.Generation
	r.Metrics.observe(ro)
	explained := explain(ro.Status.Analysis, runs, plan, r.Now())
	if equality.Semantic.DeepEqual(base.Status, ro.Status) && analysis.SameVerdict(base.Status.Analysis, explained) {
		return base, false, nil
	}
	ro.Status.Analysis = explained
	// The optimistic lock makes a reconcile that read a stale Rollout from the
	// cache fail instead of repeating a step; it runs again on fresh state.
	patch := client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})
	if err := r.Client.Status().Patch(ctx, ro, patch); err != nil {
		if apierrors.IsConflict(err) {
			return base, false, errStatusChanged
		}
		return base, false, fmt.Errorf("patch status of rollout %s/%s: %w", ro.Namespace, ro.Name, err)
	}
	if ro.ResourceVersion != base.ResourceVersion {
		r.patchedFrom.Store(client.ObjectKeyFromObject(ro), base.ResourceVersion)
	}
	r.Metrics.rolledBack(ro, base.Status.Rollbacks, ro.Status.Rollbacks)
	r.Metrics.ended(ro, &base.Status, plan.Event(), r.Now())
	return base, true, nil
}

// finish records a plan that makes no change past status (hand-back's) and
// announces it.
func (r *Reconciler) finish(ctx context.Context, ro *v1alpha1.Rollout, plan rollout.Plan) (reconcile.Result, error) {
	base, changed, err := r.record(ctx, ro, plan, nil)
	if errors.Is(err, errStatusChanged) {
		return reconcile.Result{RequeueAfter: 100 * time.Millisecond}, nil
	}
	if err != nil {
		return reconcile.Result{}, err
	}
	if changed {
		r.notify(ro, base, plan)
		r.announce(ro, base, plan)
	}
	return reconcile.Result{RequeueAfter: plan.RequeueAfter}, nil
}

// announce records the plan's transition, or a newly found problem, as an
// event.
func (r *Reconciler) announce(ro, base *v1alpha1.Rollout, plan rollout.Plan) {
	event := plan.Event()
	if event == "" && plan.Outcome.IsFailure() && status.Reason(base.Status.Conditions) != string(plan.Outcome) {
		event = plan.Outcome // a newly found problem, such as InvalidSpec
	}
	if event == "" {
		return
	}
	eventType := corev1.EventTypeNormal
	if event.IsWarning() {
		eventType = corev1.EventTypeWarning
	}
	r.Recorder.Eventf(ro, nil, eventType, string(event), "Reconcile", "%s", plan.Message)
	r.Metrics.transition(ro, event)
}

// notify hands the change's notification, if any, to the notifier.
func (r *Reconciler) notify(ro, base *v1alpha1.Rollout, plan rollout.Plan) {
	if r.Notifier == nil || len(ro.Spec.Notifications) == 0 {
		return
	}
	for _, e := range notices(ro, base, plan) {
		e.Time = r.Now()
		r.Notifier.Notify(ro.Namespace, ro.Spec.Notifications, e)
	}
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
