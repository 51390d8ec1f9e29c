package analysis

import (
	"errors"
	"math"
	"strings"
	"testing"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	"k8s.io/utils/ptr"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

func burnRateMetric(edit func(*v1alpha1.BurnRateMetric)) v1alpha1.Metric {
	b := &v1alpha1.BurnRateMetric{
		Objective:   0.999,
		Errors:      `sum(increase(requests_total{workload="{{args.canary}}",code=~"5.."}[{{window}}]))`,
		Total:       `sum(increase(requests_total{workload="{{args.canary}}"}[{{window}}]))`,
		ShortWindow: "5m", LongWindow: "1h", MaxBurnRate: 14.4,
	}
	if edit != nil {
		edit(b)
	}
	return v1alpha1.Metric{Name: "slo", Provider: v1alpha1.MetricProvider{BurnRate: b}}
}

// relative adds the stable baseline's queries and maxRelativeBurnRate 2.
func relative(b *v1alpha1.BurnRateMetric) {
	b.BaselineErrors = `sum(increase(requests_total{workload="{{args.stable}}",code=~"5.."}[{{window}}]))`
	b.BaselineTotal = `sum(increase(requests_total{workload="{{args.stable}}"}[{{window}}]))`
	b.MaxRelativeBurnRate = ptr.To(2.0)
}

func TestBurnRate(t *testing.T) {
	for _, tt := range []struct {
		errors, total, objective, want float64
	}{
		{1, 1000, 0.999, 1},
		{144, 10000, 0.999, 14.4},
		{5, 100, 0.99, 5},
		{0, 1000, 0.999, 0},
		{3, 0, 0.999, 0}, // no requests burn nothing
		{1, math.NaN(), 0.999, 0},
		{1, 100000, 0.99999, 1},
	} {
		if got := BurnRate(tt.errors, tt.total, tt.objective); math.Abs(got-tt.want) > 1e-9*max(1, tt.want) {
			t.Errorf("BurnRate(%g, %g, %g) = %g, want %g", tt.errors, tt.total, tt.objective, got, tt.want)
		}
	}
}

// TestBurnRateOutcome decides measurements from the windows' counts:
// objective 0.999 and maxBurnRate 14.4 fail an error ratio above 1.44% over
// both windows.
func TestBurnRateOutcome(t *testing.T) {
	nan := math.NaN()
	w := func(short, long float64) [2]float64 { return [2]float64{short, long} }
	for _, tt := range []struct {
		name    string
		metric  v1alpha1.Metric
		counts  BurnRateCounts
		phase   argo.AnalysisPhase
		value   string
		message []string
	}{{
		name:    "both windows burn 20: Failed",
		metric:  burnRateMetric(nil),
		counts:  BurnRateCounts{Errors: w(20, 240), Total: w(1000, 12000)},
		phase:   argo.AnalysisPhaseFailed,
		value:   `{"short":20,"long":20}`,
		message: []string{"slo: burn rate 20 over 5m and 20 over 1h (20 errors in 1000 requests over 5m), above maxBurnRate 14.4 over both windows"},
	}, {
		name:    "a healthy canary: Successful",
		metric:  burnRateMetric(nil),
		counts:  BurnRateCounts{Errors: w(1, 10), Total: w(1000, 12000)},
		phase:   argo.AnalysisPhaseSuccessful,
		value:   `{"short":1,"long":0.833333}`,
		message: []string{"burn rate 1 over 5m and 0.8333 over 1h", "not above maxBurnRate 14.4 over both windows"},
	}, {
		name:   "the short window alone burns: errors have stopped, Successful",
		metric: burnRateMetric(nil),
		counts: BurnRateCounts{Errors: w(20, 30), Total: w(1000, 12000)},
		phase:  argo.AnalysisPhaseSuccessful,
		value:  `{"short":20,"long":2.5}`,
	}, {
		name:   "the long window alone burns: errors have stopped, Successful",
		metric: burnRateMetric(nil),
		counts: BurnRateCounts{Errors: w(0, 240), Total: w(1000, 12000)},
		phase:  argo.AnalysisPhaseSuccessful,
		value:  `{"short":0,"long":20}`,
	}, {
		name:   "at exactly maxBurnRate: not above it, Successful",
		metric: burnRateMetric(func(b *v1alpha1.BurnRateMetric) { b.Objective = 0.99; b.MaxBurnRate = 5 }),
		counts: BurnRateCounts{Errors: w(50, 600), Total: w(1000, 12000)},
		phase:  argo.AnalysisPhaseSuccessful,
		value:  `{"short":5,"long":5}`,
	}, {
		name:    "fewer than minEvents requests: Inconclusive, saying how many more",
		metric:  burnRateMetric(nil),
		counts:  BurnRateCounts{Errors: w(5, 5), Total: w(37.4, 40)},
		phase:   argo.AnalysisPhaseInconclusive,
		value:   `{"short":133.69,"long":125}`,
		message: []string{"slo: the canary had 37 requests over 5m, fewer than minEvents 100: 63 more are needed to decide; burn rate 133.7 over 5m"},
	}, {
		name:    "minEvents set",
		metric:  burnRateMetric(func(b *v1alpha1.BurnRateMetric) { b.MinEvents = ptr.To[int64](5000) }),
		counts:  BurnRateCounts{Errors: w(20, 240), Total: w(1000, 12000)},
		phase:   argo.AnalysisPhaseInconclusive,
		message: []string{"fewer than minEvents 5000: 4000 more are needed to decide"},
	}, {
		name:    "no data: onNoData",
		metric:  func() v1alpha1.Metric { m := burnRateMetric(nil); m.OnNoData = argo.AnalysisPhaseFailed; return m }(),
		counts:  BurnRateCounts{Errors: w(0, 0), Total: w(nan, 12000)},
		phase:   argo.AnalysisPhaseFailed,
		message: []string{"slo: the canary's total query returned no data over 5m; onNoData is Failed"},
	}, {
		name:    "no data over the long window: Inconclusive by default",
		metric:  burnRateMetric(nil),
		counts:  BurnRateCounts{Errors: w(0, 0), Total: w(1000, nan)},
		phase:   argo.AnalysisPhaseInconclusive,
		message: []string{"no data over 1h; onNoData is Inconclusive"},
	}, {
		name:    "five times the stable's burn over both windows: Failed",
		metric:  burnRateMetric(relative),
		counts:  BurnRateCounts{Errors: w(10, 120), Total: w(1000, 12000), BaselineErrors: w(2, 24), BaselineTotal: w(1000, 12000)},
		phase:   argo.AnalysisPhaseFailed,
		value:   `{"short":10,"long":10,"baselineShort":2,"baselineLong":2}`,
		message: []string{"burn rate 10 over 5m and 10 over 1h", "above maxRelativeBurnRate 2× the stable baseline's 2 and 2 (2 errors in 1000 requests over 5m), each taken as at least 1, over both windows"},
	}, {
		name:    "the stable's burn: Successful",
		metric:  burnRateMetric(relative),
		counts:  BurnRateCounts{Errors: w(2, 20), Total: w(1000, 12000), BaselineErrors: w(2, 24), BaselineTotal: w(1000, 12000)},
		phase:   argo.AnalysisPhaseSuccessful,
		message: []string{"not above maxBurnRate 14.4 nor maxRelativeBurnRate 2× the stable baseline's 2 and 2"},
	}, {
		name:   "a stable without errors counts as burning 1: a canary burning 1.5 passes",
		metric: burnRateMetric(relative),
		counts: BurnRateCounts{Errors: w(3, 36), Total: w(2000, 24000), BaselineErrors: w(0, 0), BaselineTotal: w(1000, 12000)},
		phase:  argo.AnalysisPhaseSuccessful,
		value:  `{"short":1.5,"long":1.5,"baselineShort":0,"baselineLong":0}`,
	}, {
		name:   "a stable without errors: a canary burning 3 fails",
		metric: burnRateMetric(relative),
		counts: BurnRateCounts{Errors: w(6, 72), Total: w(2000, 24000), BaselineErrors: w(0, 0), BaselineTotal: w(1000, 12000)},
		phase:  argo.AnalysisPhaseFailed,
	}, {
		name:   "relative over the short window only: Successful",
		metric: burnRateMetric(relative),
		counts: BurnRateCounts{Errors: w(10, 30), Total: w(1000, 12000), BaselineErrors: w(2, 24), BaselineTotal: w(1000, 12000)},
		phase:  argo.AnalysisPhaseSuccessful,
	}, {
		name:    "a thin stable: Inconclusive, saying how many more",
		metric:  burnRateMetric(relative),
		counts:  BurnRateCounts{Errors: w(10, 120), Total: w(1000, 12000), BaselineErrors: w(0, 0), BaselineTotal: w(10, 120)},
		phase:   argo.AnalysisPhaseInconclusive,
		message: []string{"the stable baseline had 10 requests over 5m, fewer than minEvents 100: 90 more are needed to compare with it"},
	}, {
		name:    "a thin stable does not save a canary above maxBurnRate",
		metric:  burnRateMetric(relative),
		counts:  BurnRateCounts{Errors: w(20, 240), Total: w(1000, 12000), BaselineErrors: w(0, 0), BaselineTotal: w(10, 120)},
		phase:   argo.AnalysisPhaseFailed,
		message: []string{"above maxBurnRate 14.4 over both windows"},
	}, {
		name:    "no stable data: onNoData",
		metric:  burnRateMetric(relative),
		counts:  BurnRateCounts{Errors: w(20, 240), Total: w(1000, 12000), BaselineErrors: w(0, 0), BaselineTotal: w(nan, nan)},
		phase:   argo.AnalysisPhaseInconclusive,
		message: []string{"the stable baseline's total query returned no data over 5m"},
	}} {
		t.Run(tt.name, func(t *testing.T) {
			got := BurnRateOutcome(tt.metric, tt.counts)
			if got.Phase != tt.phase || tt.value != "" && got.Value != tt.value {
				t.Errorf("got %s %s, want %s %s: %s", got.Phase, got.Value, tt.phase, tt.value, got.Message)
			}
			for _, w := range tt.message {
				if !strings.Contains(got.Message, w) {
					t.Errorf("message does not say %q:\n%s", w, got.Message)
				}
			}
		})
	}
}

func TestRenderBurnRate(t *testing.T) {
	args := Args{Values: map[string]string{"canary": "web-canary", "stable": "web", "token": "s3cret", "prom": "http://prom:9090"}, Secret: map[string]bool{"token": true}}
	req, err := args.RenderBurnRate(*burnRateMetric(relative).Provider.BurnRate)
	if err != nil {
		t.Fatal(err)
	}
	want := BurnRateRequest{
		Windows:        req.Windows,
		Errors:         [2]string{`sum(increase(requests_total{workload="web-canary",code=~"5.."}[5m]))`, `sum(increase(requests_total{workload="web-canary",code=~"5.."}[1h]))`},
		Total:          [2]string{`sum(increase(requests_total{workload="web-canary"}[5m]))`, `sum(increase(requests_total{workload="web-canary"}[1h]))`},
		BaselineErrors: [2]string{`sum(increase(requests_total{workload="web",code=~"5.."}[5m]))`, `sum(increase(requests_total{workload="web",code=~"5.."}[1h]))`},
		BaselineTotal:  [2]string{`sum(increase(requests_total{workload="web"}[5m]))`, `sum(increase(requests_total{workload="web"}[1h]))`},
	}
	if req.Errors != want.Errors || req.Total != want.Total || req.BaselineErrors != want.BaselineErrors || req.BaselineTotal != want.BaselineTotal || req.Secret {
		t.Errorf("rendered %+v\nwant %+v", req, want)
	}
	if req.Windows[0].String() != "5m0s" || req.Windows[1].String() != "1h0m0s" {
		t.Errorf("windows %v", req.Windows)
	}
	if !strings.HasPrefix(req.Shown, `errors: sum(increase(requests_total{workload="web-canary",code=~"5.."}[{{window}}])); total: `) || !strings.HasSuffix(req.Shown, "; windows: 5m and 1h") {
		t.Errorf("shown as %q", req.Shown)
	}
	odd, err := args.RenderBurnRate(*burnRateMetric(func(b *v1alpha1.BurnRateMetric) { b.ShortWindow, b.LongWindow = "90s", "26h30m" }).Provider.BurnRate)
	if err != nil || !strings.HasSuffix(odd.Total[0], "[1m30s]))") || !strings.HasSuffix(odd.Total[1], "[1d2h30m]))") {
		t.Errorf("windows rendered as %q, %q: %v", odd.Total[0], odd.Total[1], err)
	}

	for _, tt := range []struct {
		name string
		edit func(*v1alpha1.BurnRateMetric)
		want string
	}{
		{"a hostile argument", func(b *v1alpha1.BurnRateMetric) {
			b.Total = `sum(increase(requests_total[{{args.canary}}]))` + "+ 0*x[{{window}}]"
		}, "provider.burnRate.total: "},
		{"no window", func(b *v1alpha1.BurnRateMetric) { b.Errors = `sum(increase(e[5m]))` }, "provider.burnRate.errors must hold {{window}}"},
		{"a window as an argument", func(b *v1alpha1.BurnRateMetric) { b.Errors = `sum(increase(e[{{args.window}}]))` }, "provider.burnRate.errors must hold {{window}}"},
		{"a query that does not parse", func(b *v1alpha1.BurnRateMetric) { b.Errors = `sum(increase(e[{{window}}])` }, "provider.burnRate.errors: rendered query does not parse"},
		{"no errors query", func(b *v1alpha1.BurnRateMetric) { b.Errors = "" }, "provider.burnRate.errors: a query is required"},
		{"windows the wrong way round", func(b *v1alpha1.BurnRateMetric) { b.ShortWindow, b.LongWindow = "1h", "5m" }, `provider.burnRate.longWindow "5m" is not a duration longer than shortWindow 1h`},
		{"a short window too short", func(b *v1alpha1.BurnRateMetric) { b.ShortWindow = "10s" }, `provider.burnRate.shortWindow "10s" is not a duration from 1m to 24h`},
		{"an objective of 1", func(b *v1alpha1.BurnRateMetric) { b.Objective = 1 }, "provider.burnRate.objective 1 is not from 0.9 to 0.99999"},
		{"no objective", func(b *v1alpha1.BurnRateMetric) { b.Objective = 0 }, "provider.burnRate.objective 0 is not from 0.9 to 0.99999"},
		{"no maxBurnRate", func(b *v1alpha1.BurnRateMetric) { b.MaxBurnRate = 0 }, "provider.burnRate.maxBurnRate 0 is not above 0"},
		{"maxRelativeBurnRate below 1", func(b *v1alpha1.BurnRateMetric) { relative(b); b.MaxRelativeBurnRate = ptr.To(0.5) }, "provider.burnRate.maxRelativeBurnRate 0.5 is not from 1 to 1000"},
		{"minEvents 0", func(b *v1alpha1.BurnRateMetric) { b.MinEvents = ptr.To[int64](0) }, "provider.burnRate.minEvents 0 is not from 1"},
		{"relative without a baseline", func(b *v1alpha1.BurnRateMetric) { b.MaxRelativeBurnRate = ptr.To(2.0) }, "provider.burnRate.maxRelativeBurnRate compares the canary with the stable baseline"},
		{"a Secret sent to an address of the template's", func(b *v1alpha1.BurnRateMetric) {
			b.Address = "{{args.prom}}"
			b.Errors = `sum(increase(e{token="{{args.token}}"}[{{window}}]))`
		}, "provider.burnRate: arguments from Secrets are sent only to the controller's Prometheus"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := args.RenderBurnRate(*burnRateMetric(tt.edit).Provider.BurnRate)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error saying %q", err, tt.want)
			}
		})
	}
	secret, err := args.RenderBurnRate(*burnRateMetric(func(b *v1alpha1.BurnRateMetric) {
		b.Errors = `sum(increase(e{token="{{args.token}}"}[{{window}}]))`
	}).Provider.BurnRate)
	if err != nil || !secret.Secret || strings.Contains(secret.Shown, "s3cret") || !strings.Contains(secret.Errors[1], `token="s3cret"`) {
		t.Errorf("a Secret argument: %+v, %v", secret, err)
	}
}

// TestMeasureBurnRate sends each window's queries and judges their sums.
func TestMeasureBurnRate(t *testing.T) {
	args := Args{Values: map[string]string{"canary": "c", "stable": "s"}}
	m := burnRateMetric(func(b *v1alpha1.BurnRateMetric) { relative(b); b.Timeout = ptr.To[int64](7) })
	req, err := args.RenderBurnRate(*m.Provider.BurnRate)
	if err != nil {
		t.Fatal(err)
	}
	answers := map[string]Sample{
		req.Errors[0]: {Values: []float64{10, 10}}, req.Errors[1]: {Values: []float64{240, math.NaN()}, Warnings: []string{"partial"}},
		req.Total[0]: {Values: []float64{1000}}, req.Total[1]: {Values: []float64{12000}},
		req.BaselineErrors[0]: {}, req.BaselineErrors[1]: {}, // no failed series: 0 errors
		req.BaselineTotal[0]: {Values: []float64{1000}}, req.BaselineTotal[1]: {Values: []float64{12000}},
	}
	var sent []string
	query := func(prom *v1alpha1.PrometheusMetric, q string) Sample {
		if prom.Query != q || prom.Timeout == nil || *prom.Timeout != 7 {
			t.Errorf("sent %q as %+v", q, prom)
		}
		sent = append(sent, q)
		return answers[q]
	}
	s := MeasureBurnRate(m, req, query)
	if s.Outcome == nil || s.Outcome.Phase != argo.AnalysisPhaseFailed || s.Outcome.Value != `{"short":20,"long":20,"baselineShort":0,"baselineLong":0}` {
		t.Errorf("measured %+v", s)
	}
	if len(sent) != 8 || len(s.Warnings) != 1 {
		t.Errorf("sent %d queries, warnings %v", len(sent), s.Warnings)
	}

	answers[req.Total[1]] = Sample{Err: errors.New("boom")}
	if s := MeasureBurnRate(m, req, query); s.Err == nil || s.Err.Error() != "boom" || s.Outcome != nil {
		t.Errorf("an error measured as %+v", s)
	}
	answers[req.Total[1]] = Sample{Values: []float64{math.NaN()}}
	if s := MeasureBurnRate(m, req, query); s.Outcome == nil || s.Outcome.Phase != argo.AnalysisPhaseInconclusive || !strings.Contains(s.Outcome.Message, "no data over 1h") {
		t.Errorf("no data measured as %+v", s)
	}
	// Through Judge, as a Pass does: the outcome is the measurement.
	answers[req.Total[1]] = Sample{Values: []float64{12000}}
	phase, value, msg := Judge(m, MeasureBurnRate(m, req, query), nil)
	if phase != argo.AnalysisPhaseFailed || !strings.HasPrefix(value, `{"short":20,`) || !strings.Contains(msg, "the server warned: partial") {
		t.Errorf("judged %s %s %s", phase, value, msg)
	}
}
