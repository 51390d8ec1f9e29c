package reconciler

import (
	"maps"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/rollout"
)

// Labels and annotations on the objects Tugboat creates. They never carry
// gitops.jenkins-x.io/pipeline, which Jenkins X prunes by.
const (
	labelManagedBy      = "app.kubernetes.io/managed-by"
	managedBy           = "tugboat"
	labelRollout        = v1alpha1.LabelRollout
	annotationRevision  = v1alpha1.AnnotationRevision
	primarySuffix       = "-primary"
	stableServiceSuffix = "-stable"
	canaryServiceSuffix = "-canary"
)

// primaryLabels rewrites the target's selector labels for primary: each value
// gets the -primary suffix, so that the two Deployments' selectors never
// overlap. Labels outside the selector are kept, so a Service that selects on
// one of those reaches both versions (which subset-level splitting needs).
func primaryLabels(selector, labels map[string]string) map[string]string {
	return suffixed(selector, labels, primarySuffix)
}

// suffixed is labels with suffix added to the value of each selector label.
func suffixed(selector, labels map[string]string, suffix string) map[string]string {
	out := maps.Clone(labels)
	if out == nil {
		out = map[string]string{}
	}
	for k, v := range selector {
		out[k] = v + suffix
	}
	return out
}

// primaryFor builds primary from the target: its template, rewritten labels,
// and the revision it carries.
func primaryFor(ro *v1alpha1.Rollout, target *appsv1.Deployment, replicas int32) *appsv1.Deployment {
	sel := target.Spec.Selector.MatchLabels
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ro.Namespace,
			Name:      ro.Name + primarySuffix,
			Labels:    ownedLabels(ro),
		},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: primaryLabels(sel, sel)},
		},
	}
	setPrimaryTemplate(d, target)
	return d
}

// setPrimaryTemplate copies the target's template into primary.
func setPrimaryTemplate(primary, target *appsv1.Deployment) {
	t := *target.Spec.Template.DeepCopy()
	t.Labels = primaryLabels(target.Spec.Selector.MatchLabels, t.Labels)
	primary.Spec.Template = t
	primary.Spec.MinReadySeconds = target.Spec.MinReadySeconds
	primary.Spec.Strategy = *target.Spec.Strategy.DeepCopy()
	if primary.Annotations == nil {
		primary.Annotations = map[string]string{}
	}
	primary.Annotations[annotationRevision] = rollout.Revision(target.Spec.Template)
}

func serviceFor(ro *v1alpha1.Rollout, name string, selector map[string]string) *corev1.Service {
	target := intstr.FromInt32(ro.Spec.Service.Port)
	if ro.Spec.Service.TargetPort != nil {
		target = *ro.Spec.Service.TargetPort
	}
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ro.Namespace, Name: name, Labels: ownedLabels(ro)},
		Spec: corev1.ServiceSpec{
			Selector: maps.Clone(selector),
			Ports:    []corev1.ServicePort{{Name: "http", Port: ro.Spec.Service.Port, TargetPort: target}},
		},
	}
}

func stableServiceName(ro *v1alpha1.Rollout) string {
	if ro.Spec.Service.StableService != "" {
		return ro.Spec.Service.StableService
	}
	return ro.Name + stableServiceSuffix
}

func canaryServiceName(ro *v1alpha1.Rollout) string {
	if ro.Spec.Service.CanaryService != "" {
		return ro.Spec.Service.CanaryService
	}
	return ro.Name + canaryServiceSuffix
}

func ownedLabels(ro *v1alpha1.Rollout) map[string]string {
	return map[string]string{labelManagedBy: managedBy, labelRollout: ro.Name}
}

// isManaged reports whether o is primary or a Service that Tugboat keeps for
// ro. They carry its labels rather than an owner reference: garbage
// collection, foreground deletion above all, must not take them away before
// the application is handed back to the target (see handBack).
func isManaged(o metav1.Object, ro *v1alpha1.Rollout) bool {
	l := o.GetLabels()
	return metav1.IsControlledBy(o, ro) || (l[labelManagedBy] == managedBy && l[labelRollout] == ro.Name)
}

// ready reports whether d runs want replicas of its current template, all
// Ready, with no old pods left.
func ready(d *appsv1.Deployment, want int32) bool {
	s := d.Status
	return d.Generation == s.ObservedGeneration &&
		ptr.Deref(d.Spec.Replicas, 1) == want &&
		s.UpdatedReplicas == want && s.Replicas == want && s.ReadyReplicas >= want
}
