package reconciler_test

import (
	"testing"
	"time"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	"k8s.io/utils/ptr"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

// setMirrorRoute copies matching requests to the canary while the rollout
// runs; promotion removes the route.
func TestMirrorRoute(t *testing.T) {
	f := given(t)
	f.app("mr", 1, managedRoute("mr"))
	mirror := v1alpha1.Step{SetMirrorRoute: &argo.SetMirrorRoute{Name: "shadow", Percentage: ptr.To[int32](40),
		Match: []argo.RouteMatch{{Method: &argo.StringMatch{Exact: "GET"}}}}}
	f.rollout(newRollout("mr", weight(10), mirror, pause("")))
	f.eventually("mr", "initialized", time.Minute, hasReason("Healthy"))
	f.release("mr", "v2")
	ro := f.eventually("mr", "paused with the mirror in place", time.Minute, atStep(2, "WaitingForPromotion"))
	routes := f.wantWeights("mr", 90, 10)
	shadow := routes["shadow"]
	if shadow == nil {
		t.Fatalf("no mirror route among %v", routes)
	}
	if shadow.GetMirror().GetHost() != "mr-canary" || shadow.GetMirrorPercentage().GetValue() != 40 ||
		shadow.GetMatch()[0].GetMethod().GetExact() != "GET" || len(shadow.GetRoute()) != 2 || shadow.GetRoute()[1].GetWeight() != 10 {
		t.Errorf("mirror route %v", shadow)
	}
	f.annotate("mr", v1alpha1.AnnotationPromote, "p1")
	f.eventually("mr", "promoted", time.Minute, stableAt(ro.Status.CanaryRevision))
	if routes := f.wantWeights("mr", 100, 0); routes["shadow"] != nil {
		t.Errorf("mirror route left after promotion: %v", routes["shadow"])
	}
}
