package analysis

import (
	"strings"
	"testing"
	"time"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

func ratesMetric(edit func(*v1alpha1.Metric)) v1alpha1.Metric {
	m := judgeMetric(func(j *v1alpha1.JudgeMetric) {
		j.Rates = &v1alpha1.JudgeRates{CanaryTotal: "ct", BaselineTotal: "bt"}
	})
	m.Interval, m.Count = "1m", ptr.To(intstr.FromInt32(10))
	if edit != nil {
		edit(&m)
	}
	return m
}

// steady is n steps of the same counts: events and requests of each side.
func steady(n int, canaryEvents, canaryTotal, baselineEvents, baselineTotal float64) [4][]float64 {
	var c [4][]float64
	for i, v := range []float64{canaryEvents, canaryTotal, baselineEvents, baselineTotal} {
		c[i] = make([]float64, n)
		for k := range c[i] {
			c[i][k] = v
		}
	}
	return c
}

// TestRatesOutcome maps the rate test's decisions to measurements, and
// says how much more traffic would decide when it cannot.
func TestRatesOutcome(t *testing.T) {
	everyLook := []int{0, 2, 4, 6, 8, 10, 12, 14, 16, 18}
	for _, tt := range []struct {
		name    string
		metric  v1alpha1.Metric
		counts  [4][]float64
		phase   argo.AnalysisPhase
		value   string // a prefix of the value
		message []string
	}{{
		name:    "three times the errors on ample traffic: Failed",
		metric:  ratesMetric(nil),
		counts:  steady(20, 90, 3000, 100, 10000),
		phase:   argo.AnalysisPhaseFailed,
		value:   `{"classification":"High","ratio":3`,
		message: []string{"errors: High over 20 steps since the run started", "rate ratio 3"},
	}, {
		name:    "the same rate on ample traffic: Successful",
		metric:  ratesMetric(nil),
		counts:  steady(20, 10, 3000, 33, 10000),
		phase:   argo.AnalysisPhaseSuccessful,
		value:   `{"classification":"Pass"`,
		message: []string{"errors: Pass"},
	}, {
		name:    "too few requests: Inconclusive, with how many more would decide",
		metric:  ratesMetric(nil),
		counts:  steady(4, 0.1, 10, 0.3, 30),
		phase:   argo.AnalysisPhaseInconclusive,
		value:   `{"classification":"Inconclusive"`,
		message: []string{"more requests on each side would decide at these rates"},
	}, {
		name:    "a decrease when only increases are watched: Successful",
		metric:  ratesMetric(func(m *v1alpha1.Metric) { m.Provider.Judge.Direction = "increase" }),
		counts:  steady(20, 1, 3000, 100, 10000),
		phase:   argo.AnalysisPhaseSuccessful,
		value:   `{"classification":"Pass"`,
		message: []string{"errors: Pass"},
	}, {
		name:    "a canary that served nothing: onNoData",
		metric:  ratesMetric(func(m *v1alpha1.Metric) { m.OnNoData = argo.AnalysisPhaseFailed }),
		counts:  steady(20, 0, 0, 100, 10000),
		phase:   argo.AnalysisPhaseFailed,
		message: []string{"the canary served no requests over 20 steps since the run started; onNoData is Failed"},
	}, {
		name:    "a baseline that served nothing: Inconclusive by default",
		metric:  ratesMetric(nil),
		counts:  steady(20, 10, 3000, 0, 0),
		phase:   argo.AnalysisPhaseInconclusive,
		message: []string{"the baseline served no requests"},
	}, {
		name:   "series of different lengths: Error",
		metric: ratesMetric(nil),
		counts: func() [4][]float64 {
			c := steady(20, 10, 3000, 33, 10000)
			c[3] = c[3][:19]
			return c
		}(),
		phase:   argo.AnalysisPhaseError,
		message: []string{"the queries returned 20, 20, 20 and 19 points; each must return one series (query 4 differs)"},
	}, {
		name:    "events and totals swapped: Error, not a pass",
		metric:  ratesMetric(nil),
		counts:  steady(20, 3000, 90, 10000, 100),
		phase:   argo.AnalysisPhaseError,
		message: []string{"counts more events than requests", "are the events and totals queries swapped?"},
	}, {
		name:   "events a hair above requests (increase extrapolates) and NaN steps: judged, not refused",
		metric: ratesMetric(nil),
		counts: func() [4][]float64 {
			c := steady(20, 90, 3000, 100, 10000)
			c[0][3], c[2][5] = 3000.2, nan()
			return c
		}(),
		phase:   argo.AnalysisPhaseFailed,
		message: []string{"errors: High"},
	}} {
		t.Run(tt.name, func(t *testing.T) {
			o := RatesOutcome(tt.metric, tt.counts, everyLook[:min(len(everyLook), len(tt.counts[0])/2)])
			if o.Phase != tt.phase || !strings.HasPrefix(o.Value, tt.value) {
				t.Errorf("got %s %s, want %s %s...", o.Phase, o.Value, tt.phase, tt.value)
			}
			for _, want := range tt.message {
				if !strings.Contains(o.Message, want) {
					t.Errorf("message %q lacks %q", o.Message, want)
				}
			}
		})
	}
}

func nan() float64 { var z float64; return z / z }

// TestRateConfigOf takes alpha from confidence, the metric's margin and
// effect, and a test that may begin at each of its looks, extension
// included; what cannot work is the template's error.
func TestRateConfigOf(t *testing.T) {
	c, err := RateConfigOf(ratesMetric(func(m *v1alpha1.Metric) {
		m.Provider.Judge.Confidence = ptr.To(0.99)
		m.Provider.Judge.Rates.Margin, m.Provider.Judge.Rates.Effect = ptr.To(2.0), ptr.To(3.0)
		m.Provider.Judge.Rates.Floor = ptr.To(0.001)
	}))
	if err != nil || c.Alpha < 0.0099 || c.Alpha > 0.0101 || c.Margin != 2 || c.Effect != 3 || c.Floor != 0.001 || c.Starts != 30 || c.Direction != "increase" {
		t.Errorf("got %+v, %v", c, err)
	}
	if c, _ := RateConfigOf(ratesMetric(func(m *v1alpha1.Metric) { m.Provider.Judge.Direction = "" })); c.Direction != "either" || c.Margin != DefaultRateMargin || c.Effect != DefaultRateEffect || c.Floor != 0 {
		t.Errorf("defaults: got %+v", c)
	}
	if _, err := RateConfigOf(ratesMetric(func(m *v1alpha1.Metric) { m.Provider.Judge.Rates.Effect = ptr.To(1.1) })); err == nil || !strings.Contains(err.Error(), "provider.judge.rates: ") {
		t.Errorf("effect below margin: got %v", err)
	}
}

// TestLooks counts the extension in; a metric without a numeric count is
// allowed 100 looks.
func TestLooks(t *testing.T) {
	for _, tt := range []struct {
		name string
		edit func(*v1alpha1.Metric)
		want int
	}{
		{"count and the default extension", nil, 30},
		{"an extension of its own", func(m *v1alpha1.Metric) { m.ExtendWhileInconclusive = ptr.To[int32](5) }, 15},
		{"inconclusiveLimit: no extension", func(m *v1alpha1.Metric) { m.InconclusiveLimit = ptr.To(intstr.FromInt32(2)) }, 10},
		{"count from an argument", func(m *v1alpha1.Metric) { m.Count = ptr.To(intstr.FromString("{{args.n}}")) }, 100},
		{"no count", func(m *v1alpha1.Metric) { m.Count = nil }, 100},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := Looks(ratesMetric(tt.edit)); got != tt.want {
				t.Errorf("Looks = %d, want %d", got, tt.want)
			}
		})
	}
	threshold := v1alpha1.Metric{Count: ptr.To(intstr.FromInt32(10)), Provider: v1alpha1.MetricProvider{Prometheus: &v1alpha1.PrometheusMetric{}}}
	if got := ExtensionOf(threshold, 10); got != 0 {
		t.Errorf("a threshold metric extends by %d, want 0 as in Argo Rollouts", got)
	}
}

// TestLookSteps finds the steps each look began at, the same at every
// look, however long the range has grown.
func TestLookSteps(t *testing.T) {
	started := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	m := ratesMetric(nil)
	for _, tt := range []struct {
		name string
		rng  Range
		want []int
	}{
		{"the lookback reaches before the start", Range{Start: started.Add(-time.Minute), End: started.Add(3 * time.Minute), Step: 30 * time.Second}, []int{2, 4, 6, 8}},
		{"the range starts with the run", Range{Start: started, End: started.Add(150 * time.Second), Step: 30 * time.Second}, []int{0, 2, 4}},
		{"steps that do not fall on the looks", Range{Start: started.Add(-10 * time.Second), End: started.Add(2 * time.Minute), Step: 45 * time.Second}, []int{1, 2, 3}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := LookSteps(m, started, tt.rng); !equalInts(got, tt.want) {
				t.Errorf("LookSteps = %v, want %v", got, tt.want)
			}
		})
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestRenderRates renders all four queries, each summed into one series
// with a point at every step, and shows the totals with Secret values
// masked.
func TestRenderRates(t *testing.T) {
	j := v1alpha1.JudgeMetric{
		Canary:   `increase(errors{workload="{{args.canary}}"}[30s])`,
		Baseline: `increase(errors{workload="{{args.stable}}"}[30s])`,
		Lookback: "10m", Step: "30s",
		Rates: &v1alpha1.JudgeRates{CanaryTotal: `increase(requests{workload="{{args.canary}}"}[30s])`, BaselineTotal: `increase(requests{workload="{{args.stable}}", token="{{args.token}}"}[30s])`},
	}
	a := Args{Values: map[string]string{"canary": `web-"canary"`, "stable": "web", "token": "s3cret"}, Secret: map[string]bool{"token": true}}
	req, err := a.RenderJudge(j)
	if err != nil {
		t.Fatal(err)
	}
	if req.Canary != `sum(increase(errors{workload="web-\"canary\""}[30s])) or vector(0)` ||
		req.BaselineTotal != `sum(increase(requests{workload="web", token="s3cret"}[30s])) or vector(0)` ||
		!strings.Contains(req.Shown, `token="REDACTED"`) || strings.Contains(req.Shown, "s3cret") {
		t.Errorf("rendered %+v", req)
	}
	j.Rates.CanaryTotal = `requests[{{args.canary}}]`
	if _, err := a.RenderJudge(j); err == nil || !strings.Contains(err.Error(), "provider.judge.rates.canaryTotal: argument would change the query's structure") {
		t.Errorf("an argument that would change a total's query: got %v", err)
	}
}

// TestMeasureRates sends the four queries over the whole run and judges
// the counts with the looks' steps.
func TestMeasureRates(t *testing.T) {
	started := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	at := started.Add(20 * time.Minute)
	req := JudgeRequest{Canary: "c", CanaryTotal: "ct", Baseline: "b", BaselineTotal: "bt", Prom: v1alpha1.PrometheusMetric{Address: "http://p:9090"}}
	var sent []string
	counts := map[string]float64{"c": 90, "ct": 3000, "b": 100, "bt": 10000}
	s := MeasureJudge(ratesMetric(nil), req, started, at, func(prom *v1alpha1.PrometheusMetric, q string) Sample {
		sent = append(sent, q+" "+prom.RangeQuery.Start)
		r, _ := RangeAt(*prom.RangeQuery, at)
		n := int(r.End.Sub(r.Start)/r.Step) + 1
		return Sample{Values: steady(n, counts[q], 0, 0, 0)[0]}
	})
	want := `c now() - duration("20m0s");ct now() - duration("20m0s");b now() - duration("20m0s");bt now() - duration("20m0s")`
	if strings.Join(sent, ";") != want {
		t.Errorf("sent %q, want %q", strings.Join(sent, ";"), want)
	}
	if s.Outcome == nil || s.Outcome.Phase != argo.AnalysisPhaseFailed || !strings.Contains(s.Outcome.Message, "over 41 steps") {
		t.Errorf("got %+v %+v", s, s.Outcome)
	}
}

// TestMeasureRatesRefusesASlidingRange: past the most steps a range query
// holds, the test could no longer see the whole run, so the measurement
// errs, naming the step, instead of judging a sliding window.
func TestMeasureRatesRefusesASlidingRange(t *testing.T) {
	started := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	m := ratesMetric(func(m *v1alpha1.Metric) { m.Provider.Judge.Step, m.Provider.Judge.Lookback = "1s", "2s" })
	sent := 0
	query := func(prom *v1alpha1.PrometheusMetric, q string) Sample { sent++; return Sample{Values: []float64{1}} }
	s := MeasureJudge(m, JudgeRequest{}, started, started.Add(3*time.Hour+4*time.Minute), query)
	if s.Err == nil || !strings.Contains(s.Err.Error(), "provider.judge.step: rates judge every step since the run started, at most 11000") || sent != 0 {
		t.Errorf("after 3h4m at 1s steps: sent %d, got %v", sent, s.Err)
	}
}

// TestReplayCountsTheExtension refuses up front a replay whose metric,
// extension included, could take more than MaxReplayed measurements.
func TestReplayCountsTheExtension(t *testing.T) {
	start := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	m := ratesMetric(func(m *v1alpha1.Metric) { m.Count = ptr.To(intstr.FromInt32(400)) }) // and 800 more while Inconclusive
	measured := 0
	_, _, err := Replay(v1alpha1.AnalysisRunSpec{Metrics: []v1alpha1.Metric{m}}, nil, start, start.Add(24*time.Hour), func(v1alpha1.Metric, time.Time) Sample {
		measured++
		return Sample{Outcome: &Outcome{Phase: argo.AnalysisPhaseInconclusive}}
	})
	if err == nil || !strings.Contains(err.Error(), "replaying it would take 1200 measurements") || measured != 0 {
		t.Errorf("measured %d, got %v", measured, err)
	}
}
