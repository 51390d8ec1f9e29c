package shadow

import (
	"strings"
	"testing"
	"time"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
)

func TestDecide(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	allowed := Decision{Allowed: true, Rule: "prod-mirrors/previews"}
	seen := func(edit func(*Observed)) Observed {
		o := Observed{Now: t0, Generation: 1, Expires: t0.Add(24 * time.Hour), Decision: allowed, HasAnalysis: true, Analysis: argo.AnalysisPhaseRunning}
		edit(&o)
		return o
	}
	mirroring := Progress{Phase: Mirroring, Generation: 1}
	for _, tt := range []struct {
		name    string
		p       Progress
		o       Observed
		phase   Phase
		mirror  bool
		measure bool
		says    string
	}{
		{"allowed, analysis running: copies flow", Progress{}, seen(func(*Observed) {}), Mirroring, true, true, "as rule prod-mirrors/previews allows"},
		{"denied: no copies, the reason said", Progress{}, seen(func(o *Observed) {
			o.Decision = Decision{Reason: "rule p/r: percentage 50 is over its maxPercentage 20"}
		}),
			Denied, false, false, "denied: rule p/r: percentage 50"},
		{"the policy withdrawn while mirroring: the copies stop", mirroring, seen(func(o *Observed) { o.Decision = Decision{Reason: "no mirror policy"} }), Denied, false, false, "no mirror policy"},
		{"the source missing: pending", Progress{}, seen(func(o *Observed) { o.Problem = "rollout prod/web not found" }), Pending, false, false, "rollout prod/web not found"},
		{"analysis passed", mirroring, seen(func(o *Observed) { o.Analysis = argo.AnalysisPhaseSuccessful }), Succeeded, false, false, "behaves as production does"},
		{"analysis failed, with why", mirroring, seen(func(o *Observed) {
			o.Analysis, o.AnalysisMessage = argo.AnalysisPhaseFailed, "metric error-rate-vs-production Failed"
		}), Failed, false, false, "analysis Failed: metric error-rate-vs-production Failed"},
		{"analysis errored", mirroring, seen(func(o *Observed) { o.Analysis = argo.AnalysisPhaseError }), Failed, false, false, "analysis Error"},
		{"analysis inconclusive", mirroring, seen(func(o *Observed) { o.Analysis = argo.AnalysisPhaseInconclusive }), Inconclusive, false, false, "Inconclusive"},
		{"no analysis: mirrors until the ttl, without a verdict", Progress{}, seen(func(o *Observed) { o.HasAnalysis = false }), Mirroring, true, false, "no verdict"},
		{"the ttl ran out: expired, whatever the analysis", mirroring, seen(func(o *Observed) { o.Now = o.Expires; o.Analysis = argo.AnalysisPhaseSuccessful }), Expired, false, false, "the ttl ran out"},
		{"a verdict holds, past the ttl too", Progress{Phase: Failed, Message: "analysis Failed: x", Generation: 1}, seen(func(o *Observed) { o.Now = o.Expires.Add(time.Hour) }),
			Failed, false, false, "analysis Failed: x"},
		{"a new spec starts over", Progress{Phase: Failed, Generation: 1}, seen(func(o *Observed) { o.Generation = 2 }), Mirroring, true, true, "receiving copies"},
		{"pending an hour before the ttl runs out: looks again within the minute", Progress{}, seen(func(o *Observed) { o.Problem = "x"; o.Expires = o.Now.Add(time.Hour) }), Pending, false, false, "x"},
		{"pending a moment before the ttl runs out: wakes at expiry", Progress{}, seen(func(o *Observed) { o.Problem = "x"; o.Expires = o.Now.Add(10 * time.Second) }), Pending, false, false, "x"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out := Decide(tt.p, tt.o)
			if out.Phase != tt.phase || out.Mirror != tt.mirror || out.Measure != tt.measure || !strings.Contains(out.Message, tt.says) {
				t.Errorf("%+v; want phase %s, mirror %v, measure %v, saying %q", out, tt.phase, tt.mirror, tt.measure, tt.says)
			}
			if !out.Phase.Final() && (out.RequeueAfter <= 0 || out.RequeueAfter > tt.o.Expires.Sub(tt.o.Now) || out.RequeueAfter > 24*time.Hour) {
				t.Errorf("%s: requeue after %s with the ttl running out at %s", out.Phase, out.RequeueAfter, tt.o.Expires)
			}
			if out.Phase == Pending && out.RequeueAfter > time.Minute {
				t.Errorf("pending, it looks again only after %s", out.RequeueAfter)
			}
		})
	}
}
