package reconciler

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/rollout"
	"github.com/tugboatdev/tugboat/rollout/windows"
	"github.com/tugboatdev/tugboat/traffic"
)

// errCacheBehind means an object this controller created is not in the cache
// yet; the reconcile is tried again shortly, without an error.
var errCacheBehind = errors.New("cache behind our own write")

// world is what one reconcile sees, and the objects it may act on.
type world struct {
	target, primary *appsv1.Deployment
	mesh            traffic.Mesh
	observed        rollout.Observed
	runs            []observedRun
}

// observe reads the world from the cache and creates what a Rollout needs
// and lacks (primary, Services). A non-nil plan means the rollout cannot be
// decided on: its outcome says why.
func (r *Reconciler) observe(ctx context.Context, ro *v1alpha1.Rollout, p rollout.Progress) (*world, *rollout.Plan, error) {
	var target appsv1.Deployment
	key := client.ObjectKey{Namespace: ro.Namespace, Name: ro.Spec.TargetRef.Name}
	if err := r.Client.Get(ctx, key, &target); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, stopWith(p, rollout.TargetNotFound, fmt.Sprintf("deployment %s not found", key)), nil
		}
		return nil, nil, fmt.Errorf("get target deployment %s: %w", key, err)
	}
	if sel := target.Spec.Selector; sel == nil || len(sel.MatchLabels) == 0 || len(sel.MatchExpressions) > 0 {
		return nil, stopWith(p, rollout.InvalidSpec, fmt.Sprintf("deployment %s: Tugboat needs a selector of matchLabels only", key)), nil
	}
	primary, msg, err := r.ensurePrimary(ctx, ro, &target)
	if err != nil || msg != "" {
		return nil, stopWithMsg(p, msg), err
	}
	if !r.caughtUp(ro, primary) {
		return nil, nil, errCacheBehind
	}
	stableLabels := primary.Spec.Selector.MatchLabels
	canaryLabels := target.Spec.Selector.MatchLabels
	replicas := ptr.Deref(primary.Spec.Replicas, 1)
	primaryReady := ready(primary, replicas)
	for _, svc := range []struct {
		name     string
		selector map[string]string
		repoint  bool
	}{
		// An existing stable Service keeps selecting the target until
		// primary can serve.
		{stableServiceName(ro), stableLabels, primaryReady || p.StableRevision != ""},
		{canaryServiceName(ro), canaryLabels, true},
	} {
		if msg, err := r.ensureService(ctx, ro, svc.name, svc.selector, svc.repoint); err != nil || msg != "" {
			return nil, stopWithMsg(p, msg), err
		}
	}

	step := int(ptr.Deref(p.Step, 0))
	o := rollout.Observed{
		Now:             r.Now(),
		TargetRevision:  rollout.Revision(target.Spec.Template),
		PrimaryRevision: primary.Annotations[annotationRevision],
		PrimaryReady:    primaryReady,
		CanaryReady:     ready(&target, rollout.CanaryReplicasFor(ro.Spec.Steps, step, replicas)),
		Replicas:        replicas,
		Requests:        ro.PendingRequests(),
		Paused:          ro.PausedByUser(),
	}
	// Windows that do not parse hold the rollout as closed ones would, while
	// failures and aborts still act.
	if schedule, err := windows.Parse(ro.Spec.Windows); err != nil {
		o.WindowClosed, o.WindowInvalid = err.Error(), true
	} else {
		window := schedule.At(o.Now)
		o.WindowClosed, o.WindowOpens = window.Closed, window.Opens
	}
	w := &world{target: &target, primary: primary, mesh: meshOf(ro, stableLabels, canaryLabels), observed: o}
	if msg, err := r.observeAnalysis(ctx, ro, p, w); err != nil || msg != "" {
		return nil, stopWithMsg(p, msg), err
	}
	return w, nil, nil
}

func stopWithMsg(p rollout.Progress, msg string) *rollout.Plan {
	if msg == "" {
		return nil
	}
	return stopWith(p, rollout.InvalidSpec, msg)
}

// ensurePrimary returns <name>-primary, creating it from the target on first
// sight. A Deployment of that name that this Rollout does not own is a
// conflict, reported rather than taken over.
func (r *Reconciler) ensurePrimary(ctx context.Context, ro *v1alpha1.Rollout, target *appsv1.Deployment) (*appsv1.Deployment, string, error) {
	var primary appsv1.Deployment
	key := client.ObjectKey{Namespace: ro.Namespace, Name: ro.Name + primarySuffix}
	err := r.Client.Get(ctx, key, &primary)
	switch {
	case err == nil:
		if !isManaged(&primary, ro) {
			return nil, fmt.Sprintf("deployment %s exists and is not managed by this Rollout", key), nil
		}
		return &primary, "", r.disown(ctx, &primary, ro)
	case !apierrors.IsNotFound(err):
		return nil, "", fmt.Errorf("get primary deployment %s: %w", key, err)
	}
	// The target serves until primary is Ready; primary starts at its size.
	replicas := ptr.Deref(target.Spec.Replicas, 1)
	if replicas == 0 {
		replicas = 1
	}
	p := primaryFor(ro, target, replicas)
	if err := r.Client.Create(ctx, p); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return nil, "", errCacheBehind // created by an earlier reconcile; not in the cache yet
		}
		return nil, "", fmt.Errorf("create primary deployment %s: %w", key, err)
	}
	return p, "", nil
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

// ensureService creates a missing Service, or points an existing one that
// this Rollout owns or names at the right pods.
func (r *Reconciler) ensureService(ctx context.Context, ro *v1alpha1.Rollout, name string, selector map[string]string, repoint bool) (string, error) {
	var svc corev1.Service
	key := client.ObjectKey{Namespace: ro.Namespace, Name: name}
	err := r.Client.Get(ctx, key, &svc)
	if apierrors.IsNotFound(err) {
		want := serviceFor(ro, name, selector)
		// AlreadyExists: created by an earlier reconcile, not in the cache yet.
		if err := r.Client.Create(ctx, want); err != nil && !apierrors.IsAlreadyExists(err) {
			return "", fmt.Errorf("create service %s: %w", key, err)
		}
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("get service %s: %w", key, err)
	}
	named := name == ro.Spec.Service.StableService || name == ro.Spec.Service.CanaryService
	if !isManaged(&svc, ro) && !named {
		return fmt.Sprintf("service %s exists and is not managed by this Rollout; name it in spec.service to use it", key), nil
	}
	if err := r.disown(ctx, &svc, ro); err != nil {
		return "", err
	}
	if maps.Equal(svc.Spec.Selector, selector) || !repoint {
		return "", nil
	}
	svc.Spec.Selector = maps.Clone(selector)
	if err := r.Client.Update(ctx, &svc); err != nil {
		return "", fmt.Errorf("point service %s at %v: %w", key, selector, err)
	}
	return "", nil
}
