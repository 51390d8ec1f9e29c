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
	"sync"
	"time"

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
)

// finalizer holds a Preview until its mirror is off the production route.
const finalizer = "tugboat.dev/preview-mirror"

// Reconciler drives Previews.
type Reconciler struct {
	// Client reads from the manager's cache and writes to the API server.
	Client   client.Client
	Router   router
	Recorder recorder
	Metrics  *Metrics
	// Now is time.Now in the controller, fixed or stepped in tests.
	Now func() time.Time
	// ClusterDomain is the cluster's DNS domain (cluster.local when empty).
	ClusterDomain string

	// patchedFrom holds, per Preview, the resourceVersion of the last status
	// this controller patched over: seeing it again means the cache is behind
	// our own write, whose watch event is on its way.
	patchedFrom sync.Map
}

// +kubebuilder:rbac:groups=tugboat.dev,resources=previews,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=tugboat.dev,resources=previews/finalizers,verbs=update
// +kubebuilder:rbac:groups=tugboat.dev,resources=previews/status,verbs=get;patch;update
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
		}
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	deleting := !p.DeletionTimestamp.IsZero()
	if deleting && !controllerutil.ContainsFinalizer(&p, finalizer) {
		return reconcile.Result{}, nil
	}
	if rv, ok := r.patchedFrom.Load(req.NamespacedName); ok && rv == p.ResourceVersion && !deleting {
		log.FromContext(ctx).V(1).Info("cache behind our own status write; waiting for it")
		return reconcile.Result{}, nil
	}
	if !deleting && !controllerutil.ContainsFinalizer(&p, finalizer) {
		// Before any copy flows, so that deleting the Preview always takes
		// the mirror away first.
		base := p.DeepCopy()
		controllerutil.AddFinalizer(&p, finalizer)
		if err := r.Client.Patch(ctx, &p, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
			return reconcile.Result{}, fmt.Errorf("add finalizer to preview %s/%s: %w", p.Namespace, p.Name, err)
		}
	}
	w, err := r.observe(ctx, &p, deleting)
	if err != nil {
		return reconcile.Result{}, err
	}
	out := shadow.Decide(shadow.ProgressOf(p.Status), w.observed)
	log.FromContext(ctx).V(1).Info("decided", "phase", out.Phase, "mirror", out.Mirror, "measure", out.Measure)
	if err := r.act(ctx, &p, w, out); err != nil {
		var problem *problemError
		if !errors.As(err, &problem) {
			return reconcile.Result{}, err
		}
		// Found only by writing (a route of the mirror's name that is not
		// Tugboat's, say): decided on like any other problem.
		w.observed.Problem = problem.msg
		out = shadow.Decide(shadow.ProgressOf(p.Status), w.observed)
		if err := r.act(ctx, &p, w, out); err != nil && !errors.As(err, &problem) {
			return reconcile.Result{}, err
		}
	}
	if deleting {
		base := p.DeepCopy()
		controllerutil.RemoveFinalizer(&p, finalizer)
		if err := r.Client.Patch(ctx, &p, client.MergeFrom(base)); err != nil {
			return reconcile.Result{}, client.IgnoreNotFound(err)
		}
		r.Recorder.Eventf(&p, nil, "Normal", "MirrorRemoved", "Delete", "the Preview is being deleted: its mirror is off %s", p.Status.Source)
		return reconcile.Result{}, nil
	}
	if err := r.record(ctx, &p, w, out); err != nil {
		if apierrors.IsConflict(err) {
			return reconcile.Result{RequeueAfter: 100 * time.Millisecond}, nil
		}
		return reconcile.Result{}, err
	}
	return reconcile.Result{RequeueAfter: out.RequeueAfter}, nil
}

// problemError is a problem found only by acting, which the preview waits
// out as Pending.
type problemError struct{ msg string }

func (e *problemError) Error() string { return e.msg }

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
	if w.run != nil && !w.createRun {
		explained := analysis.Explain(w.run, st.Analysis, r.Now())
		st.Analysis = &explained
	} else if newSpec {
		st.Analysis = nil
	}
	shadow.SetConditions(&st.Conditions, out, p.Generation)
	r.Metrics.observe(p)
	if equality.Semantic.DeepEqual(base.Status, p.Status) {
		return nil
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
	}
	return nil
}
