package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"

	"github.com/tugboatdev/tugboat/sandbox/promserver"
)

// TestAnalysisReplayBurnRate replays and evaluates a burn-rate template
// over request counters backfilled every 15s for 100 minutes: a canary
// burning its budget 20 times too fast fails at the first measurement, one
// like the stable passes every measurement, and one with 15 requests in
// 5m is Inconclusive, saying how many more are needed.
func TestAnalysisReplayBurnRate(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	srv := promserver.Start(t, promserver.Options{OpenMetrics: promserver.Requests("tugboat_replay_requests_total", now, 100*time.Minute, map[string]promserver.Traffic{
		"stable": {PerSecond: 10, ErrorRatio: 0.002},
		"bad":    {PerSecond: 10, ErrorRatio: 0.02},
		"good":   {PerSecond: 10, ErrorRatio: 0.002},
		"thin":   {PerSecond: 0.05},
	})})
	file := filepath.Join(t.TempDir(), "template.yaml")
	writeFile(t, file, `apiVersion: tugboat.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: slo}
spec:
  args: [{name: canary}, {name: stable, value: stable}]
  metrics:
  - name: slo
    interval: 2m
    count: 4
    provider:
      burnRate:
        objective: 0.999
        errors: 'sum(increase(tugboat_replay_requests_total{workload="{{args.canary}}",code=~"5.."}[{{window}}]))'
        total: 'sum(increase(tugboat_replay_requests_total{workload="{{args.canary}}"}[{{window}}]))'
        baselineErrors: 'sum(increase(tugboat_replay_requests_total{workload="{{args.stable}}",code=~"5.."}[{{window}}]))'
        baselineTotal: 'sum(increase(tugboat_replay_requests_total{workload="{{args.stable}}"}[{{window}}]))'
        shortWindow: 5m
        longWindow: 1h
        maxBurnRate: 14.4
        maxRelativeBurnRate: 2
`)
	var c cli
	out, errOut := &c.out, &c.errOut
	run := func(args ...string) int {
		return c.run(t, append([]string{"analysis", "run", "-f", file, "--prometheus", srv.URL}, args...)...)
	}

	if code := run("--arg", "canary=bad", "--replay-from", "30m", "-o", "json"); code != 1 {
		t.Fatalf("replay of a bad canary: exit %d, want 1\n%s%s", code, out.String(), errOut.String())
	}
	var r replayed
	if err := decodeStrict("json", out.String(), &r); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if len(r.Metrics) != 1 || len(r.Metrics[0].Measurements) != 1 {
		t.Fatalf("replay of a bad canary: %+v", r)
	}
	m := r.Metrics[0].Measurements[0]
	if r.Phase != argo.AnalysisPhaseFailed || m.Phase != argo.AnalysisPhaseFailed || m.Value != `{"short":20,"long":20,"baselineShort":2,"baselineLong":2}` ||
		!strings.Contains(m.Message, "slo: burn rate 20 over 5m and 20 over 1h (60 errors in 3000 requests over 5m), above maxBurnRate 14.4 over both windows") {
		t.Errorf("replay of a bad canary: %s, measurement %+v", r.Phase, m)
	}
	if q := r.Metrics[0].Query; !strings.HasPrefix(q, `errors: sum(increase(tugboat_replay_requests_total{workload="bad",code=~"5.."}[{{window}}])); total: `) ||
		!strings.HasSuffix(q, `baselineTotal: sum(increase(tugboat_replay_requests_total{workload="stable"}[{{window}}])); windows: 5m and 1h`) {
		t.Errorf("query shown as %q", q)
	}

	if code := run("--arg", "canary=good", "--replay-from", "30m"); code != 0 || !strings.Contains(out.String(), "Successful after 4 measurements") ||
		strings.Count(out.String(), `{"short":2,"long":2,"baselineShort":2,"baselineLong":2}`) != 4 {
		t.Errorf("replay of a good canary: exit %d\n%s%s", code, out.String(), errOut.String())
	}

	if code := run("--arg", "canary=thin"); code != 1 || !strings.Contains(out.String(), "Inconclusive") ||
		!strings.Contains(out.String(), "slo: the canary had 15 requests over 5m, fewer than minEvents 100: 85 more are needed to decide") {
		t.Errorf("a thin canary evaluated now: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	// An argument is quoted as in a Prometheus query: it stays a label
	// value, which no series has.
	if code := run("--arg", `canary=x"} or vector(1) #`); code != 1 || !strings.Contains(out.String(), `workload="x\"} or vector(1) #"`) ||
		!strings.Contains(out.String(), "the canary's total query returned no data over 5m; onNoData is Inconclusive") {
		t.Errorf("a hostile argument: exit %d\n%s%s", code, out.String(), errOut.String())
	}
}
