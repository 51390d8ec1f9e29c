package reconciler

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tugboatdev/tugboat/analysis"
	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/rollout"
)

// history is the Rollout's ControllerRevisions, by number, oldest first.
func (r *Reconciler) history(ctx context.Context, ro *v1alpha1.Rollout) ([]appsv1.ControllerRevision, error) {
	var list appsv1.ControllerRevisionList
	if err := r.Client.List(ctx, &list, client.InNamespace(ro.Namespace), client.MatchingLabels{labelRollout: ro.Name}); err != nil {
		return nil, fmt.Errorf("list revisions of rollout %s/%s: %w", ro.Namespace, ro.Name, err)
	}
	revs := slices.DeleteFunc(list.Items, func(cr appsv1.ControllerRevision) bool { return !metav1.IsControlledBy(&cr, ro) })
	slices.SortFunc(revs, func(a, b appsv1.ControllerRevision) int { return cmp.Compare(a.Revision, b.Revision) })
	return revs, nil
}

// fastTrack is how many of the revisions before the one serving a rollback
// may go back to at once.
func fastTrack(ro *v1alpha1.Rollout) int64 {
	if rb := ro.Spec.Rollback; rb != nil && rb.FastTrackRevisions != nil {
		return int64(*rb.FastTrackRevisions)
	}
	return 1
}

// observeRollback resolves a pending rollback request against the history:
// which revision, whether its template is recorded (then w.records holds
// it), at once or through the steps, or why it is refused.
func (r *Reconciler) observeRollback(ctx context.Context, ro *v1alpha1.Rollout, p rollout.Progress, w *world) error {
	id := w.observed.Requests.Rollback
	if id == "" {
		return nil
	}
	to := &rollout.RollbackTo{ID: id}
	w.observed.Rollback = to
	var req v1alpha1.RollbackRequest
	if err := json.Unmarshal([]byte(ro.Annotations[v1alpha1.AnnotationRollback]), &req); err != nil || req.ID != id {
		to.Refused = "rollback refused: the " + v1alpha1.AnnotationRollback + " annotation is not a rollback request (kubectl tug rollback writes one)"
		return nil
	}
	to.Reason, to.User = analysis.Shorten(req.Reason, 1024), analysis.Shorten(req.User, 512)
	revs, err := r.history(ctx, ro)
	if err != nil {
		return err
	}
	serving := slices.IndexFunc(revs, func(cr appsv1.ControllerRevision) bool { return cr.Annotations[annotationRevision] == p.StableRevision })
	want := req.ToRevision
	if want == 0 {
		if serving <= 0 {
			to.Refused = fmt.Sprintf("rollback refused: rollout %s/%s has no revision before the one serving", ro.Namespace, ro.Name)
			return nil
		}
		want = revs[serving-1].Revision
	}
	i := slices.IndexFunc(revs, func(cr appsv1.ControllerRevision) bool { return cr.Revision == want })
	switch {
	case i < 0 && len(revs) == 0:
		to.Refused = fmt.Sprintf("rollback refused: rollout %s/%s has no history yet", ro.Namespace, ro.Name)
		return nil
	case i < 0:
		to.Refused = fmt.Sprintf("rollback refused: revision %d is not in the history of rollout %s/%s (revisions %s; kubectl tug history %s)",
			want, ro.Namespace, ro.Name, numbers(revs), ro.Name)
		return nil
	}
	to.Number, to.Revision = revs[i].Revision, revs[i].Annotations[annotationRevision]
	if serving < 0 {
		to.Refused = fmt.Sprintf("rollback refused: the revision serving (%s) is not in the history of rollout %s/%s, so how far back revision %d lies is not known", p.StableRevision, ro.Namespace, ro.Name, want)
		return nil
	}
	// Further back than spec.rollback.fastTrackRevisions, the revision goes
	// through the steps again.
	to.ThroughSteps = i < serving && int64(serving-i) > fastTrack(ro)
	t, err := r.recordedTemplate(ctx, ro, to.Revision)
	if err != nil {
		return err
	}
	w.records[to.Revision], to.Recorded = t, t != nil
	return nil
}

func numbers(revs []appsv1.ControllerRevision) string {
	var s []string
	for _, cr := range revs {
		s = append(s, fmt.Sprint(cr.Revision))
	}
	return strings.Join(s, ", ")
}

// images are a template's containers' images.
func images(t *corev1.PodTemplateSpec) []string {
	if t == nil {
		return nil
	}
	var out []string
	for _, c := range t.Spec.Containers {
		out = append(out, c.Image)
	}
	return out
}

// announceRollback records the RolledBack event with what a pipeline needs
// to turn it into a revert pull request (AnnotationRolledBack), written
// directly: the event recorder has no annotations. Like every event it is
// best effort: a failure is logged, and changes nothing.
func (r *Reconciler) announceRollback(ctx context.Context, ro *v1alpha1.Rollout, plan rollout.Plan, to []string) {
	pin := plan.Next.Pin
	if pin == nil {
		return
	}
	record := v1alpha1.RollbackEvent{
		Namespace: ro.Namespace, Rollout: ro.Name, From: pin.From, To: pin.Revision, ToNumber: pin.Number, ToImages: to,
		Target: pin.Target, Reason: pin.Reason, RequestedBy: pin.RequestedBy, Request: pin.Request,
	}
	for _, c := range plan.Next.Rollbacks {
		if c.Revision == pin.From {
			record.FromImages = c.Images
		}
	}
	raw, err := json.Marshal(record)
	if err != nil {
		return
	}
	now := r.Now()
	ev := &eventsv1.Event{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ro.Namespace, GenerateName: "tugboat-rolled-back-", // the Rollout is in regarding
			Annotations: map[string]string{v1alpha1.AnnotationRolledBack: string(raw)},
		},
		EventTime:           metav1.NewMicroTime(now),
		ReportingController: "tugboat",
		ReportingInstance:   reportingInstance(),
		Action:              "Reconcile",
		Reason:              string(rollout.RolledBack),
		Type:                corev1.EventTypeWarning,
		Note:                analysis.Shorten(plan.Message, 1024),
		Regarding: corev1.ObjectReference{
			APIVersion: v1alpha1.GroupVersion.String(), Kind: "Rollout",
			Namespace: ro.Namespace, Name: ro.Name, UID: ro.UID, ResourceVersion: ro.ResourceVersion,
		},
	}
	if err := r.Client.Create(ctx, ev); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "record the RolledBack event", "rollout", ro.Name)
	}
	r.Metrics.transition(ro, rollout.RolledBack)
}

// reportingInstance names this controller in the events it writes.
func reportingInstance() string {
	if h, err := os.Hostname(); err == nil && h != "" {
		return analysis.Shorten(h, 128)
	}
	return "tugboat"
}
