package reconciler

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/tugboatdev/tugboat/analysis"
	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

// recordRevision keeps each promoted pod template as a ControllerRevision,
// which history and rollback read, and prunes past the history limit.
func (r *Reconciler) recordRevision(ctx context.Context, ro *v1alpha1.Rollout, template corev1.PodTemplateSpec, rev string, about map[string]string) error {
	var list appsv1.ControllerRevisionList
	if err := r.Client.List(ctx, &list, client.InNamespace(ro.Namespace), client.MatchingLabels{labelRollout: ro.Name}); err != nil {
		return fmt.Errorf("list revisions of rollout %s/%s: %w", ro.Namespace, ro.Name, err)
	}
	revs := slices.DeleteFunc(list.Items, func(cr appsv1.ControllerRevision) bool { return !metav1.IsControlledBy(&cr, ro) })
	slices.SortFunc(revs, func(a, b appsv1.ControllerRevision) int { return cmp.Compare(a.Revision, b.Revision) })
	name := revisionName(ro, rev)
	if !slices.ContainsFunc(revs, func(cr appsv1.ControllerRevision) bool { return cr.Name == name }) {
		about[annotationRevision] = rev
		data, err := json.Marshal(template)
		if err != nil {
			return err
		}
		var next int64 = 1
		if len(revs) > 0 {
			next = revs[len(revs)-1].Revision + 1
		}
		cr := appsv1.ControllerRevision{
			ObjectMeta: metav1.ObjectMeta{
				Namespace:   ro.Namespace,
				Name:        name,
				Labels:      ownedLabels(ro),
				Annotations: about,
			},
			Data:     runtime.RawExtension{Raw: data},
			Revision: next,
		}
		if err := controllerutil.SetControllerReference(ro, &cr, r.Client.Scheme()); err != nil {
			return err
		}
		if err := r.Client.Create(ctx, &cr); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("record revision %s of rollout %s/%s: %w", rev, ro.Namespace, ro.Name, err)
		}
		revs = append(revs, cr)
	}
	for _, old := range revs[:max(0, len(revs)-revisionHistoryLimit(ro))] {
		if old.Name == name {
			continue // the one serving stays, however old its number
		}
		if err := r.Client.Delete(ctx, &old); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("prune revision %s of rollout %s/%s: %w", old.Name, ro.Namespace, ro.Name, err)
		}
	}
	return nil
}

// revisionHistoryLimit is how many promoted revisions ro keeps (default 10).
func revisionHistoryLimit(ro *v1alpha1.Rollout) int {
	if ro.Spec.Rollback != nil && ro.Spec.Rollback.RevisionHistoryLimit > 0 {
		return int(ro.Spec.Rollback.RevisionHistoryLimit)
	}
	return 10
}

// aboutRevision is what history shows of a revision that became stable:
// its images, when, how, and what its analysis found.
func aboutRevision(ro *v1alpha1.Rollout, template corev1.PodTemplateSpec, how string, at time.Time) map[string]string {
	var summary []string
	for _, a := range ro.Status.Analysis {
		which := "background"
		if a.Step != nil {
			which = fmt.Sprintf("step %d", *a.Step)
		}
		summary = append(summary, which+" "+string(a.Phase))
	}
	line := "no analysis"
	if len(summary) > 0 {
		line = strings.Join(summary, ", ")
	}
	return map[string]string{
		v1alpha1.AnnotationImages:     strings.Join(images(&template), ","),
		v1alpha1.AnnotationPromotedAt: at.UTC().Format(time.RFC3339),
		v1alpha1.AnnotationPromotedBy: how,
		v1alpha1.AnnotationAnalysis:   analysis.Shorten(line, 1024),
	}
}

// revisionName names the ControllerRevision of one of ro's revisions.
func revisionName(ro *v1alpha1.Rollout, rev string) string { return ro.Name + "-" + rev }
