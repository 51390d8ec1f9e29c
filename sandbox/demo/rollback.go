package demo

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

// Pinned is how a rollback ends: the revision asked for serves, held there.
const Pinned Outcome = "pinned"

// Fix is the release that ends the demo's rollback: within the SLO, it rolls
// out as usual and clears the pin.
var Fix = Release{Name: "fix", Image: "ghcr.io/stefanprodan/podinfo:6.7.3", ErrorRate: "0.001", LatencyMs: "45", Want: Promoted}

// ThroughStepsReason is the demo's last act: once the fix is promoted,
// revision 1 lies further back than fastTrackRevisions.
const ThroughStepsReason = "the fix breaks a client pinned to the first release"

// RollBack asks, as kubectl tug rollback does, for the Rollout to go back to
// revision to of its history, and follows it until primary serves that
// revision, Ready, with all the traffic, pinned: at once for a revision
// within spec.rollback.fastTrackRevisions, through the steps for one
// further back. Then it shows the history.
func RollBack(ctx context.Context, c client.Client, key types.NamespacedName, to int64, reason string, timeout time.Duration, out io.Writer) (Result, error) {
	act := Release{Name: fmt.Sprintf("rollback to %d", to), Want: Pinned}
	id := "demo-" + time.Now().UTC().Format("20060102T150405.000000000")
	raw, err := json.Marshal(v1alpha1.RollbackRequest{ID: id, ToRevision: to, Reason: reason, User: "demo"})
	if err != nil {
		return Result{}, err
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{v1alpha1.AnnotationRollback: string(raw)}}})
	if err != nil {
		return Result{}, err
	}
	fmt.Fprintf(out, "\n▶ a person rolls back to revision %d: %q; want it serving, pinned\n", to, reason)
	start := time.Now()
	if err := c.Patch(ctx, &v1alpha1.Rollout{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}}, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return Result{}, fmt.Errorf("request the rollback: %w", err)
	}
	res := Result{Release: act, Got: TimedOut}
	var ro v1alpha1.Rollout
	last := ""
	var lastErr error
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		if lastErr = c.Get(ctx, key, &ro); lastErr != nil {
			return false, nil
		}
		a := ro.Status.RollbackRequest
		switch {
		case a == nil || a.ID != id:
			return false, nil
		case !a.Accepted:
			res.Got, res.Message = "refused", a.Message
			return true, nil
		}
		res.Message = a.Message
		if line, err := progress(ctx, c, &ro); err == nil && line != last {
			fmt.Fprintf(out, "  %5s  %s\n", time.Since(start).Round(time.Second), line)
			last = line
		}
		pin := ro.Status.Rollback
		if pin == nil || pin.ThroughSteps || pin.Request != id {
			return false, nil // on its way through the steps
		}
		var primary appsv1.Deployment
		if lastErr = c.Get(ctx, types.NamespacedName{Namespace: key.Namespace, Name: key.Name + "-primary"}, &primary); lastErr != nil {
			return false, nil
		}
		want := ptr.Deref(primary.Spec.Replicas, 1)
		served := primary.Annotations[v1alpha1.AnnotationRevision] == ro.Status.StableRevision && primary.Status.ObservedGeneration == primary.Generation &&
			primary.Status.UpdatedReplicas == want && primary.Status.ReadyReplicas == want && primary.Status.Replicas == want
		if served && ro.Status.CanaryWeight == 0 {
			res.Got = Pinned
			return true, nil
		}
		return false, nil
	})
	res.Took = time.Since(start)
	if err != nil && !wait.Interrupted(err) {
		return res, err
	}
	if res.Got == TimedOut && lastErr != nil {
		res.Message = fmt.Sprintf("%s (last read: %v)", res.Message, lastErr)
	}
	fmt.Fprintf(out, "  → %s in %s (request to all traffic on revision %d, Ready): %s\n", res.Got, res.Took.Round(100*time.Millisecond), to, res.Message)
	if res.Got == Pinned {
		if err := History(ctx, c, &ro, out); err != nil {
			return res, err
		}
	}
	return res, nil
}

// History writes the Rollout's revisions, newest first, as kubectl tug
// history shows them: the one serving, the pin, the rollback counts.
func History(ctx context.Context, c client.Client, ro *v1alpha1.Rollout, out io.Writer) error {
	var list appsv1.ControllerRevisionList
	if err := c.List(ctx, &list, client.InNamespace(ro.Namespace), client.MatchingLabels{v1alpha1.LabelRollout: ro.Name}); err != nil {
		return err
	}
	slices.SortFunc(list.Items, func(a, b appsv1.ControllerRevision) int { return cmp.Compare(b.Revision, a.Revision) })
	counts := map[string]v1alpha1.RevisionRollbacks{}
	for _, n := range ro.Status.Rollbacks {
		counts[n.Revision] = n
	}
	fmt.Fprintln(out, "  history:")
	for _, cr := range list.Items {
		rev := cr.Annotations[v1alpha1.AnnotationRevision]
		var marks []string
		if rev == ro.Status.StableRevision {
			marks = append(marks, "serving")
		}
		if p := ro.Status.Rollback; p != nil && p.Revision == rev {
			marks = append(marks, "pinned")
		}
		if n := counts[rev]; n.Requested+n.Aborted > 0 {
			marks = append(marks, fmt.Sprintf("rolled back from %d×, aborted %d×", n.Requested, n.Aborted))
		}
		fmt.Fprintf(out, "    %d  %s  %s  %s\n", cr.Revision, rev, cr.Annotations[v1alpha1.AnnotationImages], strings.Join(marks, ", "))
	}
	return nil
}

// WaitQuiet waits until Prometheus has seen no request to the target's
// (canary's) pods within the analysis window, so that a release shipped
// next is judged on its own requests and not on the tail of an aborted
// one's.
func WaitQuiet(ctx context.Context, prometheus string, key types.NamespacedName, window string, timeout time.Duration, out io.Writer) error {
	c, err := api.NewClient(api.Config{Address: prometheus})
	if err != nil {
		return err
	}
	q := fmt.Sprintf(`sum(rate(istio_requests_total{reporter="source", destination_workload=%q, destination_workload_namespace=%q}[%s])) > 0`, key.Name, key.Namespace, window)
	fmt.Fprintf(out, "\n  waiting until the aborted canary's requests have left the %s analysis window\n", window)
	start := time.Now()
	var lastErr error
	err = wait.PollUntilContextTimeout(ctx, time.Second, timeout, true, func(ctx context.Context) (bool, error) {
		v, _, _, err := promv1.NewAPI(c).Query(ctx, q, time.Now())
		if lastErr = err; err != nil {
			return false, nil
		}
		vec, ok := v.(model.Vector)
		return ok && len(vec) == 0, nil
	})
	if err != nil {
		return fmt.Errorf("the canary's requests never left the window: %w (last query: %v)", err, lastErr)
	}
	fmt.Fprintf(out, "  %5s  quiet\n", time.Since(start).Round(time.Second))
	return nil
}
