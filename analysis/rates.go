package analysis

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
	judging "github.com/tugboatdev/tugboat/judge"
)

// A judge metric with rates compares the canary's rate of events (errors,
// slow requests) with the baseline's, step by step, through judge.Rates:
// four range queries since the run started, the events and the requests
// of each side, and a test that may begin at each of the metric's looks.
// See docs/judge.md.

// Rate comparison defaults: not a regression up to 1.25 times the
// baseline's rate, twice it must be caught.
const (
	DefaultRateMargin = 1.25
	DefaultRateEffect = 2.0
)

// renderRates renders a rate comparison's totals, and wraps all four
// queries so that each is one series with a point at every step.
func (a Args) renderRates(j v1alpha1.JudgeMetric, req *JudgeRequest) error {
	for _, q := range []struct {
		field, text string
		into        *string
	}{{"rates.canaryTotal", j.Rates.CanaryTotal, &req.CanaryTotal}, {"rates.baselineTotal", j.Rates.BaselineTotal, &req.BaselineTotal}} {
		rendered, _, err := a.Render(q.text)
		if err != nil {
			return fmt.Errorf("provider.judge.%s: %w", q.field, err)
		}
		*q.into = rendered
	}
	for _, q := range []*string{&req.Canary, &req.Baseline, &req.CanaryTotal, &req.BaselineTotal} {
		*q = countsQuery(*q)
	}
	req.Shown = ShownJudge(j, Masked(a.Values, a.Secret, "REDACTED"))
	if _, err := RateConfigOf(v1alpha1.Metric{Provider: v1alpha1.MetricProvider{Judge: &j}}); err != nil {
		return err
	}
	return nil
}

// countsQuery makes a count query one series with a point at every step:
// summed, and 0 where it has no data (a sum over no failed requests is
// empty in PromQL, not 0).
func countsQuery(q string) string { return "sum(" + q + ") or vector(0)" }

// RateConfigOf is the rate comparison of a judge metric with rates:
// Tugboat's defaults with the metric's fields, alpha from its confidence,
// and a regression allowed to begin at each of its looks.
func RateConfigOf(m v1alpha1.Metric) (judging.RateConfig, error) {
	j := *m.Provider.Judge
	c := judging.DefaultRateConfig()
	c.Margin, c.Effect = DefaultRateMargin, DefaultRateEffect
	c.Direction = judging.Either
	if j.Direction != "" {
		c.Direction = judging.Direction(j.Direction)
	}
	c.Alpha = 1 - judging.DefaultConfig().Confidence
	if j.Confidence != nil {
		c.Alpha = 1 - *j.Confidence
	}
	if j.Rates.Margin != nil {
		c.Margin = *j.Rates.Margin
	}
	if j.Rates.Effect != nil {
		c.Effect = *j.Rates.Effect
	}
	if j.Rates.Floor != nil {
		c.Floor = *j.Rates.Floor
	}
	c.Starts = Looks(m)
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("provider.judge.rates: %s", strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	return c, nil
}

// Looks is the most measurements a metric can take: its count and its
// extension, or, when count is an argument or unset, 100.
func Looks(m v1alpha1.Metric) int {
	if m.Count == nil || m.Count.Type != intstr.Int || m.Count.IntVal <= 0 {
		return 100
	}
	return int(min(int64(m.Count.IntVal)+int64(ExtensionOf(m, m.Count.IntVal)), 100_000))
}

// ExtensionOf is how many measurements beyond count a metric takes while
// Inconclusive: extendWhileInconclusive, or by default twice count for a
// judge or burnRate metric without inconclusiveLimit and none for others.
func ExtensionOf(m v1alpha1.Metric, count int32) int32 {
	switch {
	case m.ExtendWhileInconclusive != nil:
		return *m.ExtendWhileInconclusive
	case m.InconclusiveLimit != nil:
		return 0
	case m.Provider.Judge != nil || m.Provider.BurnRate != nil:
		return min(2*count, 10000)
	}
	return 0
}

// measureRates takes a rate comparison's measurement at at: the four
// queries over every step since the run started (at least the lookback),
// and the steps at which the metric's looks began, from the run's start
// every interval.
func measureRates(m v1alpha1.Metric, req JudgeRequest, started, at time.Time, query func(prom *v1alpha1.PrometheusMetric, q string) Sample) Sample {
	j := *m.Provider.Judge
	_, since, err := JudgeRanges(j, started, at)
	if err != nil {
		return Sample{Err: err}
	}
	if since == nil {
		return Sample{Err: fmt.Errorf("provider.judge.sequential: rates are always judged by the sequential test")}
	}
	if _, step, _ := judgeDurations(j); at.Sub(started) > step*MaxRangePoints {
		// Past that the range would slide, and the test would no longer
		// see every step since the run started.
		return Sample{Err: fmt.Errorf("provider.judge.step: rates judge every step since the run started, at most %d; at a step of %s that is %s, and the run has lasted %s: set a longer step",
			MaxRangePoints, step, step*MaxRangePoints, at.Sub(started).Truncate(time.Second))}
	}
	var warnings []string
	var counts [4][]float64
	for i, q := range []string{req.Canary, req.CanaryTotal, req.Baseline, req.BaselineTotal} {
		prom := req.Prom
		prom.Query, prom.RangeQuery = q, since
		s := query(&prom, q)
		if s.Err != nil {
			return Sample{Err: s.Err}
		}
		warnings = append(warnings, s.Warnings...)
		counts[i] = s.Values
	}
	rng, err := RangeAt(*since, at)
	if err != nil {
		return Sample{Err: err}
	}
	o := RatesOutcome(m, counts, LookSteps(m, started, rng))
	return Sample{Outcome: &o, Warnings: warnings[:min(len(warnings), 3)]}
}

// LookSteps are the indexes, among the points of rng, of the moments a
// metric's looks began at: the run's start and every interval after it,
// up to rng's end. The same moments give the same steps at every look, so
// that the test's mixture over them is fixed.
func LookSteps(m v1alpha1.Metric, started time.Time, rng Range) []int {
	interval, err := m.Interval.Duration()
	if err != nil || interval <= 0 {
		interval = rng.End.Sub(started) + 1
	}
	var steps []int
	for t := started; !t.After(rng.End); t = t.Add(interval) {
		i := max(0, int(math.Ceil(float64(t.Sub(rng.Start))/float64(rng.Step))))
		if len(steps) == 0 || steps[len(steps)-1] != i {
			steps = append(steps, i)
		}
	}
	return steps
}

// RatesOutcome is a rate comparison's measurement from its counts (the
// canary's events and requests, the baseline's events and requests, a
// point per step) and the steps its looks began at: a regression in the
// watched direction is Failed, evidence of none Successful, anything else
// Inconclusive, saying how many more requests would decide.
func RatesOutcome(m v1alpha1.Metric, counts [4][]float64, starts []int) Outcome {
	c, err := RateConfigOf(m)
	if err != nil {
		return Outcome{Phase: argo.AnalysisPhaseError, Message: err.Error()}
	}
	n := len(counts[0])
	for i, side := range counts {
		if len(side) != n {
			return Outcome{Phase: argo.AnalysisPhaseError, Message: fmt.Sprintf(
				"provider.judge.rates: the queries returned %d, %d, %d and %d points; each must return one series (query %d differs)",
				len(counts[0]), len(counts[1]), len(counts[2]), len(counts[3]), i+1)}
		}
	}
	steps := make([]judging.RateStep, n)
	for i := range steps {
		steps[i] = judging.RateStep{CanaryEvents: orZero(counts[0][i]), CanaryTotal: orZero(counts[1][i]),
			BaselineEvents: orZero(counts[2][i]), BaselineTotal: orZero(counts[3][i])}
		// Counts that are extrapolated (increase()) or scraped a moment
		// apart may put a step's events a hair above its requests; more
		// than that is left for judge.Rates to refuse (swapped queries).
		steps[i].CanaryEvents = hair(steps[i].CanaryEvents, steps[i].CanaryTotal)
		steps[i].BaselineEvents = hair(steps[i].BaselineEvents, steps[i].BaselineTotal)
	}
	res, err := judging.Rates(steps, starts, c)
	if err != nil {
		return Outcome{Phase: argo.AnalysisPhaseError, Message: "provider.judge.rates: " + err.Error()}
	}
	value := ratesValue(res)
	text := fmt.Sprintf("%s: %s over %d steps since the run started: %s", m.Name, res.Decision, n, res.Reason)
	switch res.Decision {
	case judging.High, judging.Low:
		return Outcome{Phase: argo.AnalysisPhaseFailed, Value: value, Message: text}
	case judging.Pass:
		return Outcome{Phase: argo.AnalysisPhaseSuccessful, Value: value, Message: text}
	}
	if res.CanaryTotal == 0 || res.BaselineTotal == 0 {
		phase := m.OnNoData
		if phase == "" {
			phase = argo.AnalysisPhaseInconclusive
		}
		side := "canary"
		if res.CanaryTotal > 0 {
			side = "baseline"
		}
		return Outcome{Phase: phase, Value: value, Message: fmt.Sprintf("%s: the %s served no requests over %d steps since the run started; onNoData is %s", m.Name, side, n, phase)}
	}
	return Outcome{Phase: argo.AnalysisPhaseInconclusive, Value: value, Message: text}
}

// hair is events, cut to total when they exceed it by as little as
// judge.Rates lets pass.
func hair(events, total float64) float64 {
	if events > total && events <= total*(1+1e-9)+1 {
		return total
	}
	return events
}

func orZero(v float64) float64 {
	if math.IsNaN(v) || v < 0 {
		return 0
	}
	return v
}

// ratesValue is a rate comparison's value: small JSON with the decision,
// the ratio of the rates, the evidence each way and, when Inconclusive,
// the requests still needed, to six significant digits.
func ratesValue(r judging.RateResult) string {
	fields := []string{`"classification":` + strconv.Quote(string(r.Decision))}
	for _, f := range []struct {
		name string
		v    float64
	}{{"ratio", r.Ratio}, {"regression", r.Regression}, {"noRegression", r.NoRegression}, {"moreRequests", math.Ceil(r.MoreRequests)}} {
		if f.name == "moreRequests" && r.Decision != judging.Inconclusive {
			continue
		}
		if !math.IsNaN(f.v) && !math.IsInf(f.v, 0) {
			fields = append(fields, strconv.Quote(f.name)+":"+strconv.FormatFloat(f.v, 'g', 6, 64))
		}
	}
	return "{" + strings.Join(fields, ",") + "}"
}
