package reconciler

import (
	"context"

	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

// Cache indexes from the objects a Rollout names to the Rollout.
const (
	indexTarget          = "tugboat.dev/target"
	indexVirtualService  = "tugboat.dev/virtualservice"
	indexDestinationRule = "tugboat.dev/destinationrule"
	indexTemplate        = "tugboat.dev/analysistemplate"
)

// clusterTemplateKey is the template index's value for a
// ClusterAnalysisTemplate, which no namespaced template's name can take.
func clusterTemplateKey(name string) string { return "cluster/" + name }

// templatesOf are the analysis templates a Rollout names, for the template
// index.
func templatesOf(ro *v1alpha1.Rollout) []string {
	var out []string
	add := func(a *v1alpha1.Analysis) {
		for _, t := range a.Templates {
			if t.ClusterScope != nil && *t.ClusterScope {
				out = append(out, clusterTemplateKey(t.TemplateName))
			} else {
				out = append(out, t.TemplateName)
			}
		}
	}
	for _, st := range ro.Spec.Steps {
		if st.Analysis != nil {
			add(st.Analysis)
		}
	}
	if bg := ro.Spec.Analysis; bg != nil {
		add(&bg.Analysis)
	}
	return out
}

// SetupWithManager registers the controller: it reconciles a Rollout when the
// Rollout, its target, its primary or Services, the VirtualService or
// DestinationRule or an analysis template it names change. A GitOps tool
// resetting a VirtualService's weights is corrected at once, and a rollout
// held for a missing template goes on as soon as the template is there.
func (r *Reconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager, workers int) error {
	idx := mgr.GetFieldIndexer()
	for name, value := range map[string]func(*v1alpha1.Rollout) string{
		indexTarget:         func(ro *v1alpha1.Rollout) string { return ro.Spec.TargetRef.Name },
		indexVirtualService: func(ro *v1alpha1.Rollout) string { return ro.Spec.TrafficRouting.Istio.VirtualService.Name },
		indexDestinationRule: func(ro *v1alpha1.Rollout) string {
			if dr := ro.Spec.TrafficRouting.Istio.DestinationRule; dr != nil {
				return dr.Name
			}
			return ""
		},
	} {
		if err := idx.IndexField(ctx, &v1alpha1.Rollout{}, name, func(o client.Object) []string {
			if v := value(o.(*v1alpha1.Rollout)); v != "" {
				return []string{v}
			}
			return nil
		}); err != nil {
			return err
		}
	}
	if err := idx.IndexField(ctx, &v1alpha1.Rollout{}, indexTemplate, func(o client.Object) []string {
		return templatesOf(o.(*v1alpha1.Rollout))
	}); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.Rollout{}).
		Owns(&v1alpha1.AnalysisRun{}).
		Watches(&appsv1.Deployment{}, managedObjects()).
		Watches(&corev1.Service{}, managedObjects()).
		Watches(&appsv1.Deployment{}, r.rolloutsNaming(indexTarget)).
		Watches(&istiov1.VirtualService{}, r.rolloutsNaming(indexVirtualService)).
		Watches(&istiov1.DestinationRule{}, r.rolloutsNaming(indexDestinationRule)).
		Watches(&v1alpha1.AnalysisTemplate{}, r.rolloutsNaming(indexTemplate)).
		Watches(&v1alpha1.ClusterAnalysisTemplate{}, r.rolloutsNamingClusterTemplate()).
		WithOptions(controller.Options{MaxConcurrentReconciles: workers}).
		Complete(r)
}

// managedObjects maps primary and the Services to their Rollout by label.
func managedObjects() handler.EventHandler {
	return handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
		l := o.GetLabels()
		if l[labelManagedBy] != managedBy || l[labelRollout] == "" {
			return nil
		}
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: l[labelRollout]}}}
	})
}

// rolloutsNaming maps an object to the Rollouts in its namespace whose index
// field holds its name.
func (r *Reconciler) rolloutsNaming(index string) handler.EventHandler {
	return handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
		var list v1alpha1.RolloutList
		if err := r.Client.List(ctx, &list, client.InNamespace(o.GetNamespace()), client.MatchingFields{index: o.GetName()}); err != nil {
			return nil
		}
		reqs := make([]reconcile.Request, len(list.Items))
		for i, ro := range list.Items {
			reqs[i] = reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ro.Namespace, Name: ro.Name}}
		}
		return reqs
	})
}

// rolloutsNamingClusterTemplate maps a ClusterAnalysisTemplate to the
// Rollouts, in any namespace, that name it.
func (r *Reconciler) rolloutsNamingClusterTemplate() handler.EventHandler {
	return handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
		var list v1alpha1.RolloutList
		if err := r.Client.List(ctx, &list, client.MatchingFields{indexTemplate: clusterTemplateKey(o.GetName())}); err != nil {
			return nil
		}
		reqs := make([]reconcile.Request, len(list.Items))
		for i, ro := range list.Items {
			reqs[i] = reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ro.Namespace, Name: ro.Name}}
		}
		return reqs
	})
}
