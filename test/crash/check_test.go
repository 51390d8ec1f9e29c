package crash

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

// The checks find each kind of violation they are there for, so that a tier
// reporting none means something.
func TestChecksFindViolations(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	at := func(step int32, start time.Time) v1alpha1.RolloutStatus {
		return v1alpha1.RolloutStatus{StableRevision: "s1", CanaryRevision: "c1", StartedAt: &metav1.Time{Time: t0},
			CurrentStepIndex: ptr.To(step), StepStartedAt: &metav1.Time{Time: start}}
	}
	versions := func(ss ...v1alpha1.RolloutStatus) []rolloutVersion {
		var out []rolloutVersion
		for i, s := range ss {
			out = append(out, rolloutVersion{rv: uint64(10 * (i + 1)), seen: t0.Add(time.Duration(i) * time.Second), status: s})
		}
		return out
	}
	aborted := at(1, t0)
	aborted.Abort = &v1alpha1.RolloutAbort{Reason: "AbortedByUser"}
	promoting := at(6, t0.Add(6*time.Second))
	promoting.Promoting = true
	for _, tt := range []struct {
		name string
		got  []string
		want string // "" for none
	}{
		{"a pause held its time", checkSteps("a", versions(at(1, t0), at(3, t0.Add(2*time.Second)))), ""},
		{"a step went back", checkSteps("a", versions(at(3, t0), at(1, t0.Add(time.Second)))), "step went back"},
		{"a step started again", checkSteps("a", versions(at(1, t0), at(1, t0.Add(time.Second)))), "started again"},
		{"a pause skipped", checkSteps("a", versions(at(0, t0), at(3, t0.Add(3*time.Second)))), "pause step 1 skipped"},
		{"a pause cut short", checkSteps("a", versions(at(1, t0), at(3, t0.Add(500*time.Millisecond)))), "held"},
		{"primary on stable", checkPrimary("a", versions(at(1, t0)), []primaryVersion{{rv: 15, revision: "s1"}}), ""},
		{"primary on the canary while promoting", checkPrimary("a", versions(at(1, t0), promoting), []primaryVersion{{rv: 25, revision: "c1"}}), ""},
		{"primary on the canary before status says promoting", checkPrimary("a", versions(at(1, t0), promoting), []primaryVersion{{rv: 15, revision: "c1"}}), "primary on revision c1"},
		{"the mesh at 0% when the abort is recorded", checkAborts("a", versions(at(1, t0), aborted), []meshVersion{{rv: 5, canary: 10}, {rv: 15, canary: 0}}), ""},
		{"the canary still served after an abort", checkAborts("a", versions(at(1, t0), aborted), []meshVersion{{rv: 5, canary: 10}}), "still had traffic"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			switch {
			case tt.want == "" && len(tt.got) > 0:
				t.Errorf("want no violation, got %v", tt.got)
			case tt.want != "" && (len(tt.got) != 1 || !strings.Contains(tt.got[0], tt.want)):
				t.Errorf("want one violation about %q, got %v", tt.want, tt.got)
			}
		})
	}
}
