package reconciler

import (
	"context"

	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
	istiov1alpha3 "istio.io/client-go/pkg/apis/networking/v1alpha3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/shadow"
	"github.com/tugboatdev/tugboat/traffic/istio"
)

// Cache indexes: Previews by the production namespace they copy from, and
// VirtualServices by the previews their record says mirror them.
const (
	indexSourceNamespace = "tugboat.dev/preview-source-namespace"
	indexPreviewOwner    = "tugboat.dev/preview-owner"
)

// SetupWithManager registers the controller: a Preview is reconciled when
// it, its AnalysisRun or EnvoyFilter, its namespace or Service, or anything
// in its source namespace that decides on it (a MirrorPolicy, a Rollout, a
// VirtualService, a Service) changes. A policy withdrawn stops the copies at once.
func (r *Reconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager, workers int) error {
	if err := mgr.GetFieldIndexer().IndexField(ctx, &v1alpha1.Preview{}, indexSourceNamespace, func(o client.Object) []string {
		return []string{o.(*v1alpha1.Preview).Spec.Source.Namespace}
	}); err != nil {
		return err
	}
	if err := mgr.GetFieldIndexer().IndexField(ctx, &istiov1.VirtualService{}, indexPreviewOwner, func(o client.Object) []string {
		return istio.PreviewOwners(o.(*istiov1.VirtualService))
	}); err != nil {
		return err
	}
	bySource := r.previewsCopyingFrom()
	return ctrl.NewControllerManagedBy(mgr).
		Named("preview").
		For(&v1alpha1.Preview{}).
		Owns(&v1alpha1.AnalysisRun{}).
		Watches(&istiov1alpha3.EnvoyFilter{}, byLabel()).
		Watches(&v1alpha1.MirrorPolicy{}, bySource).
		// A Rollout's status moves on every step; only its spec names the route.
		Watches(&v1alpha1.Rollout{}, bySource, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&v1alpha1.AnalysisTemplate{}, r.previewsIn(client.Object.GetNamespace, nil)).
		Watches(&v1alpha1.ClusterAnalysisTemplate{}, r.previewsIn(func(client.Object) string { return "" }, nil)).
		Watches(&istiov1.VirtualService{}, bySource).
		Watches(&istiov1.VirtualService{}, recordedOwners()).
		Watches(&corev1.Namespace{}, r.previewsIn(func(o client.Object) string { return o.GetName() }, nil)).
		Watches(&corev1.Service{}, r.previewsIn(client.Object.GetNamespace, func(p *v1alpha1.Preview, o client.Object) bool {
			return p.Spec.Service.Name == o.GetName()
		})).
		// Production's Services: their cluster IPs are hosts copies keep.
		Watches(&corev1.Service{}, bySource).
		WithOptions(controller.Options{MaxConcurrentReconciles: workers}).
		Complete(r)
}

// previewsCopyingFrom maps an object to the Previews whose source is its
// namespace.
func (r *Reconciler) previewsCopyingFrom() handler.EventHandler {
	return handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
		var list v1alpha1.PreviewList
		if err := r.Client.List(ctx, &list, client.MatchingFields{indexSourceNamespace: o.GetNamespace()}); err != nil {
			return nil
		}
		return requests(list.Items, nil, o)
	})
}

// previewsIn maps an object to the Previews in the namespace ns names (every
// namespace for ""), those that keep says.
func (r *Reconciler) previewsIn(ns func(client.Object) string, keep func(*v1alpha1.Preview, client.Object) bool) handler.EventHandler {
	return handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
		var list v1alpha1.PreviewList
		if err := r.Client.List(ctx, &list, client.InNamespace(ns(o))); err != nil {
			return nil
		}
		return requests(list.Items, keep, o)
	})
}

// byLabel maps a sanitizer to its Preview.
func byLabel() handler.EventHandler {
	return handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
		l := o.GetLabels()
		if l[labelManagedBy] != managedBy || l[labelPreview] == "" {
			return nil
		}
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: l[labelPreview]}}}
	})
}

// recordedOwners maps a VirtualService to the previews its record names,
// so that the mirror of one that is gone is swept.
func recordedOwners() handler.EventHandler {
	return handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
		var reqs []reconcile.Request
		for _, owner := range istio.PreviewOwners(o.(*istiov1.VirtualService)) {
			if key, ok := shadow.PreviewOf(owner); ok {
				reqs = append(reqs, reconcile.Request{NamespacedName: key})
			}
		}
		return reqs
	})
}

func requests(ps []v1alpha1.Preview, keep func(*v1alpha1.Preview, client.Object) bool, o client.Object) []reconcile.Request {
	var reqs []reconcile.Request
	for i := range ps {
		if keep == nil || keep(&ps[i], o) {
			reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ps[i].Namespace, Name: ps[i].Name}})
		}
	}
	return reqs
}
