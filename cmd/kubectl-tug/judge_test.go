package main

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"

	"github.com/tugboatdev/tugboat/sandbox/promserver"
)

// TestAnalysisReplayJudge replays and evaluates a judge template over
// error ratios backfilled every 15s for 40 minutes: a canary with twice
// the baseline's errors fails at the first measurement, by the sequential
// test; one with the same errors passes every measurement, the sequential test
// looking at every step since the replayed run started.
func TestAnalysisReplayJudge(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	var series strings.Builder
	series.WriteString("# TYPE tugboat_replay_errors gauge\n")
	for i, w := range []struct {
		workload string
		mean     float64
	}{{"stable", 0.01}, {"bad", 0.02}, {"good", 0.01}} {
		r := rand.New(rand.NewPCG(uint64(i), 3))
		for ts := now.Add(-40 * time.Minute); !ts.After(now); ts = ts.Add(15 * time.Second) {
			fmt.Fprintf(&series, "tugboat_replay_errors{workload=%q} %g %d\n", w.workload, w.mean*(1+0.1*r.NormFloat64()), ts.Unix())
		}
	}
	srv := promserver.Start(t, promserver.Options{OpenMetrics: series.String()})
	file := filepath.Join(t.TempDir(), "template.yaml")
	writeFile(t, file, `apiVersion: tugboat.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: errors}
spec:
  args: [{name: canary}, {name: stable, value: stable}]
  metrics:
  - name: errors
    interval: 2m
    count: 4
    provider:
      judge:
        canary: 'tugboat_replay_errors{workload="{{args.canary}}"}'
        baseline: 'tugboat_replay_errors{workload="{{args.stable}}"}'
        lookback: 4m
        step: 15s
        direction: increase
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
	if r.Phase != argo.AnalysisPhaseFailed || m.Phase != argo.AnalysisPhaseFailed || !strings.HasPrefix(m.Value, `{"classification":"High"`) ||
		!strings.Contains(m.Message, "the sequential test over 17 canary and 17 baseline samples since the run started found it High") {
		t.Errorf("replay of a bad canary: %s, measurement %+v", r.Phase, m)
	}
	if q := r.Metrics[0].Query; q != `canary: tugboat_replay_errors{workload="bad"}; baseline: tugboat_replay_errors{workload="stable"}` {
		t.Errorf("query shown as %q", q)
	}

	// The fourth measurement, 6 minutes in, looks at every step since the
	// run started.
	if code := run("--arg", "canary=good", "--replay-from", "30m"); code != 0 || !strings.Contains(out.String(), "Successful after 4 measurements") ||
		strings.Count(out.String(), `{"classification":"Pass"`) != 4 || !strings.Contains(out.String(), "across looks, 25 canary and 25 baseline samples since the run started") {
		t.Errorf("replay of a good canary: exit %d\n%s%s", code, out.String(), errOut.String())
	}

	if code := run("--arg", "canary=good"); code != 0 || !strings.Contains(out.String(), "errors: Pass (shift ") {
		t.Errorf("a good canary evaluated now: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	// An argument is quoted as in a Prometheus query: it stays a label
	// value, which no series has.
	if code := run("--arg", `canary=x"} or vector(1) #`); code != 1 || !strings.Contains(out.String(), `workload="x\"} or vector(1) #"}`) ||
		!strings.Contains(out.String(), "no data for errors: canary has 0 samples, baseline 17") {
		t.Errorf("a hostile argument: exit %d\n%s%s", code, out.String(), errOut.String())
	}
}
