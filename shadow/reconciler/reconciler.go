// Package reconciler is the Preview controller, shaped like the Rollout
// controller: observe (reads only, from the cache), let the pure package
// shadow decide, act (the sanitizer before the mirror, the mirror through
// traffic/istio, the analysis run), and record the outcome in one status
// patch.
package reconciler

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	istiov1alpha3 "istio.io/client-go/pkg/apis/networking/v1alpha3"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/tugboatdev/tugboat/analysis"
	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/notify"
	"github.com/tugboatdev/tugboat/shadow"
	"github.com/tugboatdev/tugboat/traffic"
)

// Consumer-side interfaces: only the methods this package calls.
type (
	router interface {
		ApplyPreview(ctx context.Context, namespace, name, route, owner string, want *traffic.PreviewMirror) error
	}
	recorder interface {
		Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any)
	}
	// notifier hands a notification over for sending; it never blocks.
	notifier interface {
		Notify(namespace string, to []v1alpha1.Notification, e notify.Event)
	}
)

// finalizer holds a Preview until its mirror is off the production route.
const finalizer = "tugboat.dev/preview-mirror"

// Reconciler drives Previews.
type Reconciler struct {
	// Client reads from the manager's cache and writes to the API server.
	Client client.Client
	// APIReader reads from the API server itself: before a sanitizer goes,
	// so that a mirror written a moment ago, which the cache has not seen
	// yet, is found (the manager's GetAPIReader).
	APIReader client.Reader
	Router    router
	Recorder  recorder
	Metrics   *Metrics
	// Notifier, when set, sends spec.notifications.
	Notifier notifier
	// Now is time.Now in the controller, fixed or stepped in tests.
	Now func() time.Time
	// ClusterDomain is the cluster's DNS domain (cluster.local when empty).
	ClusterDomain string
	// SanitizerSettle is how long the sanitizer must have existed before
	// the first copy, and how long it stays after the last
	// (DefaultSanitizerSettle when zero): Istio brings an EnvoyFilter and a
	// VirtualService to different proxies in no set order.
	SanitizerSettle time.Duration
	// MeshRootNamespace is Istio's root namespace (istio-system when
	// empty), where an EnvoyFilter applies to the whole mesh.
	MeshRootNamespace string

	// patchedFrom holds, per Preview, the resourceVersion of the last status
	// this controller patched over: seeing it again means the cache is behind
	// our own write, whose watch event is on its way.
	patchedFrom sync.Map
}

// +kubebuilder:rbac:groups=tugboat.dev,resources=previews,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=tugboat.dev,resources=previews/finalizers,verbs=update
// +kubebuilder:rbac:groups=tugboat.dev,resources=previews/status,verbs=get;patch
// +kubebuilder:rbac:groups=tugboat.dev,resources=mirrorpolicies,verbs=get;list;watch
// +kubebuilder:rbac:groups=tugboat.dev,resources=rollouts,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=services,verbs=get;list;watch
// +kubebuilder:rbac:groups=networking.istio.io,resources=virtualservices,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=networking.istio.io,resources=envoyfilters,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=tugboat.dev,resources=analysisruns,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=tugboat.dev,resources=analysistemplates;clusteranalysistemplates,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile brings one Preview's mirror, sanitizer and analysis in line
// with what shadow.Decide says now.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	var p v1alpha1.Preview
	if err := r.Client.Get(ctx, req.NamespacedName, &p); err != nil {
		if apierrors.IsNotFound(err) {
			r.patchedFrom.Delete(req.NamespacedName)
			r.Metrics.forget(req.NamespacedName)
			// Gone without us (its finalizer taken off by hand): what it left
			// on production's routes is swept all the same.
			return r.sweep(ctx, req.NamespacedName)
		}
		return reconcile.Result{}, err
	}
	deleting := !p.DeletionTimestamp.IsZero()
	if deleting && !controllerutil.ContainsFinalizer(&p, finalizer) {
		return r.sweep(ctx, req.NamespacedName)
	}
	if deleting {
		return r.release(ctx, &p)
	}
	if rv, ok := r.patchedFrom.Load(req.NamespacedName); ok && rv == p.ResourceVersion {
		log.FromContext(ctx).V(1).Info("cache behind our own status write; waiting for it")
		return reconcile.Result{}, nil
	}
	if !controllerutil.ContainsFinalizer(&p, finalizer) {
		// Before any copy flows, so that deleting the Preview always takes
		// the mirror away first.
		base := p.DeepCopy()
		controllerutil.AddFinalizer(&p, finalizer)
		if err := r.Client.Patch(ctx, &p, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
			return reconcile.Result{}, fmt.Errorf("add finalizer to preview %s/%s: %w", p.Namespace, p.Name, err)
		}
	}
	w, err := r.observe(ctx, &p)
	if err != nil {
		return reconcile.Result{}, err
	}
	out := shadow.Decide(shadow.ProgressOf(p.Status), w.observed)
	log.FromContext(ctx).V(1).Info("decided", "phase", out.Phase, "mirror", out.Mirror, "measure", out.Measure)
	retry := out.RequeueAfter
	err = r.act(ctx, &p, w, out)
	var problem *problemError
	var waiting *waitError
	switch {
	case errors.As(err, &waiting) && w.mirroringFromSource():
		// A write that lost a race: the copies flow on as they were, and
		// status waits for the write.
		return reconcile.Result{RequeueAfter: waiting.after}, nil
	case errors.As(err, &waiting):
		// Not copying yet: the preview says what it waits for.
		w.observed.Problem = waiting.msg
		out = shadow.Decide(shadow.ProgressOf(p.Status), w.observed)
		retry = min(out.RequeueAfter, waiting.after)
	case errors.As(err, &problem):
		// Found only by acting (a route of the mirror's name that is not
		// Tugboat's, a run the API server refuses): decided on like any
		// other problem.
		w.observed.Problem = problem.msg
		out = shadow.Decide(shadow.ProgressOf(p.Status), w.observed)
		if err := r.act(ctx, &p, w, out); err != nil && !errors.As(err, &problem) {
			return reconcile.Result{}, err
		}
		retry = out.RequeueAfter
		if problem.retry > 0 {
			retry = min(retry, problem.retry)
		}
	case err != nil:
		return reconcile.Result{}, err
	}
	if w.retry > 0 {
		retry = min(retry, w.retry)
	}
	if !w.retireAt.IsZero() {
		retry = min(retry, max(time.Second, w.retireAt.Sub(r.Now())))
	}
	if err := r.record(ctx, &p, w, out); err != nil {
		if apierrors.IsConflict(err) {
			return reconcile.Result{RequeueAfter: 100 * time.Millisecond}, nil
		}
		return reconcile.Result{}, err
	}
	return reconcile.Result{RequeueAfter: retry}, nil
}

// release lets a deleted Preview go once sweep is done: its mirrors off
// every route, and its sanitizer gone the settle time after.
func (r *Reconciler) release(ctx context.Context, p *v1alpha1.Preview) (reconcile.Result, error) {
	res, err := r.sweep(ctx, client.ObjectKeyFromObject(p))
	if err != nil || res.RequeueAfter > 0 {
		return res, err
	}
	base := p.DeepCopy()
	controllerutil.RemoveFinalizer(p, finalizer)
	if err := r.Client.Patch(ctx, p, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
		if apierrors.IsConflict(err) {
			return reconcile.Result{RequeueAfter: 100 * time.Millisecond}, nil
		}
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	r.Recorder.Eventf(p, nil, "Normal", "MirrorRemoved", "Delete", "the Preview is being deleted: its mirror is off %s", p.Status.Source)
	return reconcile.Result{}, nil
}

// sweep takes a preview's mirrors off every route that records one (or
// whose record cannot be read), counting one as removed when it first sees
// the preview going; once none does and the proxies have had the settle time
// since the last came off, and the API server itself, past the cache, shows
// no mirror and no later removal, its sanitizer goes.
func (r *Reconciler) sweep(ctx context.Context, key client.ObjectKey) (reconcile.Result, error) {
	owner := shadow.OwnerOf(key.Namespace, key.Name)
	placed, err := r.placements(ctx, owner, true)
	if err != nil {
		return reconcile.Result{}, err
	}
	filter, err := r.ownedFilter(ctx, r.Client, key)
	if err != nil {
		return reconcile.Result{}, err
	}
	if filter != nil && filter.Annotations[annotationDeleted] == "" {
		// The first time: a mirror counts as removed now, so that the
		// sanitizer outlasts even one that came off without the controller
		// (a person editing the VirtualService).
		if err := r.markRemoval(ctx, filter, annotationDeleted); err != nil {
			return reconcile.Result{}, err
		}
	}
	takeOff := func(placed []placement) (reconcile.Result, error) {
		w := &world{filter: filter, ownFilter: filter != nil, placed: placed}
		return reconcile.Result{RequeueAfter: r.settle()}, r.takeOff(ctx, owner, w, placed)
	}
	if len(placed) > 0 {
		return takeOff(placed)
	}
	if filter == nil {
		return reconcile.Result{}, nil
	}
	if wait := historyOf(filter).removed.Add(r.settle()).Sub(r.Now()); wait > 0 {
		return reconcile.Result{RequeueAfter: wait}, nil
	}
	// Right before it goes, the API server's view.
	if placed, err = r.livePlacements(ctx, owner); err != nil || len(placed) > 0 {
		if err != nil {
			return reconcile.Result{}, err
		}
		return takeOff(placed)
	}
	if r.APIReader != nil {
		if filter, err = r.ownedFilter(ctx, r.APIReader, key); err != nil || filter == nil {
			return reconcile.Result{}, err
		}
		if wait := historyOf(filter).removed.Add(r.settle()).Sub(r.Now()); wait > 0 {
			return reconcile.Result{RequeueAfter: wait}, nil
		}
	}
	if err := r.deleteFilter(ctx, filter); err != nil {
		if apierrors.IsConflict(err) {
			return reconcile.Result{RequeueAfter: 100 * time.Millisecond}, nil
		}
		return reconcile.Result{}, err
	}
	return reconcile.Result{}, nil
}

// ownedFilter reads the sanitizer of the preview key names; nil when there
// is none, or the EnvoyFilter of its name is not Tugboat's.
func (r *Reconciler) ownedFilter(ctx context.Context, reader client.Reader, key client.ObjectKey) (*istiov1alpha3.EnvoyFilter, error) {
	var ef istiov1alpha3.EnvoyFilter
	name := filterName(key.Name)
	switch err := reader.Get(ctx, client.ObjectKey{Namespace: key.Namespace, Name: name}, &ef); {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("get envoyfilter %s/%s: %w", key.Namespace, name, err)
	case !ownedBy(&ef, key.Name):
		return nil, nil
	}
	return &ef, nil
}

// waitError is a wait found only by acting (the sanitizer settling, a
// write that lost a race): nothing on the routes changes meanwhile, and
// the preview is looked at again after.
type waitError struct {
	msg   string
	after time.Duration
}

func (e *waitError) Error() string { return e.msg }

// problemError is a problem found only by acting, which the preview waits
// out as Pending; retry, when set, is when to look again.
type problemError struct {
	msg   string
	retry time.Duration
}

func (e *problemError) Error() string { return e.msg }

func (r *Reconciler) meshRoot() string {
	if r.MeshRootNamespace != "" {
		return r.MeshRootNamespace
	}
	return "istio-system"
}

// DefaultSanitizerSettle is the settle time unless the controller is told.
const DefaultSanitizerSettle = 10 * time.Second

// settle is how long Istio is given to bring the sanitizer to the preview's
// proxies before the first copy, and to stop the copies before the
// sanitizer goes.
func (r *Reconciler) settle() time.Duration {
	if r.SanitizerSettle > 0 {
		return r.SanitizerSettle
	}
	return DefaultSanitizerSettle
}

// record writes the outcome into status with one patch, when anything
// changed, and announces a new phase.
func (r *Reconciler) record(ctx context.Context, p *v1alpha1.Preview, w *world, out shadow.Outcome) error {
	base := p.DeepCopy()
	st := &p.Status
	newSpec := st.ObservedGeneration != p.Generation
	st.ObservedGeneration = p.Generation
	st.Phase = string(out.Phase)
	st.Message = analysis.Shorten(out.Message, 1024)
	if w.source.vs != "" {
		st.Source = shadow.SourceText(w.source.namespace, w.source.vs, w.source.route)
		st.SourceWorkload = w.source.workload
	}
	st.Rule = w.observed.Decision.Rule
	st.RemovedHeaders = w.observed.Decision.RemoveHeaders
	st.ExpiresAt = &metav1.Time{Time: w.observed.Expires}
	switch {
	case newSpec && !out.Mirror:
		st.MirroringSince = nil
	case out.Mirror && (newSpec || st.MirroringSince == nil):
		st.MirroringSince = &metav1.Time{Time: r.Now()}
	}
	var explained []v1alpha1.RolloutAnalysis
	switch {
	case w.run != nil && !w.createRun:
		explained = []v1alpha1.RolloutAnalysis{analysis.Explain(w.run, st.Analysis, r.Now())}
	case !newSpec && st.Analysis != nil:
		explained = []v1alpha1.RolloutAnalysis{*st.Analysis}
	}
	shadow.SetConditions(&st.Conditions, out, p.Generation)
	r.Metrics.observe(p)
	// Successful measurements alone cost no write: the explanation is
	// refreshed when the verdict changes or status is written anyway.
	var recorded []v1alpha1.RolloutAnalysis
	if st.Analysis != nil {
		recorded = []v1alpha1.RolloutAnalysis{*st.Analysis}
	}
	if equality.Semantic.DeepEqual(base.Status, p.Status) && analysis.SameVerdict(recorded, explained) {
		return nil
	}
	st.Analysis = nil
	if len(explained) > 0 {
		st.Analysis = &explained[0]
	}
	if err := r.Client.Status().Patch(ctx, p, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("patch status of preview %s/%s: %w", p.Namespace, p.Name, err)
	}
	if p.ResourceVersion != base.ResourceVersion {
		r.patchedFrom.Store(client.ObjectKeyFromObject(p), base.ResourceVersion)
	}
	if base.Status.Phase != p.Status.Phase {
		kind := "Normal"
		if out.Phase == shadow.Failed || out.Phase == shadow.Denied {
			kind = "Warning"
		}
		r.Recorder.Eventf(p, nil, kind, string(out.Phase), "Mirror", "%s", st.Message)
		r.notify(p, out)
	}
	return nil
}

// notify sends the preview's new phase to its subscriptions. A phase is
// reached once per spec generation, which makes the occurrence.
func (r *Reconciler) notify(p *v1alpha1.Preview, out shadow.Outcome) {
	if r.Notifier == nil || len(p.Spec.Notifications) == 0 || out.Phase == shadow.Pending {
		return
	}
	name := strings.ToLower(string(out.Phase[:1])) + string(out.Phase[1:])
	e := notify.Event{
		Name:       name,
		Object:     notify.Object{Kind: "Preview", Namespace: p.Namespace, Name: p.Name, UID: string(p.UID)},
		Occurrence: fmt.Sprintf("%d", p.Generation),
		Time:       r.Now(),
		Reason:     string(out.Phase),
		Message:    p.Status.Message,
		Next:       []string{"kubectl tug preview get " + p.Name + " -n " + p.Namespace},
	}
	if a := p.Status.Analysis; a != nil {
		e.Findings = notify.Findings([]v1alpha1.RolloutAnalysis{*a})
	}
	r.Notifier.Notify(p.Namespace, p.Spec.Notifications, e)
}
