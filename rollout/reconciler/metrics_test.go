package reconciler

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

// The pin gauge says how long a rollback has held: none while one is on
// its way through the steps, its time once it holds, none once it ended.
func TestPinnedSince(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	since := metav1.NewTime(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
	ro := &v1alpha1.Rollout{ObjectMeta: metav1.ObjectMeta{Namespace: "prod", Name: "web"}}
	ro.Status.Rollback = &v1alpha1.RolloutRollback{Revision: "s0", Number: 1, Since: since, ThroughSteps: true}
	m.observe(ro)
	if n := testutil.CollectAndCount(m.pinned); n != 0 {
		t.Errorf("on its way through the steps: %d series", n)
	}
	ro.Status.Rollback.ThroughSteps = false
	m.observe(ro)
	if v := testutil.ToFloat64(m.pinned.WithLabelValues("prod", "web")); v != float64(since.Unix()) {
		t.Errorf("holding: %v, want %v", v, since.Unix())
	}
	ro.Status.Rollback = nil
	m.observe(ro)
	if n := testutil.CollectAndCount(m.pinned); n != 0 {
		t.Errorf("ended: %d series", n)
	}
}
