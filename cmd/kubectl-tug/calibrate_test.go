package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"

	"github.com/tugboatdev/tugboat/bench/quality/corpus"
	"github.com/tugboatdev/tugboat/sandbox/promserver"
)

// TestAnalysisCalibrate calibrates the default gate (10 looks, extended up
// to 30 while Inconclusive: 30-minute runs) over an hour of the synthetic
// corpus's data: a canary that behaves as its
// stable baseline fails no run, one with five times its errors fails every
// run, and a template whose two sides are the same query is warned about.
func TestAnalysisCalibrate(t *testing.T) {
	from := time.Now().Add(-90 * time.Minute).UTC().Truncate(time.Minute)
	c := corpus.Corpus{Seed: 3, RunStart: from, RunFor: 60 * time.Minute, History: 5 * time.Minute, CanaryAge: 5 * time.Minute,
		Step: 15 * time.Second, Noise: corpus.QuietNoise, Scenarios: []corpus.Scenario{
			{Name: "same", Kind: corpus.Healthy, RPS: corpus.HighRPS, ErrorRatio: 0.01, LatencyMS: 50, ErrorFactor: 1, LatencyFactor: 1},
			{Name: "worse", Kind: corpus.Errors, RPS: corpus.HighRPS, ErrorRatio: 0.01, LatencyMS: 50, ErrorFactor: 5, LatencyFactor: 1, Onset: -5 * time.Minute},
		}}
	var om bytes.Buffer
	if err := c.WriteOpenMetrics(&om); err != nil {
		t.Fatal(err)
	}
	srv := promserver.Start(t, promserver.Options{OpenMetrics: om.String()})
	file := "../../examples/canary-judge/gate.yaml"
	var cl cli
	calibrate := func(canary, stable string, more ...string) (calibration, int) {
		code := cl.run(t, append([]string{"analysis", "calibrate", "-f", file, "--prometheus", srv.URL, "--arg", "canary=" + canary, "--arg", "stable=" + stable, "--arg", "objective=100",
			"--from", from.Format(time.RFC3339), "--to", from.Add(60 * time.Minute).Format(time.RFC3339)}, more...)...)
		var got calibration
		if code == 0 && strings.Contains(strings.Join(more, " "), "json") {
			if err := decodeStrict("json", cl.out.String(), &got); err != nil {
				t.Fatalf("%v\n%s", err, cl.out.String())
			}
		}
		return got, code
	}

	got, code := calibrate("same-canary", "same-stable", "-o", "json")
	if code != 0 || got.Runs != 2 || got.Window != "30m0s" || got.FalseAlarmRate != 0 || got.Phases[argo.AnalysisPhaseFailed] != 0 || len(got.Windows) != 2 {
		t.Errorf("calibrating a canary that behaves as stable: exit %d, %+v\n%s", code, got, cl.errOut.String())
	}
	got, code = calibrate("worse-canary", "worse-stable", "-o", "json")
	if code != 0 || got.Runs != 2 || got.FalseAlarmRate != 1 || len(got.Windows) != 2 || strings.Join(got.Windows[0].Failed, ",") != "errors" {
		t.Errorf("calibrating a canary with five times the errors: exit %d, %+v\n%s", code, got, cl.errOut.String())
	}
	if _, code = calibrate("same-stable", "same-stable"); code != 0 || !strings.Contains(cl.out.String(), "warning: metric errors: the canary and the baseline are the same query") ||
		!strings.Contains(cl.out.String(), "false-alarm rate: 0.00% (0 Failed of 2 runs)") {
		t.Errorf("calibrating stable against itself: exit %d\n%s%s", code, cl.out.String(), cl.errOut.String())
	}

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"a window too short for the stretch's runs", []string{"--window", "1s"}, "holds 3600 runs of 1s, more than 1000"},
		{"a bad window", []string{"--window", "soon"}, `--window "soon": want a duration from 1s to 24h`},
		{"a stretch shorter than a run", []string{"--window", "2h"}, "is shorter than one run of 2h0m0s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, code := calibrate("same-canary", "same-stable", tc.args...); code != 4 || !strings.Contains(cl.errOut.String(), tc.want) {
				t.Errorf("exit %d, want 4 and %q\n%s", code, tc.want, cl.errOut.String())
			}
		})
	}
}
