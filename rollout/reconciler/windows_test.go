package reconciler_test

import (
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

// A deny window holds a new revision at rest, canary not started; once the
// window is gone the rollout runs.
func TestDenyWindowHoldsANewRevision(t *testing.T) {
	f := given(t)
	f.app("win", 1, managedRoute("win"))
	ro := newRollout("win", weight(50))
	ro.Spec.Windows = &v1alpha1.Windows{Deny: []v1alpha1.Window{{Schedule: "* * * * *", Duration: "1h"}}} // always
	f.rollout(ro)
	stable := f.eventually("win", "initialized", time.Minute, hasReason("Healthy")).Status.StableRevision
	f.release("win", "v2")
	ro = f.eventually("win", "held by the window", time.Minute, hasReason("OutsideWindow"))
	if ro.Status.CanaryRevision != "" || !strings.Contains(ro.Status.Message, "waits for a deployment window: inside deny window spec.windows.deny[0]") {
		t.Errorf("held: %+v", ro.Status)
	}
	if n := f.replicas("win"); n != 0 {
		t.Errorf("canary at %d replicas while held, want 0", n)
	}
	f.update(&v1alpha1.Rollout{}, "win", func(o client.Object) { o.(*v1alpha1.Rollout).Spec.Windows = nil })
	f.eventually("win", "promoted once the window is gone", time.Minute, func(ro *v1alpha1.Rollout) bool {
		return reason(ro) == "Healthy" && ro.Status.StableRevision != stable && ro.Status.CanaryRevision == ""
	})
	f.wantEvent("win", "Promoted")
}

// A window that cannot be parsed shows in status, naming the field.
func TestBadWindowShowsInStatus(t *testing.T) {
	f := given(t)
	f.app("bw", 1, managedRoute("bw"))
	ro := newRollout("bw", weight(50))
	ro.Spec.Windows = &v1alpha1.Windows{Timezone: "Mars/Olympus"}
	f.rollout(ro)
	ro = f.eventually("bw", "invalid", time.Minute, hasReason("InvalidSpec"))
	if !strings.Contains(ro.Status.Message, `spec.windows.timezone: unknown time zone "Mars/Olympus"`) {
		t.Errorf("message %q", ro.Status.Message)
	}
}
