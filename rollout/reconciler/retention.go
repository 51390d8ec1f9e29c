package reconciler

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/rollout"
)

// labelRevision, on an AnalysisRun, is the canary revision it analyses;
// retention keeps runs per revision by it.
const labelRevision = v1alpha1.AnnotationRevision

// defaultRunHistoryLimit is spec.analysisRunHistoryLimit's default, for a
// Rollout stored before the field had one.
const defaultRunHistoryLimit = 5

// maxPrunedPerReconcile bounds the deletes of one reconcile, so that a
// Rollout with a long past sheds it a batch at a time: each delete wakes the
// Rollout again.
const maxPrunedPerReconcile = 20

// pruneRetry is how soon a reconcile that failed to delete a run tries again.
const pruneRetry = time.Minute

// listRuns lists the AnalysisRuns ro controls, from the cache.
func (r *Reconciler) listRuns(ctx context.Context, ro *v1alpha1.Rollout) ([]*v1alpha1.AnalysisRun, error) {
	var list v1alpha1.AnalysisRunList
	if err := r.Client.List(ctx, &list, client.InNamespace(ro.Namespace), client.MatchingLabels{labelRollout: ro.Name}); err != nil {
		return nil, fmt.Errorf("list analysis runs of rollout %s/%s: %w", ro.Namespace, ro.Name, err)
	}
	runs := make([]*v1alpha1.AnalysisRun, 0, len(list.Items))
	for i := range list.Items {
		if metav1.IsControlledBy(&list.Items[i], ro) {
			runs = append(runs, &list.Items[i])
		}
	}
	return runs, nil
}

// pruneRuns deletes the finished AnalysisRuns of ro past its history limits
// (see rollout.Prune). The runs status names, before and after this
// reconcile's patch (base and ro), and those of the attempts in progress
// (read and next) are protected. A run is deleted only as it was listed
// (its UID and resourceVersion), so one changed or replaced meanwhile stays.
// A failure is logged and announced, never returned: it must not hold the
// rollout up; retry says to try again later.
func (r *Reconciler) pruneRuns(ctx context.Context, ro, base *v1alpha1.Rollout, runs []*v1alpha1.AnalysisRun, read, next rollout.Progress) (retry bool) {
	key := client.ObjectKeyFromObject(ro)
	deleted, _ := r.prunedRuns.Load(key)
	gone, _ := deleted.(map[types.UID]bool)
	seen := map[types.UID]bool{}
	protected := map[string]bool{}
	for _, s := range []*v1alpha1.RolloutStatus{&ro.Status, &base.Status} {
		for _, a := range s.Analysis {
			protected[a.Run] = true
		}
	}
	records := make([]rollout.RunRecord, 0, len(runs))
	byName := map[string]*v1alpha1.AnalysisRun{}
	for _, run := range runs {
		seen[run.UID] = true
		if gone[run.UID] || !run.DeletionTimestamp.IsZero() {
			continue // deleted, and the cache does not show it yet
		}
		if isCurrent(run.Name, ro.Name, read) || isCurrent(run.Name, ro.Name, next) {
			protected[run.Name] = true
		}
		byName[run.Name] = run
		records = append(records, rollout.RunRecord{
			Name:     run.Name,
			Revision: run.Labels[labelRevision],
			Created:  run.CreationTimestamp.Time,
			Finished: run.Status.Phase.Completed(),
		})
	}
	for uid := range gone {
		if !seen[uid] {
			delete(gone, uid)
		}
	}
	names := rollout.Prune(records, retention(ro), protected)
	if len(names) == 0 {
		return false
	}
	if len(names) > maxPrunedPerReconcile {
		names, retry = names[:maxPrunedPerReconcile], true
	}
	if gone == nil {
		gone = map[types.UID]bool{}
	}
	r.prunedRuns.Store(key, gone)
	var pruned, failed []string
	for _, name := range names {
		run := byName[name]
		err := r.Client.Delete(ctx, run, client.Preconditions{UID: ptr.To(run.UID), ResourceVersion: ptr.To(run.ResourceVersion)})
		switch {
		case err == nil || apierrors.IsNotFound(err):
			gone[run.UID] = true
			pruned = append(pruned, name)
		case apierrors.IsConflict(err):
			// Changed since the cache showed it: decided on again once the
			// cache has the change.
			log.FromContext(ctx).V(1).Info("analysis run changed since listed; not deleted", "run", name)
			retry = true
		default:
			log.FromContext(ctx).Error(err, "delete finished analysis run", "run", name)
			failed = append(failed, fmt.Sprintf("%s: %v", name, err))
			retry = true
		}
	}
	if len(pruned) > 0 {
		r.Recorder.Eventf(ro, nil, corev1.EventTypeNormal, "AnalysisRunsPruned", "Prune",
			"deleted %d finished analysis runs past the history limit (%d per revision): %s", len(pruned), retention(ro).PerRevision, listed(pruned, ", "))
	}
	if len(failed) > 0 {
		r.Recorder.Eventf(ro, nil, corev1.EventTypeWarning, "AnalysisRunPruneFailed", "Prune",
			"could not delete %d finished analysis runs, tried again later: %s", len(failed), listed(failed, "; "))
	}
	return retry
}

// retention is what ro keeps of its finished runs: analysisRunHistoryLimit
// per revision, of as many revisions as its revision history keeps.
func retention(ro *v1alpha1.Rollout) rollout.Retention {
	return rollout.Retention{
		PerRevision: int(ptr.Deref(ro.Spec.AnalysisRunHistoryLimit, defaultRunHistoryLimit)),
		Revisions:   revisionHistoryLimit(ro),
	}
}

// listed joins the first few of items, saying how many more there are, so
// that an event's note stays short.
func listed(items []string, sep string) string {
	const shown = 3
	if len(items) <= shown {
		return strings.Join(items, sep)
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:shown], sep), len(items)-shown)
}
