package reconciler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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

// errCacheBehind means an object this controller wrote is not in the cache
// as written yet; the reconcile is tried again shortly, without an error.
var errCacheBehind = errors.New("cache behind our own write")

// world is what one reconcile sees, and the objects it may act on. Any of
// the objects may be missing (nil); act creates what the plan needs.
type world struct {
	target, primary *appsv1.Deployment
	// services are the stable and canary Services by name, nil where missing.
	services map[string]*corev1.Service
	// stableTemplate is the stable revision's recorded template (target
	// form), nil when none is recorded.
	stableTemplate *corev1.PodTemplateSpec
	// mesh names the mesh objects and backends; meshKnown is false when the
	// pods behind stable and canary cannot be told (target and Services gone).
	mesh      traffic.Mesh
	meshKnown bool
	observed  rollout.Observed
	runs      []observedRun
	// primaryTaken and servicesTaken: a Deployment or Service of the name
	// Tugboat would create exists and is not this Rollout's (a problem).
	primaryTaken  bool
	servicesTaken map[string]bool
	// stableRevision is the stable revision status recorded when observed.
	stableRevision string
	// disown are objects that carry an owner reference to the Rollout from an
	// earlier version of Tugboat, which garbage collection must not follow.
	disown []client.Object
	// records are recorded templates (target form) by revision: the one a
	// pending rollback goes back to, and the one a rollback through the
	// steps runs.
	records map[string]*corev1.PodTemplateSpec
	// rollbackCanary is <name>-rollback, which runs a rollback through the
	// steps; nil when there is none. rollingBackTo is the revision status,
	// as observed, rolls back to through the steps; empty when it does not.
	rollbackCanary *appsv1.Deployment
	rollingBackTo  string
}

// observe reads the world from the cache. It writes nothing: a problem only
// a person can fix goes into observed.Problem, and what is missing is left
// for act to create.
func (r *Reconciler) observe(ctx context.Context, ro *v1alpha1.Rollout, p rollout.Progress) (*world, error) {
	w := &world{services: map[string]*corev1.Service{}, servicesTaken: map[string]bool{}, stableRevision: p.StableRevision,
		records: map[string]*corev1.PodTemplateSpec{}}
	if p.RollingBackThroughSteps() {
		w.rollingBackTo = p.Pin.Revision
	}
	o := &w.observed
	o.Now = r.Now()
	o.Requests = ro.PendingRequests()
	o.Paused = ro.PausedByUser()
	problem := func(e *rollout.SpecError) {
		if o.Problem == nil {
			o.Problem = e
		}
	}

	key := client.ObjectKey{Namespace: ro.Namespace, Name: ro.Spec.TargetRef.Name}
	var target appsv1.Deployment
	switch err := r.Client.Get(ctx, key, &target); {
	case apierrors.IsNotFound(err):
		problem(rollout.TargetMissing("deployment %s not found", key))
	case err != nil:
		return nil, fmt.Errorf("get target deployment %s: %w", key, err)
	case !matchLabelsOnly(target.Spec.Selector):
		problem(rollout.Invalid("deployment %s: Tugboat needs a selector of matchLabels only", key))
	default:
		w.target = &target
		o.TargetRevision = rollout.Revision(target.Spec.Template)
		o.CanaryImages = images(&target.Spec.Template)
	}

	primary, err := r.observePrimary(ctx, ro)
	var se *rollout.SpecError
	switch {
	case errors.As(err, &se):
		problem(se)
		w.primaryTaken = true
	case err != nil:
		return nil, err
	case primary != nil:
		if !r.caughtUp(ro, primary) {
			return nil, errCacheBehind
		}
		w.primary = primary
		o.PrimaryRevision = primary.Annotations[annotationRevision]
	}
	replicas := int32(1)
	switch {
	case w.primary != nil:
		replicas = ptr.Deref(w.primary.Spec.Replicas, 1)
		o.PrimaryReady = ready(w.primary, replicas)
	case w.target != nil:
		replicas = max(1, ptr.Deref(w.target.Spec.Replicas, 1))
	}
	o.Replicas = replicas
	rollbackCanary, err := r.observeRollbackCanary(ctx, ro, w.rollingBackTo != "" || o.Requests.Rollback != "")
	if errors.As(err, &se) {
		problem(se)
	} else if err != nil {
		return nil, err
	}
	w.rollbackCanary = rollbackCanary
	canaryWants := rollout.CanaryReplicasFor(ro.Spec.Steps, int(ptr.Deref(p.Step, 0)), replicas)
	switch {
	case p.RollingBackThroughSteps():
		rev := p.Pin.Revision
		t, err := r.recordedTemplate(ctx, ro, rev)
		if err != nil {
			return nil, err
		}
		w.records[rev], o.CanaryRecorded, o.CanaryImages = t, t != nil, images(t)
		d := w.rollbackCanary
		o.CanaryReady = d != nil && d.Annotations[annotationRevision] == rev && ready(d, canaryWants)
	case w.target != nil:
		o.CanaryReady = ready(w.target, canaryWants)
	}

	for _, name := range []string{stableServiceName(ro), canaryServiceName(ro)} {
		svc, err := r.observeService(ctx, ro, name)
		if errors.As(err, &se) {
			problem(se)
			w.servicesTaken[name] = true
			continue
		}
		if err != nil {
			return nil, err
		}
		w.services[name] = svc
	}
	w.disown = ownedBy(ro, w)
	w.mesh, w.meshKnown = r.meshFrom(ro, w)

	if p.StableRevision != "" {
		t, err := r.recordedTemplate(ctx, ro, p.StableRevision)
		if err != nil {
			return nil, err
		}
		w.stableTemplate, o.StableRecorded = t, t != nil
		o.StableImages = images(t)
	}
	if err := r.observeRollback(ctx, ro, p, w); err != nil {
		return nil, err
	}

	if w.primary == nil && w.target != nil && p.StableRevision != "" && o.TargetRevision != p.StableRevision && w.stableTemplate == nil {
		problem(rollout.Invalid("deployment %s/%s%s is gone, and no record of stable revision %s is left to create it from",
			ro.Namespace, ro.Name, primarySuffix, p.StableRevision))
	}

	// Windows that do not parse hold the rollout as closed ones would, while
	// failures and aborts still act.
	if schedule, err := windows.Parse(ro.Spec.Windows); err != nil {
		o.WindowClosed, o.WindowInvalid = err.Error(), true
	} else {
		window := schedule.At(o.Now)
		o.WindowClosed, o.WindowOpens = window.Closed, window.Opens
	}
	if err := r.observeAnalysis(ctx, ro, p, w); errors.As(err, &se) {
		problem(se)
	} else if err != nil {
		return nil, err
	}
	return w, nil
}

func matchLabelsOnly(sel *metav1.LabelSelector) bool {
	return sel != nil && len(sel.MatchLabels) > 0 && len(sel.MatchExpressions) == 0
}

// ownedBy are primary and the Services when an earlier version of Tugboat
// put an owner reference to ro on them, which garbage collection would
// follow before the application is handed back.
func ownedBy(ro *v1alpha1.Rollout, w *world) []client.Object {
	var objs []client.Object
	if w.primary != nil {
		objs = append(objs, w.primary)
	}
	for _, name := range []string{stableServiceName(ro), canaryServiceName(ro)} {
		if svc := w.services[name]; svc != nil {
			objs = append(objs, svc)
		}
	}
	return slices.DeleteFunc(objs, func(o client.Object) bool {
		return !slices.ContainsFunc(o.GetOwnerReferences(), func(ref metav1.OwnerReference) bool { return ref.UID == ro.UID })
	})
}

// observePrimary returns <name>-primary, nil when there is none. A
// Deployment of that name that this Rollout does not own is a conflict,
// reported rather than taken over.
func (r *Reconciler) observePrimary(ctx context.Context, ro *v1alpha1.Rollout) (*appsv1.Deployment, error) {
	var primary appsv1.Deployment
	key := client.ObjectKey{Namespace: ro.Namespace, Name: ro.Name + primarySuffix}
	switch err := r.Client.Get(ctx, key, &primary); {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("get primary deployment %s: %w", key, err)
	case !isManaged(&primary, ro):
		return nil, rollout.Invalid("deployment %s exists and is not managed by this Rollout", key)
	}
	return &primary, nil
}

// observeService returns a stable or canary Service, nil when there is none.
// One that this Rollout neither keeps nor names is a conflict.
func (r *Reconciler) observeService(ctx context.Context, ro *v1alpha1.Rollout, name string) (*corev1.Service, error) {
	var svc corev1.Service
	key := client.ObjectKey{Namespace: ro.Namespace, Name: name}
	switch err := r.Client.Get(ctx, key, &svc); {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("get service %s: %w", key, err)
	case !isManaged(&svc, ro) && !named(ro, name):
		return nil, rollout.Invalid("service %s exists and is not managed by this Rollout; name it in spec.service to use it", key)
	}
	return &svc, nil
}

func named(ro *v1alpha1.Rollout, name string) bool {
	return name == ro.Spec.Service.StableService || name == ro.Spec.Service.CanaryService
}

// meshFrom names the mesh objects and the pods behind stable and canary: from
// primary and the target, or, with the target gone, from the Services
// Tugboat keeps (which still say which pods are which).
func (r *Reconciler) meshFrom(ro *v1alpha1.Rollout, w *world) (traffic.Mesh, bool) {
	if w.target != nil {
		stable := primaryLabels(w.target.Spec.Selector.MatchLabels, w.target.Spec.Selector.MatchLabels)
		if w.primary != nil && w.primary.Spec.Selector != nil {
			stable = w.primary.Spec.Selector.MatchLabels
		}
		return meshOf(ro, stable, canaryPods(w)), true
	}
	stable, canary := w.services[stableServiceName(ro)], w.services[canaryServiceName(ro)]
	if stable == nil || canary == nil {
		return traffic.Mesh{}, false
	}
	return meshOf(ro, stable.Spec.Selector, canary.Spec.Selector), true
}

// recordedTemplate reads a revision's template from its ControllerRevision,
// nil when none of this Rollout's is recorded.
func (r *Reconciler) recordedTemplate(ctx context.Context, ro *v1alpha1.Rollout, rev string) (*corev1.PodTemplateSpec, error) {
	var cr appsv1.ControllerRevision
	key := client.ObjectKey{Namespace: ro.Namespace, Name: revisionName(ro, rev)}
	switch err := r.Client.Get(ctx, key, &cr); {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("get controllerrevision %s: %w", key, err)
	case !metav1.IsControlledBy(&cr, ro) || cr.Annotations[annotationRevision] != rev:
		return nil, nil
	}
	var t corev1.PodTemplateSpec
	if err := json.Unmarshal(cr.Data.Raw, &t); err != nil || rollout.Revision(t) != rev {
		return nil, nil // not a record to trust
	}
	return &t, nil
}
