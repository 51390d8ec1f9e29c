package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/sandbox/demo"
)

// TestWebGate: given examples/approval-gate's template and the sandbox's
// approvals API, when a run asks whether release r1 may go on, then it
// holds, counting each no, until the release is approved, and passes; and a
// url the controller does not allow is refused with the reason, nothing
// sent.
func TestWebGate(t *testing.T) {
	ctx := t.Context()
	if err := demo.Apply(ctx, box.Client(), "approval-gate", box.Namespace); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	start := func(name, approvals, release string) {
		t.Helper()
		var tpl v1alpha1.AnalysisTemplate
		if err := box.Client().Get(ctx, client.ObjectKey{Namespace: box.Namespace, Name: "approval"}, &tpl); err != nil {
			t.Fatal(err)
		}
		run := &v1alpha1.AnalysisRun{
			ObjectMeta: metav1.ObjectMeta{Namespace: box.Namespace, Name: name},
			Spec: v1alpha1.AnalysisRunSpec{
				Metrics: tpl.Spec.Metrics,
				Args:    []argo.Argument{{Name: "approvals", Value: ptr.To(approvals)}, {Name: "release", Value: ptr.To(release)}},
			},
		}
		if err := box.Client().Create(ctx, run); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = box.Client().Delete(context.Background(), run) })
	}
	until := func(what, name string, cond func(*v1alpha1.AnalysisRun) bool) *v1alpha1.AnalysisRun {
		t.Helper()
		var run v1alpha1.AnalysisRun
		err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			if err := box.Client().Get(ctx, client.ObjectKey{Namespace: box.Namespace, Name: name}, &run); err != nil {
				return false, client.IgnoreNotFound(err)
			}
			return cond(&run), nil
		})
		if err != nil {
			t.Fatalf("%s: %+v\n%s", what, run.Status, box.ControllerLog(20))
		}
		return &run
	}

	// When: a run asks about r1, which nobody has approved.
	start("approval-r1", box.Sink.URL, "r1")
	// Then: it holds.
	run := until("two answers of no", "approval-r1", func(r *v1alpha1.AnalysisRun) bool {
		return len(r.Status.MetricResults) == 1 && r.Status.MetricResults[0].Failed >= 2
	})
	if run.Status.Phase.Completed() || box.Sink.Asked("r1") < 2 {
		t.Fatalf("the gate did not hold (asked %d times): %+v", box.Sink.Asked("r1"), run.Status)
	}
	// When: a person approves r1. Then: the run passes.
	box.Sink.Approve("r1", true)
	run = until("the verdict", "approval-r1", func(r *v1alpha1.AnalysisRun) bool { return r.Status.Phase.Completed() })
	if run.Status.Phase != argo.AnalysisPhaseSuccessful {
		t.Errorf("after the approval: %+v", run.Status)
	}

	// When: a run asks a host the controller does not allow. Then: refused.
	start("approval-elsewhere", "http://approvals.example.com", "r1")
	run = until("a measurement", "approval-elsewhere", func(r *v1alpha1.AnalysisRun) bool {
		return len(r.Status.MetricResults) == 1 && len(r.Status.MetricResults[0].Measurements) > 0
	})
	if m := run.Status.MetricResults[0].Measurements[0]; m.Phase != argo.AnalysisPhaseError || !strings.Contains(m.Message, "--web-allowed-hosts") {
		t.Errorf("a host not allowed: %+v", m)
	}
}
