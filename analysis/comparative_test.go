package analysis

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	"k8s.io/utils/ptr"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

// noisy is n error ratios around mean, seeded.
func noisy(seed uint64, n int, mean float64) []float64 {
	r := rand.New(rand.NewPCG(seed, 1))
	out := make([]float64, n)
	for i := range out {
		out[i] = mean * (1 + 0.1*r.NormFloat64())
	}
	return out
}

func judgeMetric(edit func(*v1alpha1.JudgeMetric)) v1alpha1.Metric {
	j := &v1alpha1.JudgeMetric{Canary: "c", Baseline: "b", Lookback: "10m", Step: "30s", Direction: "increase"}
	if edit != nil {
		edit(j)
	}
	return v1alpha1.Metric{Name: "errors", Provider: v1alpha1.MetricProvider{Judge: j}}
}

// TestJudgeOutcome maps the judge's classifications to measurements.
func TestJudgeOutcome(t *testing.T) {
	fixed := func(j *v1alpha1.JudgeMetric) { j.Sequential = ptr.To(false) }
	baseline := noisy(1, 20, 0.01)
	for _, tt := range []struct {
		name    string
		metric  v1alpha1.Metric
		samples JudgeSamples
		phase   argo.AnalysisPhase
		value   string // a prefix of the value
		message []string
	}{{
		name:    "twice the errors is High: Failed",
		metric:  judgeMetric(fixed),
		samples: JudgeSamples{Canary: noisy(2, 20, 0.02), Baseline: baseline},
		phase:   argo.AnalysisPhaseFailed,
		value:   `{"classification":"High","estimate":0.0`,
		message: []string{"errors: High (shift 0.0", "at 98% confidence, mean ratio 1.9", "20 canary and 20 baseline samples"},
	}, {
		name:    "the same errors is Pass: Successful",
		metric:  judgeMetric(fixed),
		samples: JudgeSamples{Canary: noisy(3, 20, 0.01), Baseline: baseline},
		phase:   argo.AnalysisPhaseSuccessful,
		value:   `{"classification":"Pass","estimate":`,
		message: []string{"errors: Pass (shift ", "is within 25% of the baseline"},
	}, {
		name:    "a higher canary watched for a decrease passes",
		metric:  judgeMetric(func(j *v1alpha1.JudgeMetric) { fixed(j); j.Direction = "decrease" }),
		samples: JudgeSamples{Canary: noisy(2, 20, 0.02), Baseline: baseline},
		phase:   argo.AnalysisPhaseSuccessful,
		value:   `{"classification":"Pass"`,
	}, {
		name:    "a lower canary watched either way is Low: Failed",
		metric:  judgeMetric(func(j *v1alpha1.JudgeMetric) { fixed(j); j.Direction = "either" }),
		samples: JudgeSamples{Canary: noisy(2, 20, 0.005), Baseline: baseline},
		phase:   argo.AnalysisPhaseFailed,
		value:   `{"classification":"Low"`,
		message: []string{"errors: Low ("},
	}, {
		name:    "too few samples is Inconclusive, saying how many more",
		metric:  judgeMetric(fixed),
		samples: JudgeSamples{Canary: noisy(2, 3, 0.02), Baseline: noisy(1, 3, 0.01)},
		phase:   argo.AnalysisPhaseInconclusive,
		value:   `{"classification":"Inconclusive"}`,
		message: []string{"fewer than the 5 needed on each side", "more canary samples would be needed to tell a 25% change at 98% confidence"},
	}, {
		name:    "no data is onNoData's",
		metric:  judgeMetric(fixed),
		samples: JudgeSamples{Canary: nil, Baseline: baseline},
		phase:   argo.AnalysisPhaseInconclusive,
		value:   `{"classification":"Nodata"}`,
		message: []string{"no data for errors: canary has 0 samples, baseline 20; onNoData is Inconclusive"},
	}, {
		name: "no data, failed by onNoData",
		metric: func() v1alpha1.Metric {
			m := judgeMetric(fixed)
			m.OnNoData = argo.AnalysisPhaseFailed
			return m
		}(),
		samples: JudgeSamples{Canary: noisy(2, 20, 0.02)},
		phase:   argo.AnalysisPhaseFailed,
		message: []string{"onNoData is Failed"},
	}, {
		name:    "sequential: the window's High alone waits for the test across looks",
		metric:  judgeMetric(nil),
		samples: JudgeSamples{Canary: noisy(2, 20, 0.02), Baseline: baseline, CanarySince: noisy(2, 6, 0.02), BaselineSince: noisy(1, 6, 0.01)},
		phase:   argo.AnalysisPhaseInconclusive,
		value:   `{"classification":"Inconclusive","estimate":0.0`,
		message: []string{"the window is High (shift", "has not crossed its threshold", "at least 10 a side"},
	}, {
		name:   "sequential: the test across looks fails the canary",
		metric: judgeMetric(nil),
		samples: JudgeSamples{Canary: noisy(2, 20, 0.02), Baseline: baseline,
			CanarySince: noisy(4, 60, 0.02), BaselineSince: noisy(5, 60, 0.01)},
		phase:   argo.AnalysisPhaseFailed,
		value:   `{"classification":"High"`,
		message: []string{"the sequential test over 60 canary and 60 baseline samples since the run started found it High", "last window High"},
	}, {
		name:    "sequential: a pass of the window passes",
		metric:  judgeMetric(nil),
		samples: JudgeSamples{Canary: noisy(3, 20, 0.01), Baseline: baseline, CanarySince: noisy(6, 60, 0.01), BaselineSince: noisy(7, 60, 0.01)},
		phase:   argo.AnalysisPhaseSuccessful,
		value:   `{"classification":"Pass"`,
	}} {
		t.Run(tt.name, func(t *testing.T) {
			o := JudgeOutcome(tt.metric, tt.samples)
			if o.Phase != tt.phase || !strings.HasPrefix(o.Value, tt.value) {
				t.Errorf("got %s %s, want %s %s…\n%s", o.Phase, o.Value, tt.phase, tt.value, o.Message)
			}
			for _, w := range tt.message {
				if !strings.Contains(o.Message, w) {
					t.Errorf("message does not say %q:\n%s", w, o.Message)
				}
			}
		})
	}
}

// TestJudgeRanges: the lookback window, and every step since the run
// started, from the lookback to 11000 steps.
func TestJudgeRanges(t *testing.T) {
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name         string
		started      time.Time
		sequential   *bool
		since, steps string
	}{
		{name: "a run just started looks back the lookback", started: at, since: `now() - duration("10m0s")`},
		{name: "a run of an hour looks back an hour", started: at.Add(-time.Hour), since: `now() - duration("1h0m0s")`},
		{name: "a run of a week, at most 11000 steps", started: at.Add(-7 * 24 * time.Hour), since: `now() - duration("91h40m0s")`},
		{name: "without sequential, only the window", started: at.Add(-time.Hour), sequential: ptr.To(false)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			window, since, err := JudgeRanges(*judgeMetric(func(j *v1alpha1.JudgeMetric) { j.Sequential = tt.sequential }).Provider.Judge, tt.started, at)
			if err != nil {
				t.Fatal(err)
			}
			if window.Start != `now() - duration("10m0s")` || window.End != "now()" || window.Step != "30s" {
				t.Errorf("window %+v", window)
			}
			switch {
			case tt.since == "" && since != nil:
				t.Errorf("since %+v, want none", since)
			case tt.since != "" && (since == nil || since.Start != tt.since || since.End != "now()"):
				t.Errorf("since %+v, want from %s", since, tt.since)
			case since != nil:
				if _, err := RangeAt(*since, at); err != nil {
					t.Errorf("since: %v", err)
				}
			}
		})
	}
	if _, _, err := JudgeRanges(v1alpha1.JudgeMetric{Lookback: "1m", Step: "1m"}, at, at); err == nil || !strings.Contains(err.Error(), "provider.judge.lookback 1m must hold from 2 to 11000 steps of 1m") {
		t.Errorf("a lookback of one step: %v", err)
	}
}

// TestRenderJudge renders both queries as Prometheus queries are rendered.
func TestRenderJudge(t *testing.T) {
	j := v1alpha1.JudgeMetric{
		Canary:   `sum(rate(errors{workload="{{args.canary}}"}[1m]))`,
		Baseline: `sum(rate(errors{workload="{{args.stable}}", token="{{args.token}}"}[1m]))`,
		Lookback: "10m", Step: "30s",
	}
	a := Args{Values: map[string]string{"canary": `web-"canary"`, "stable": "web", "token": "s3cret"}, Secret: map[string]bool{"token": true}}
	req, err := a.RenderJudge(j)
	if err != nil {
		t.Fatal(err)
	}
	if req.Canary != `sum(rate(errors{workload="web-\"canary\""}[1m]))` || !req.Secret ||
		req.Shown != `canary: sum(rate(errors{workload="web-\"canary\""}[1m])); baseline: sum(rate(errors{workload="web", token="REDACTED"}[1m]))` {
		t.Errorf("rendered %+v", req)
	}
	for _, tt := range []struct {
		name string
		edit func(*v1alpha1.JudgeMetric)
		want string
	}{
		{"an argument that would change the query", func(j *v1alpha1.JudgeMetric) { j.Canary = `errors[{{args.canary}}]` }, "provider.judge.canary: argument would change the query's structure"},
		{"a broken baseline", func(j *v1alpha1.JudgeMetric) { j.Baseline = `sum(` }, "provider.judge.baseline: "},
		{"Secret values to an address of the template's", func(j *v1alpha1.JudgeMetric) { j.Address = "http://elsewhere:9090" }, "provider.judge: arguments from Secrets are sent only to the controller's Prometheus"},
		{"an address that is not a URL", func(j *v1alpha1.JudgeMetric) { j.Address = "{{args.stable}}" }, `provider.judge.address "{{args.stable}}" does not render to an http:// or https:// URL`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			j := j
			tt.edit(&j)
			if _, err := a.RenderJudge(j); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want %q", err, tt.want)
			}
		})
	}
}

// TestMeasureJudge sends four range queries with sequential, two without,
// and judges what comes back; an error of any is the measurement's.
func TestMeasureJudge(t *testing.T) {
	started := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	at := started.Add(30 * time.Minute)
	req := JudgeRequest{Canary: "c", Baseline: "b", Prom: v1alpha1.PrometheusMetric{Address: "http://p:9090", Timeout: ptr.To[int64](7)}}
	var sent []string
	query := func(prom *v1alpha1.PrometheusMetric, q string) Sample {
		sent = append(sent, q+" "+prom.RangeQuery.Start+" "+prom.Address)
		if prom.Query != q || *prom.Timeout != 7 {
			t.Errorf("query %q sent as %+v", q, prom)
		}
		mean := 0.01
		if q == "c" {
			mean = 0.02
		}
		return Sample{Values: noisy(uint64(len(sent)), 60, mean), Warnings: []string{"partial"}}
	}
	s := MeasureJudge(judgeMetric(nil), req, started, at, query)
	want := []string{`c now() - duration("10m0s") http://p:9090`, `b now() - duration("10m0s") http://p:9090`,
		`c now() - duration("30m0s") http://p:9090`, `b now() - duration("30m0s") http://p:9090`}
	if strings.Join(sent, "\n") != strings.Join(want, "\n") {
		t.Errorf("sent\n%s\nwant\n%s", strings.Join(sent, "\n"), strings.Join(want, "\n"))
	}
	if s.Outcome == nil || s.Outcome.Phase != argo.AnalysisPhaseFailed || len(s.Warnings) != 3 {
		t.Errorf("got %+v %+v", s, s.Outcome)
	}
	phase, _, msg := Judge(judgeMetric(nil), s, nil)
	if phase != argo.AnalysisPhaseFailed || !strings.Contains(msg, "the server warned: partial") {
		t.Errorf("judged %s: %s", phase, msg)
	}

	sent = nil
	s = MeasureJudge(judgeMetric(func(j *v1alpha1.JudgeMetric) { j.Sequential = ptr.To(false) }), req, started, at, query)
	if len(sent) != 2 || s.Outcome == nil || s.Outcome.Phase != argo.AnalysisPhaseFailed {
		t.Errorf("without sequential: sent %q, got %+v", sent, s.Outcome)
	}

	sent = nil
	s = MeasureJudge(judgeMetric(nil), req, started, at, func(prom *v1alpha1.PrometheusMetric, q string) Sample {
		sent = append(sent, q)
		if q == "b" {
			return Sample{Err: ErrDeferred}
		}
		return Sample{Values: []float64{1}}
	})
	if len(sent) != 2 || s.Err != ErrDeferred || s.Outcome != nil {
		t.Errorf("a deferred baseline: sent %q, got %+v", sent, s)
	}
}
