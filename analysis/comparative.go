package analysis

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
	judging "github.com/tugboatdev/tugboat/judge"
)

// A judge metric (provider.judge) compares the canary's range query with
// the baseline's through the judge package: Classify on the lookback
// window, and, with sequential, the anytime-valid Sequential test on every
// point since the run started. See docs/judge.md.

// JudgeRequest is a judge metric's queries, rendered.
type JudgeRequest struct {
	// Prom is where both queries go: the address, rendered, and the
	// timeout. Its query and range are set for each query sent.
	Prom v1alpha1.PrometheusMetric
	// Canary and Baseline are the queries to send; with rates, also
	// CanaryTotal and BaselineTotal, each of the four summed into one
	// series whose steps without data count 0.
	Canary, Baseline           string
	CanaryTotal, BaselineTotal string
	// Shown is both queries as status shows them, Secret values masked.
	Shown string
	// Secret says a query holds values from Secrets.
	Secret bool
}

// RenderJudge renders a judge metric's queries as Render does a Prometheus
// metric's, and its address as RenderTarget does; a query holding Secret
// values goes only to the controller's Prometheus.
func (a Args) RenderJudge(j v1alpha1.JudgeMetric) (JudgeRequest, error) {
	canary, shownCanary, err := a.Render(j.Canary)
	if err != nil {
		return JudgeRequest{}, fmt.Errorf("provider.judge.canary: %w", err)
	}
	baseline, shownBaseline, err := a.Render(j.Baseline)
	if err != nil {
		return JudgeRequest{}, fmt.Errorf("provider.judge.baseline: %w", err)
	}
	prom := v1alpha1.PrometheusMetric{Address: j.Address, Timeout: j.Timeout}
	if err := a.RenderTarget(&prom); err != nil {
		return JudgeRequest{}, fmt.Errorf("provider.judge.%w", err)
	}
	if err := a.CheckAddress(v1alpha1.PrometheusMetric{Address: prom.Address, Query: JudgeArgText(j)}); err != nil {
		return JudgeRequest{}, fmt.Errorf("provider.judge: %w", err)
	}
	if _, _, err := judgeDurations(j); err != nil {
		return JudgeRequest{}, err
	}
	req := JudgeRequest{
		Prom: prom, Canary: canary, Baseline: baseline,
		Shown:  "canary: " + shownCanary + "; baseline: " + shownBaseline,
		Secret: a.In(JudgeArgText(j)),
	}
	if j.Rates != nil {
		if err := a.renderRates(j, &req); err != nil {
			return JudgeRequest{}, err
		}
	}
	return req, nil
}

// JudgeArgText is every query of a judge metric, for the arguments they
// refer to.
func JudgeArgText(j v1alpha1.JudgeMetric) string {
	text := j.Canary + " " + j.Baseline
	if j.Rates != nil {
		text += " " + j.Rates.CanaryTotal + " " + j.Rates.BaselineTotal
	}
	return text
}

// ShownJudge is a judge metric's queries for display only, as Shown.
func ShownJudge(j v1alpha1.JudgeMetric, args map[string]string) string {
	shown := "canary: " + Shown(j.Canary, args) + "; baseline: " + Shown(j.Baseline, args)
	if j.Rates != nil {
		shown += "; canaryTotal: " + Shown(j.Rates.CanaryTotal, args) + "; baselineTotal: " + Shown(j.Rates.BaselineTotal, args)
	}
	return shown
}

// judgeDurations reads a judge metric's lookback and step; the schema
// bounds them, and this says so again of a spec that did not pass it.
func judgeDurations(j v1alpha1.JudgeMetric) (lookback, step time.Duration, err error) {
	lookback, err = j.Lookback.Duration()
	if err != nil || lookback <= 0 {
		return 0, 0, fmt.Errorf("provider.judge.lookback %q is not a positive duration such as 10m", j.Lookback)
	}
	step, err = j.Step.Duration()
	if err != nil || step <= 0 {
		return 0, 0, fmt.Errorf("provider.judge.step %q is not a positive duration such as 30s", j.Step)
	}
	if lookback < 2*step || lookback/step > MaxRangePoints {
		return 0, 0, fmt.Errorf("provider.judge.lookback %s must hold from 2 to %d steps of %s", j.Lookback, MaxRangePoints, j.Step)
	}
	return lookback, step, nil
}

// JudgeRanges are the ranges a judge metric's measurement at at queries in
// a run started at started: the lookback window, and, with sequential,
// every step since the run started, at least the lookback and at most
// MaxRangePoints steps (nil without sequential). Both end at the
// measurement, as now() of the query.
func JudgeRanges(j v1alpha1.JudgeMetric, started, at time.Time) (window, since *v1alpha1.PrometheusRangeQuery, err error) {
	lookback, step, err := judgeDurations(j)
	if err != nil {
		return nil, nil, err
	}
	back := func(d time.Duration) *v1alpha1.PrometheusRangeQuery {
		return &v1alpha1.PrometheusRangeQuery{Start: fmt.Sprintf("now() - duration(%q)", d.String()), End: "now()", Step: argo.DurationString(step.String())}
	}
	window = back(lookback)
	if j.Sequential == nil || *j.Sequential {
		d := min(max(at.Sub(started), lookback), step*MaxRangePoints)
		since = back(d.Truncate(time.Second))
	}
	return window, since, nil
}

// MeasureJudge takes a judge metric's measurement at at, in a run started
// at started: the canary's and the baseline's range queries (JudgeRanges)
// through query, which sends one, and the judge's verdict as the sample's
// Outcome. The first query that errs or is deferred is the sample.
func MeasureJudge(m v1alpha1.Metric, req JudgeRequest, started, at time.Time, query func(prom *v1alpha1.PrometheusMetric, q string) Sample) Sample {
	j := *m.Provider.Judge
	if j.Rates != nil {
		return measureRates(m, req, started, at, query)
	}
	window, since, err := JudgeRanges(j, started, at)
	if err != nil {
		return Sample{Err: err}
	}
	var warnings []string
	take := func(rng *v1alpha1.PrometheusRangeQuery, q string) ([]float64, error) {
		prom := req.Prom
		prom.Query, prom.RangeQuery = q, rng
		s := query(&prom, q)
		warnings = append(warnings, s.Warnings...)
		return s.Values, s.Err
	}
	var sides JudgeSamples
	if sides.Canary, err = take(window, req.Canary); err != nil {
		return Sample{Err: err}
	}
	if sides.Baseline, err = take(window, req.Baseline); err != nil {
		return Sample{Err: err}
	}
	if since != nil {
		if sides.CanarySince, err = take(since, req.Canary); err != nil {
			return Sample{Err: err}
		}
		if sides.BaselineSince, err = take(since, req.Baseline); err != nil {
			return Sample{Err: err}
		}
	}
	o := JudgeOutcome(m, sides)
	return Sample{Outcome: &o, Warnings: warnings[:min(len(warnings), 3)]}
}

// JudgeSamples are the points of a judge metric's queries, in time order:
// over the lookback window, and (with sequential) since the run started.
type JudgeSamples struct {
	Canary, Baseline           []float64
	CanarySince, BaselineSince []float64
}

// JudgeConfig is the judge's configuration for a judge metric: Tugboat's
// defaults (judging.DefaultConfig) with the metric's fields.
func JudgeConfig(j v1alpha1.JudgeMetric) (judging.Config, judging.SequentialConfig) {
	c := judging.DefaultConfig()
	if j.Direction != "" {
		c.Direction = judging.Direction(j.Direction)
	}
	if j.Tolerance != nil {
		c.Tolerance = *j.Tolerance
	}
	if j.Confidence != nil {
		c.Confidence = *j.Confidence
	}
	if j.Equivalence != nil {
		c.Equivalence = *j.Equivalence
	}
	if j.MinSamples != nil {
		c.MinSamples = int(*j.MinSamples)
	}
	s := judging.DefaultSequentialConfig()
	s.Alpha, s.Direction, s.Autocorrelation = 1-c.Confidence, c.Direction, c.Autocorrelation
	s.MinSamples = max(s.MinSamples, c.MinSamples)
	return c, s
}

// JudgeOutcome is a judge metric's measurement from its samples. Without
// sequential, the lookback window's classification decides: High or Low
// (in the watched direction) is Failed, Pass Successful, Inconclusive
// Inconclusive, no data the metric's onNoData. With sequential, only the
// sequential test's High or Low fails; the window's Pass still passes, and
// a High or Low of the window alone is Inconclusive.
func JudgeOutcome(m v1alpha1.Metric, s JudgeSamples) Outcome {
	j := *m.Provider.Judge
	c, sc := JudgeConfig(j)
	res, err := judging.Classify(m.Name, s.Canary, s.Baseline, c)
	if err == nil {
		err = sc.Validate()
	}
	if err != nil {
		return Outcome{Phase: argo.AnalysisPhaseError, Message: "provider.judge: " + strings.ReplaceAll(err.Error(), "\n", "; ")}
	}
	sequential := j.Sequential == nil || *j.Sequential
	var seq judging.SequentialResult
	if sequential {
		if seq, err = judging.Sequential(s.CanarySince, s.BaselineSince, sc); err != nil {
			return Outcome{Phase: argo.AnalysisPhaseError, Value: judgeValue(res.Classification, res), Message: "the sequential test: " + err.Error()}
		}
	}
	window := judgeText(res, c)
	across := ""
	if sequential {
		across = fmt.Sprintf("; across looks, %d canary and %d baseline samples since the run started: %s", seq.CanarySamples, seq.BaselineSamples, seq.Reason)
	}
	switch {
	case sequential && (seq.Decision == judging.High || seq.Decision == judging.Low):
		return Outcome{Phase: argo.AnalysisPhaseFailed, Value: judgeValue(seq.Decision, res),
			Message: fmt.Sprintf("%s: the sequential test over %d canary and %d baseline samples since the run started found it %s: %s; last window %s",
				m.Name, seq.CanarySamples, seq.BaselineSamples, seq.Decision, seq.Reason, window)}
	case (res.Classification == judging.High || res.Classification == judging.Low) && sequential:
		return Outcome{Phase: argo.AnalysisPhaseInconclusive, Value: judgeValue(judging.Inconclusive, res),
			Message: fmt.Sprintf("%s: the window is %s, but the sequential test over every look has not crossed its threshold, so wait for more data%s",
				m.Name, window, across)}
	case res.Classification == judging.High || res.Classification == judging.Low:
		return Outcome{Phase: argo.AnalysisPhaseFailed, Value: judgeValue(res.Classification, res), Message: m.Name + ": " + window}
	case res.Classification == judging.Pass:
		return Outcome{Phase: argo.AnalysisPhaseSuccessful, Value: judgeValue(res.Classification, res), Message: m.Name + ": " + window + across}
	case res.Classification == judging.Inconclusive:
		return Outcome{Phase: argo.AnalysisPhaseInconclusive, Value: judgeValue(res.Classification, res), Message: m.Name + ": " + window + across}
	case res.Classification == judging.NoData || res.Classification == judging.NoDataFail:
		phase := m.OnNoData
		if phase == "" {
			phase = argo.AnalysisPhaseInconclusive
		}
		return Outcome{Phase: phase, Value: judgeValue(res.Classification, res), Message: res.Reason + "; onNoData is " + string(phase)}
	}
	return Outcome{Phase: argo.AnalysisPhaseError, Value: judgeValue(res.Classification, res), Message: res.Reason}
}

// judgeText is a classification with its numbers: the shift's estimate and
// interval, the mean ratio, the samples, and, but for High and Low, the
// judge's reason (which, when Inconclusive, says how many more samples
// would decide).
func judgeText(r judging.MetricResult, c judging.Config) string {
	var b strings.Builder
	b.WriteString(string(r.Classification))
	var parts []string
	if !math.IsNaN(r.Estimate) {
		parts = append(parts, fmt.Sprintf("shift %s [%s, %s] at %s%% confidence", g(r.Estimate), g(r.Lower), g(r.Upper), g(100*c.Confidence)))
	}
	if !math.IsNaN(r.Ratio) {
		parts = append(parts, "mean ratio "+g(r.Ratio))
	}
	parts = append(parts, fmt.Sprintf("%d canary and %d baseline samples", r.CanarySamples, r.BaselineSamples))
	fmt.Fprintf(&b, " (%s)", strings.Join(parts, ", "))
	if r.Reason != "" && r.Classification != judging.High && r.Classification != judging.Low {
		b.WriteString(": " + r.Reason) // High's and Low's say only the numbers above
	}
	return b.String()
}

// judgeValue is a judge measurement's value: small JSON with the
// classification and the numbers that were computed, to six significant
// digits.
func judgeValue(class judging.Classification, r judging.MetricResult) string {
	fields := []string{`"classification":` + strconv.Quote(string(class))}
	for _, f := range []struct {
		name string
		v    float64
	}{{"estimate", r.Estimate}, {"lower", r.Lower}, {"upper", r.Upper}, {"ratio", r.Ratio}} {
		if !math.IsNaN(f.v) && !math.IsInf(f.v, 0) {
			fields = append(fields, strconv.Quote(f.name)+":"+strconv.FormatFloat(f.v, 'g', 6, 64))
		}
	}
	return "{" + strings.Join(fields, ",") + "}"
}

func g(v float64) string { return strconv.FormatFloat(v, 'g', 4, 64) }
