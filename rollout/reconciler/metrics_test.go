package reconciler

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/rollout"
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

func TestEndOf(t *testing.T) {
	started := metav1.NewTime(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
	underWay := v1alpha1.RolloutStatus{StableRevision: "s0", CanaryRevision: "c1", StartedAt: &started}
	aborted := underWay
	aborted.Abort = &v1alpha1.RolloutAbort{Reason: "AnalysisFailed"}
	atRest := v1alpha1.RolloutStatus{StableRevision: "s0"}
	tests := []struct {
		name    string
		before  v1alpha1.RolloutStatus
		event   rollout.Outcome
		outcome string
		ok      bool
	}{
		{name: "promoted", before: underWay, event: rollout.Promoted, outcome: "Promoted", ok: true},
		{name: "analysis failed", before: underWay, event: rollout.AnalysisFailed, outcome: "Aborted", ok: true},
		{name: "aborted by a person", before: underWay, event: rollout.AbortedByUser, outcome: "Aborted", ok: true},
		{name: "past its deadline", before: underWay, event: rollout.ProgressDeadlineExceeded, outcome: "Aborted", ok: true},
		{name: "a rollback arrives", before: underWay, event: rollout.RolledBack, outcome: "RolledBack", ok: true},
		{name: "the target went back", before: underWay, event: rollout.Cancelled, outcome: "Cancelled", ok: true},
		{name: "a newer revision replaced it", before: underWay, event: rollout.Restarted, outcome: "Cancelled", ok: true},
		{name: "its steps changed", before: underWay, event: rollout.StepsChanged, outcome: "Cancelled", ok: true},
		{name: "a step advanced", before: underWay, event: rollout.Advanced},
		{name: "no transition", before: underWay, event: ""},
		{name: "aborted already: a new revision ends nothing more", before: aborted, event: rollout.Restarted},
		{name: "aborted already: a person aborts again", before: aborted, event: rollout.AbortedByUser},
		{name: "at rest: a rollback at once", before: atRest, event: rollout.RolledBack},
		{name: "at rest: a revision starts", before: atRest, event: rollout.Started},
		{name: "no start recorded", before: v1alpha1.RolloutStatus{CanaryRevision: "c1"}, event: rollout.Promoted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			outcome, ok := endOf(&tt.before, tt.event)
			if outcome != tt.outcome || ok != tt.ok {
				t.Errorf("endOf = %q, %v; want %q, %v", outcome, ok, tt.outcome, tt.ok)
			}
		})
	}
}

// A finished rollout is observed once, from the start status records (so a
// restarted controller measures the same), in its namespace and outcome.
func TestRolloutDuration(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	started := metav1.NewTime(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
	ro := &v1alpha1.Rollout{ObjectMeta: metav1.ObjectMeta{Namespace: "prod", Name: "web"}}
	before := &v1alpha1.RolloutStatus{StableRevision: "s0", CanaryRevision: "c1", StartedAt: &started}
	m.ended(ro, before, rollout.Advanced, started.Add(time.Minute))
	m.ended(ro, before, rollout.Promoted, started.Add(25*time.Minute))
	after := &v1alpha1.RolloutStatus{StableRevision: "c1"} // the next write starts from the promoted status
	m.ended(ro, after, rollout.Promoted, started.Add(26*time.Minute))

	want := `
# HELP tugboat_rollout_duration_seconds How long rollouts took, from their start (or last retry) to their end, by namespace and outcome (Promoted, Aborted, RolledBack, Cancelled).
# TYPE tugboat_rollout_duration_seconds histogram
tugboat_rollout_duration_seconds_bucket{namespace="prod",outcome="Promoted",le="60"} 0
tugboat_rollout_duration_seconds_bucket{namespace="prod",outcome="Promoted",le="300"} 0
tugboat_rollout_duration_seconds_bucket{namespace="prod",outcome="Promoted",le="600"} 0
tugboat_rollout_duration_seconds_bucket{namespace="prod",outcome="Promoted",le="1800"} 1
tugboat_rollout_duration_seconds_bucket{namespace="prod",outcome="Promoted",le="3600"} 1
tugboat_rollout_duration_seconds_bucket{namespace="prod",outcome="Promoted",le="7200"} 1
tugboat_rollout_duration_seconds_bucket{namespace="prod",outcome="Promoted",le="14400"} 1
tugboat_rollout_duration_seconds_bucket{namespace="prod",outcome="Promoted",le="43200"} 1
tugboat_rollout_duration_seconds_bucket{namespace="prod",outcome="Promoted",le="86400"} 1
tugboat_rollout_duration_seconds_bucket{namespace="prod",outcome="Promoted",le="+Inf"} 1
tugboat_rollout_duration_seconds_sum{namespace="prod",outcome="Promoted"} 1500
tugboat_rollout_duration_seconds_count{namespace="prod",outcome="Promoted"} 1
`
	if err := testutil.CollectAndCompare(m.duration, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}

// Aborts and transitions name the Rollout; deleting it forgets its series,
// counters included, and leaves other Rollouts' alone.
func TestCountersNameTheRolloutAndGoWithIt(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	web := &v1alpha1.Rollout{ObjectMeta: metav1.ObjectMeta{Namespace: "prod", Name: "web"}}
	api := &v1alpha1.Rollout{ObjectMeta: metav1.ObjectMeta{Namespace: "prod", Name: "api"}}
	m.transition(web, rollout.Advanced)
	m.transition(web, rollout.AnalysisFailed)
	m.transition(api, rollout.AbortedByUser)
	m.rolledBack(web, nil, []v1alpha1.RevisionRollbacks{{Revision: "c1", Aborted: 1}})
	m.observe(web)
	if v := testutil.ToFloat64(m.aborts.WithLabelValues("prod", "web", "AnalysisFailed")); v != 1 {
		t.Errorf("aborts of prod/web: %v, want 1", v)
	}
	if v := testutil.ToFloat64(m.transitions.WithLabelValues("prod", "web", "Advanced")); v != 1 {
		t.Errorf("transitions of prod/web: %v, want 1", v)
	}
	if n := testutil.CollectAndCount(m.aborts); n != 4 {
		t.Errorf("%d abort series, want 4 (web's three reasons, observed, and api's one)", n)
	}
	m.forget(types.NamespacedName{Namespace: "prod", Name: "web"})
	for name, c := range map[string]prometheus.Collector{"transitions": m.transitions, "aborts": m.aborts, "rollbacks": m.rollbacks, "phase": m.phase, "weight": m.weight} {
		want := 0
		if name == "transitions" || name == "aborts" {
			want = 1 // api's
		}
		if n := testutil.CollectAndCount(c); n != want {
			t.Errorf("%s after web was deleted: %d series, want %d", name, n, want)
		}
	}
}
