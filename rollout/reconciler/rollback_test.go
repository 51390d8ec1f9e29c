package reconciler_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/rollout/status"
)

// rollBack writes a rollback request, as kubectl tug rollback does.
func (f *fixture) rollBack(name, id string, to int64, reason string) {
	f.t.Helper()
	raw, err := json.Marshal(v1alpha1.RollbackRequest{ID: id, ToRevision: to, Reason: reason, User: "jane"})
	if err != nil {
		f.t.Fatal(err)
	}
	f.annotate(name, v1alpha1.AnnotationRollback, string(raw))
}

func answered(id string) func(*v1alpha1.Rollout) bool {
	return func(ro *v1alpha1.Rollout) bool {
		return ro.Status.ObservedRequests.Rollback == id && ro.Status.RollbackRequest != nil && ro.Status.RollbackRequest.ID == id
	}
}

// primaryServes: primary is Ready on version, every replica updated.
func (f *fixture) primaryServes(name, version string) func() bool {
	return func() bool {
		var d appsv1.Deployment
		if err := f.c.Get(f.t.Context(), client.ObjectKey{Namespace: f.ns, Name: name + "-primary"}, &d); err != nil {
			return false
		}
		want := ptr.Deref(d.Spec.Replicas, 1)
		return d.Spec.Template.Spec.Containers[0].Env[0].Value == version && d.Status.ObservedGeneration == d.Generation &&
			d.Status.UpdatedReplicas == want && d.Status.ReadyReplicas == want && d.Status.Replicas == want
	}
}

func TestRollbackToARevision(t *testing.T) {
	f := given(t)
	f.app("rb", 2, managedRoute("rb"))
	f.rollout(newRollout("rb", weight(50), pause("")))
	v1 := f.eventually("rb", "initialized", time.Minute, hasReason("Healthy")).Status.StableRevision
	promoted := func(version string) string {
		rev := f.release("rb", version)
		f.eventually("rb", version+" paused", time.Minute, atStep(1, "WaitingForPromotion"))
		f.annotate("rb", v1alpha1.AnnotationPromote, "p-"+version)
		f.eventually("rb", version+" promoted", time.Minute, stableAt(rev))
		return rev
	}
	v2 := promoted("v2")
	v3 := promoted("v3")

	// History: three revisions, numbered, with what a person picks by. The
	// promotion's record may land a reconcile after status says promoted.
	var wrong []string
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		var history appsv1.ControllerRevisionList
		if err := f.c.List(ctx, &history, client.InNamespace(f.ns), client.MatchingLabels{v1alpha1.LabelRollout: "rb"}); err != nil {
			return false, err
		}
		byNumber := map[int64]appsv1.ControllerRevision{}
		for _, cr := range history.Items {
			byNumber[cr.Revision] = cr
		}
		wrong = nil
		for n, rev := range map[int64]string{1: v1, 2: v2, 3: v3} {
			cr, ok := byNumber[n]
			if !ok || cr.Annotations[v1alpha1.AnnotationRevision] != rev || cr.Annotations[v1alpha1.AnnotationImages] != "example.com/rb:1" ||
				cr.Annotations[v1alpha1.AnnotationPromotedAt] == "" || cr.Annotations[v1alpha1.AnnotationPromotedBy] == "" {
				wrong = append(wrong, fmt.Sprintf("revision %d: %+v", n, cr.ObjectMeta))
			}
		}
		return len(wrong) == 0, nil
	})
	if err != nil {
		t.Errorf("history: %v\n%s", err, strings.Join(wrong, "\n"))
	}

	t.Run("a revision not in history is refused, nothing changes", func(t *testing.T) {
		f.rollBack("rb", "r0", 9, "")
		ro := f.eventually("rb", "refused", 30*time.Second, answered("r0"))
		a := ro.Status.RollbackRequest
		if a.Accepted || !strings.Contains(a.Message, "revision 9 is not in the history of rollout "+f.ns+"/rb (revisions 1, 2, 3") {
			t.Errorf("answer %+v", a)
		}
		if ro.Status.StableRevision != v3 || ro.Status.Rollback != nil {
			t.Errorf("stable %s, rollback %+v", ro.Status.StableRevision, ro.Status.Rollback)
		}
		f.wantEvent("rb", "RollbackRefused")
	})

	t.Run("to the previous revision: primary goes back at once, pinned", func(t *testing.T) {
		asked := time.Now()
		f.rollBack("rb", "r1", 0, "v3 breaks checkout")
		ro := f.eventually("rb", "rolled back", 30*time.Second, answered("r1"))
		if err := pollUntil(t, time.Minute, f.primaryServes("rb", "v2")); err != nil {
			t.Fatalf("primary never served v2: %v", err)
		}
		t.Logf("from request to all traffic on revision 2, Ready: %s", time.Since(asked).Round(time.Millisecond))
		if a := ro.Status.RollbackRequest; !a.Accepted {
			t.Fatalf("answer %+v", a)
		}
		pin := ro.Status.Rollback
		if ro.Status.StableRevision != v2 || pin == nil || pin.Number != 2 || pin.Revision != v2 || pin.From != v3 || pin.Target != v3 ||
			pin.RequestedBy != "jane" || pin.Reason != "v3 breaks checkout" {
			t.Fatalf("stable %s, pin %+v", ro.Status.StableRevision, pin)
		}
		c := meta.FindStatusCondition(ro.Status.Conditions, status.ConditionRolledBack)
		if c == nil || c.Status != metav1.ConditionTrue || !strings.Contains(c.Message, "by jane: v3 breaks checkout") {
			t.Errorf("condition %+v", c)
		}
		if len(ro.Status.Rollbacks) != 1 || ro.Status.Rollbacks[0].Revision != v3 || ro.Status.Rollbacks[0].Requested != 1 {
			t.Errorf("counts %+v", ro.Status.Rollbacks)
		}
		f.wantWeights("rb", 100, 0)
		f.wantEvent("rb", "RolledBack")
		// The event says, for a pipeline, what to revert.
		var events eventsv1.EventList
		if err := f.c.List(t.Context(), &events, client.InNamespace(f.ns)); err != nil {
			t.Fatal(err)
		}
		var records []v1alpha1.RollbackEvent
		for _, e := range events.Items {
			if e.Reason == "RolledBack" && e.Regarding.Name == "rb" {
				var rec v1alpha1.RollbackEvent
				if err := json.Unmarshal([]byte(e.Annotations[v1alpha1.AnnotationRolledBack]), &rec); err != nil {
					t.Fatalf("event annotation: %v", err)
				}
				records = append(records, rec)
			}
		}
		want := v1alpha1.RollbackEvent{Namespace: f.ns, Rollout: "rb", From: v3, To: v2, ToNumber: 2, FromImages: []string{"example.com/rb:1"},
			ToImages: []string{"example.com/rb:1"}, Target: v3, Reason: "v3 breaks checkout", RequestedBy: "jane", Request: "r1"}
		if len(records) != 1 || !reflect.DeepEqual(records[0], want) {
			t.Errorf("RolledBack events say %+v, want one saying %+v", records, want)
		}
	})

	t.Run("a GitOps re-apply of the target during the pin changes nothing", func(t *testing.T) {
		var d appsv1.Deployment
		f.update(&d, "rb", func(o client.Object) {
			l := o.GetLabels()
			if l == nil {
				l = map[string]string{}
			}
			l["argocd.argoproj.io/instance"] = "rb" // applied again, template unchanged
			o.SetLabels(l)
		})
		ro := f.eventually("rb", "observed", 30*time.Second, func(ro *v1alpha1.Rollout) bool { return reason(ro) == "RolledBack" })
		if ro.Status.CanaryRevision != "" || ro.Status.StableRevision != v2 || ro.Status.Rollback == nil {
			t.Errorf("status %+v", ro.Status)
		}
		f.wantWeights("rb", 100, 0)
	})

	var v4 string
	t.Run("a new template ends the pin and rolls out as usual", func(t *testing.T) {
		v4 = f.release("rb", "v4")
		ro := f.eventually("rb", "rolling out the fix", time.Minute, atStep(1, "WaitingForPromotion"))
		if ro.Status.Rollback != nil || ro.Status.StableRevision != v2 || ro.Status.CanaryRevision != v4 {
			t.Errorf("status %+v", ro.Status)
		}
		c := meta.FindStatusCondition(ro.Status.Conditions, status.ConditionRolledBack)
		if c == nil || c.Status != metav1.ConditionFalse {
			t.Errorf("condition %+v", c)
		}
	})

	t.Run("mid-rollout: the canary is aborted and primary goes back", func(t *testing.T) {
		f.rollBack("rb", "r2", 1, "")
		ro := f.eventually("rb", "rolled back mid-rollout", 30*time.Second, answered("r2"))
		if a := ro.Status.RollbackRequest; !a.Accepted || !strings.Contains(a.Message, "aborted") {
			t.Fatalf("answer %+v", a)
		}
		if ro.Status.StableRevision != v1 || ro.Status.CanaryRevision != "" || ro.Status.Rollback == nil || ro.Status.Rollback.Target != v4 || ro.Status.Rollback.From != v2 {
			t.Errorf("status %+v", ro.Status)
		}
		if err := pollUntil(t, time.Minute, f.primaryServes("rb", "v1")); err != nil {
			t.Fatalf("primary never served v1: %v", err)
		}
		f.wantWeights("rb", 100, 0)
	})

	t.Run("cancel lifts the pin: the target's template rolls out", func(t *testing.T) {
		f.annotate("rb", v1alpha1.AnnotationRollbackCancel, "c1")
		ro := f.eventually("rb", "unpinned", 30*time.Second, func(ro *v1alpha1.Rollout) bool {
			return ro.Status.ObservedRequests.RollbackCancel == "c1"
		})
		if ro.Status.Rollback != nil || ro.Status.CanaryRevision != v4 {
			t.Errorf("status %+v", ro.Status)
		}
	})
}

// Deleting a Rollout pinned by a rollback hands the application back on the
// revision rolled back to, not on the one the target still holds.
func TestDeletedWhilePinned(t *testing.T) {
	f := given(t)
	f.app("dp", 1, managedRoute("dp"))
	f.rollout(newRollout("dp", weight(50)))
	f.eventually("dp", "initialized", time.Minute, hasReason("Healthy"))
	v2 := f.release("dp", "v2")
	f.eventually("dp", "promoted", time.Minute, stableAt(v2))
	f.rollBack("dp", "r1", 0, "")
	f.eventually("dp", "rolled back", 30*time.Second, answered("r1"))
	if err := pollUntil(t, time.Minute, f.primaryServes("dp", "v1")); err != nil {
		t.Fatalf("primary never served v1: %v", err)
	}
	var ro v1alpha1.Rollout
	f.get(&ro, "dp")
	if err := f.c.Delete(t.Context(), &ro); err != nil {
		t.Fatal(err)
	}
	f.gone(&v1alpha1.Rollout{}, "dp", "the Rollout")
	var d appsv1.Deployment
	f.get(&d, "dp")
	if v := d.Spec.Template.Spec.Containers[0].Env[0].Value; v != "v1" {
		t.Errorf("the target was handed back on %s, want v1, the revision rolled back to", v)
	}
	f.wantEvent("dp", "TargetRestored")
}

// A rollback further back than fastTrackRevisions rolls the old revision
// out again, from its record, as a canary in <name>-rollback, through the
// steps; the target keeps its template (what git says) and no pods.
func TestRollbackThroughSteps(t *testing.T) {
	f := given(t)
	f.app("rs", 2, managedRoute("rs"))
	f.rollout(newRollout("rs", weight(50), pause("")))
	v1 := f.eventually("rs", "initialized", time.Minute, hasReason("Healthy")).Status.StableRevision
	var v3 string
	for _, version := range []string{"v2", "v3"} {
		v3 = f.release("rs", version)
		f.eventually("rs", version+" paused", time.Minute, atStep(1, "WaitingForPromotion"))
		f.annotate("rs", v1alpha1.AnnotationPromote, "p-"+version)
		f.eventually("rs", version+" promoted", time.Minute, stableAt(v3))
	}

	t.Run("revision 1 is two back: it goes through the steps as a canary", func(t *testing.T) {
		f.rollBack("rs", "r1", 1, "v2 and v3 lose orders")
		ro := f.eventually("rs", "answered", 30*time.Second, answered("r1"))
		if a := ro.Status.RollbackRequest; !a.Accepted || !strings.Contains(a.Message, "rolling back to revision 1 ("+v1+") from "+v3+" through the steps") {
			t.Fatalf("answer %+v", a)
		}
		ro = f.eventually("rs", "at the pause", time.Minute, atStep(1, "WaitingForPromotion"))
		pin := ro.Status.Rollback
		if ro.Status.StableRevision != v3 || ro.Status.CanaryRevision != v1 || ro.Status.CanaryWorkload != "rs-rollback" || pin == nil || !pin.ThroughSteps || pin.Target != v3 {
			t.Fatalf("status %+v, rollback %+v", ro.Status, pin)
		}
		f.wantWeights("rs", 50, 50)
		var canary appsv1.Deployment
		f.get(&canary, "rs-rollback")
		// Labelled as primary is, with no owner reference that foreground
		// deletion would follow before the hand-back.
		if v := canary.Spec.Template.Spec.Containers[0].Env[0].Value; v != "v1" || canary.Spec.Selector.MatchLabels["app"] != "rs-rollback" ||
			len(canary.OwnerReferences) != 0 || canary.Labels[v1alpha1.LabelRollout] != "rs" {
			t.Errorf("rollback canary runs %s, selector %v, owners %v, labels %v", v, canary.Spec.Selector.MatchLabels, canary.OwnerReferences, canary.Labels)
		}
		if n := f.replicas("rs"); n != 0 {
			t.Errorf("the target runs %d pods while rolling back through the steps", n)
		}
		var svc corev1.Service
		f.get(&svc, "rs-canary")
		if svc.Spec.Selector["app"] != "rs-rollback" {
			t.Errorf("canary service selects %v", svc.Spec.Selector)
		}
		var target appsv1.Deployment
		f.get(&target, "rs")
		if v := target.Spec.Template.Spec.Containers[0].Env[0].Value; v != "v3" {
			t.Errorf("the target's template was changed to %s", v)
		}
		f.wantEvent("rs", "RollingBack")
	})

	t.Run("promoted, it holds: pinned on revision 1, the rollback canary gone", func(t *testing.T) {
		f.annotate("rs", v1alpha1.AnnotationPromote, "p-back")
		ro := f.eventually("rs", "rolled back", time.Minute, hasReason("RolledBack"))
		pin := ro.Status.Rollback
		if ro.Status.StableRevision != v1 || ro.Status.CanaryRevision != "" || pin == nil || pin.ThroughSteps || pin.Number != 1 || pin.From != v3 || pin.RequestedBy != "jane" {
			t.Fatalf("status %+v, rollback %+v", ro.Status, pin)
		}
		if err := pollUntil(t, time.Minute, f.primaryServes("rs", "v1")); err != nil {
			t.Fatalf("primary never served v1: %v", err)
		}
		f.wantWeights("rs", 100, 0)
		f.gone(&appsv1.Deployment{}, "rs-rollback", "the rollback canary")
		err := pollUntil(t, 30*time.Second, func() bool {
			var svc corev1.Service
			f.get(&svc, "rs-canary")
			return svc.Spec.Selector["app"] == "rs"
		})
		if err != nil {
			t.Errorf("the canary service never selected the target's pods again: %v", err)
		}
		f.wantEvent("rs", "RolledBack")
	})

	t.Run("cancelled on the way: traffic back on stable, the rollback canary gone", func(t *testing.T) {
		v4 := f.release("rs", "v4")
		f.eventually("rs", "v4 paused", time.Minute, atStep(1, "WaitingForPromotion"))
		f.annotate("rs", v1alpha1.AnnotationPromote, "p-v4")
		f.eventually("rs", "v4 promoted", time.Minute, stableAt(v4))
		f.rollBack("rs", "r2", 2, "")
		f.eventually("rs", "rolling back to 2", time.Minute, func(ro *v1alpha1.Rollout) bool {
			return ro.Status.Rollback != nil && ro.Status.Rollback.ThroughSteps && reason(ro) == "WaitingForPromotion"
		})
		f.annotate("rs", v1alpha1.AnnotationRollbackCancel, "c1")
		ro := f.eventually("rs", "cancelled", 30*time.Second, stableAt(v4))
		if ro.Status.Rollback != nil {
			t.Errorf("rollback %+v", ro.Status.Rollback)
		}
		f.wantWeights("rs", 100, 0)
		f.gone(&appsv1.Deployment{}, "rs-rollback", "the rollback canary")
	})

	t.Run("deleted on the way: the target serves what stable ran, the rollback canary goes", func(t *testing.T) {
		f.rollBack("rs", "r3", 2, "")
		f.eventually("rs", "rolling back to 2", time.Minute, func(ro *v1alpha1.Rollout) bool {
			return ro.Status.Rollback != nil && ro.Status.Rollback.ThroughSteps && reason(ro) == "WaitingForPromotion"
		})
		var ro v1alpha1.Rollout
		f.get(&ro, "rs")
		if err := f.c.Delete(t.Context(), &ro, client.PropagationPolicy(metav1.DeletePropagationForeground)); err != nil {
			t.Fatal(err)
		}
		f.gone(&v1alpha1.Rollout{}, "rs", "the Rollout")
		f.gone(&appsv1.Deployment{}, "rs-rollback", "the rollback canary")
		var d appsv1.Deployment
		f.get(&d, "rs")
		if v := d.Spec.Template.Spec.Containers[0].Env[0].Value; v != "v4" || ptr.Deref(d.Spec.Replicas, 0) < 2 {
			t.Errorf("the target was handed back on %s with %d replicas, want v4 with 2", v, ptr.Deref(d.Spec.Replicas, 0))
		}
	})
}
