package analysis

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	"github.com/prometheus/common/model"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

// A burn-rate metric (provider.burnRate) gates the canary on its SLO
// error-budget burn rate, (errors / total) / (1 - objective), over a short
// and a long window, as the SRE workbook's multi-window alerts do: it
// fails when both windows burn too fast, in absolute terms or relative to
// the stable baseline. See docs/analysis.md.

// WindowPlaceholder is where a burn-rate query takes its window, which
// Tugboat, not an argument, fills in as a PromQL duration.
const WindowPlaceholder = "{{window}}"

// DefaultMinEvents is the fewest requests in the short window a burn-rate
// metric judges unless minEvents says otherwise.
const DefaultMinEvents = 100

// relativeFloor is the least burn rate the stable baseline is taken to
// have in the relative check: a canary that burns within its budget is
// never failed for burning faster than a stable without errors.
const relativeFloor = 1.0

// Burn-rate windows, as indexes.
const (
	shortWindow = 0
	longWindow  = 1
)

// BurnRateRequest is a burn-rate metric's queries, rendered.
type BurnRateRequest struct {
	// Prom is where the queries go: the address, rendered, and the
	// timeout. Its query is set for each query sent.
	Prom v1alpha1.PrometheusMetric
	// Windows are the short and the long window.
	Windows [2]time.Duration
	// Errors and Total are the canary's queries for each window;
	// BaselineErrors and BaselineTotal the stable's, empty without a
	// relative check.
	Errors, Total, BaselineErrors, BaselineTotal [2]string
	// Shown is the queries as status shows them, Secret values masked and
	// {{window}} kept, with the windows.
	Shown string
	// Secret says a query holds values from Secrets.
	Secret bool
}

// RenderBurnRate renders a burn-rate metric's queries for each window, as
// Render does a Prometheus metric's, once {{window}} is replaced with the
// window; its address as RenderTarget does. A query holding Secret values
// goes only to the controller's Prometheus.
func (a Args) RenderBurnRate(b v1alpha1.BurnRateMetric) (BurnRateRequest, error) {
	windows, err := burnRateWindows(b)
	if err != nil {
		return BurnRateRequest{}, err
	}
	if err := burnRateBounds(b); err != nil {
		return BurnRateRequest{}, err
	}
	req := BurnRateRequest{Windows: windows, Shown: ShownBurnRate(b, Masked(a.Values, a.Secret, "REDACTED")), Secret: a.In(burnRateText(b))}
	for _, q := range []struct {
		field string
		text  string
		into  *[2]string
	}{{"errors", b.Errors, &req.Errors}, {"total", b.Total, &req.Total}, {"baselineErrors", b.BaselineErrors, &req.BaselineErrors}, {"baselineTotal", b.BaselineTotal, &req.BaselineTotal}} {
		if q.text == "" {
			if q.field == "errors" || q.field == "total" {
				return BurnRateRequest{}, fmt.Errorf("provider.burnRate.%s: a query is required", q.field)
			}
			continue
		}
		if !strings.Contains(q.text, WindowPlaceholder) {
			return BurnRateRequest{}, fmt.Errorf("provider.burnRate.%s must hold %s, which Tugboat replaces with each window", q.field, WindowPlaceholder)
		}
		for w, d := range windows {
			rendered, _, err := a.Render(strings.ReplaceAll(q.text, WindowPlaceholder, model.Duration(d).String()))
			if err != nil {
				return BurnRateRequest{}, fmt.Errorf("provider.burnRate.%s: %w", q.field, err)
			}
			q.into[w] = rendered
		}
	}
	if (b.BaselineErrors == "") != (b.BaselineTotal == "") || (b.BaselineTotal == "") != (b.MaxRelativeBurnRate == nil) {
		return BurnRateRequest{}, fmt.Errorf("provider.burnRate.maxRelativeBurnRate compares the canary with the stable baseline: set it with baselineErrors and baselineTotal, or none of the three")
	}
	req.Prom = v1alpha1.PrometheusMetric{Address: b.Address, Timeout: b.Timeout}
	if err := a.RenderTarget(&req.Prom); err != nil {
		return BurnRateRequest{}, fmt.Errorf("provider.burnRate.%w", err)
	}
	if err := a.CheckAddress(v1alpha1.PrometheusMetric{Address: req.Prom.Address, Query: burnRateText(b)}); err != nil {
		return BurnRateRequest{}, fmt.Errorf("provider.burnRate: %w", err)
	}
	return req, nil
}

// burnRateText is every query of a burn-rate metric, for the arguments
// they refer to.
func burnRateText(b v1alpha1.BurnRateMetric) string {
	return b.Errors + " " + b.Total + " " + b.BaselineErrors + " " + b.BaselineTotal
}

// BurnRateArgText is all the text of a burn-rate metric that arguments go
// into: its queries and its address.
func BurnRateArgText(b v1alpha1.BurnRateMetric) string {
	return burnRateText(b) + " " + b.Address
}

// ShownBurnRate is a burn-rate metric's queries for display only, as
// Shown, {{window}} kept, and the windows.
func ShownBurnRate(b v1alpha1.BurnRateMetric, args map[string]string) string {
	parts := []string{"errors: " + Shown(b.Errors, args), "total: " + Shown(b.Total, args)}
	if b.BaselineTotal != "" {
		parts = append(parts, "baselineErrors: "+Shown(b.BaselineErrors, args), "baselineTotal: "+Shown(b.BaselineTotal, args))
	}
	parts = append(parts, fmt.Sprintf("windows: %s and %s", b.ShortWindow, b.LongWindow))
	return strings.Join(parts, "; ")
}

// burnRateWindows reads a burn-rate metric's windows; the schema bounds
// them, and this says so again of a spec that did not pass it.
func burnRateWindows(b v1alpha1.BurnRateMetric) ([2]time.Duration, error) {
	short, err := b.ShortWindow.Duration()
	if err != nil || short < time.Minute || short > 24*time.Hour {
		return [2]time.Duration{}, fmt.Errorf("provider.burnRate.shortWindow %q is not a duration from 1m to 24h, such as 5m", b.ShortWindow)
	}
	long, err := b.LongWindow.Duration()
	if err != nil || long <= short || long > 72*time.Hour {
		return [2]time.Duration{}, fmt.Errorf("provider.burnRate.longWindow %q is not a duration longer than shortWindow %s and at most 72h, such as 1h", b.LongWindow, b.ShortWindow)
	}
	return [2]time.Duration{short, long}, nil
}

// burnRateBounds says again of a spec that did not pass the schema that
// its numbers are out of bounds: an objective of 1 would divide by 0.
func burnRateBounds(b v1alpha1.BurnRateMetric) error {
	switch {
	case !(b.Objective >= 0.9 && b.Objective <= 0.99999):
		return fmt.Errorf("provider.burnRate.objective %g is not from 0.9 to 0.99999", b.Objective)
	case !(b.MaxBurnRate > 0 && b.MaxBurnRate <= 100000):
		return fmt.Errorf("provider.burnRate.maxBurnRate %g is not above 0 and at most 100000", b.MaxBurnRate)
	case b.MaxRelativeBurnRate != nil && !(*b.MaxRelativeBurnRate >= 1 && *b.MaxRelativeBurnRate <= 1000):
		return fmt.Errorf("provider.burnRate.maxRelativeBurnRate %g is not from 1 to 1000", *b.MaxRelativeBurnRate)
	case b.MinEvents != nil && (*b.MinEvents < 1 || *b.MinEvents > 1000000000):
		return fmt.Errorf("provider.burnRate.minEvents %d is not from 1 to 1000000000", *b.MinEvents)
	}
	return nil
}

// BurnRateCounts are the requests a burn-rate metric's queries counted in
// each window (short, long). A total is NaN when its query returned no
// data; errors whose query returned none are 0 (a sum over no failed
// series is empty, not 0, in PromQL).
type BurnRateCounts struct {
	Errors, Total                 [2]float64
	BaselineErrors, BaselineTotal [2]float64
}

// MeasureBurnRate takes a burn-rate metric's measurement at at: each
// window's errors and total, the canary's and (with a relative check) the
// stable's, as instant queries through query, which sends one, and the
// verdict of BurnRateOutcome as the sample's Outcome. The first query that
// errs or is deferred is the sample.
func MeasureBurnRate(m v1alpha1.Metric, req BurnRateRequest, query func(prom *v1alpha1.PrometheusMetric, q string) Sample) Sample {
	var warnings []string
	var c BurnRateCounts
	for _, q := range []struct {
		queries  [2]string
		into     *[2]float64
		noDataIs float64
	}{{req.Errors, &c.Errors, 0}, {req.Total, &c.Total, math.NaN()}, {req.BaselineErrors, &c.BaselineErrors, 0}, {req.BaselineTotal, &c.BaselineTotal, math.NaN()}} {
		for w, text := range q.queries {
			if text == "" {
				q.into[w] = math.NaN()
				continue
			}
			prom := req.Prom
			prom.Query = text
			s := query(&prom, text)
			if s.Err != nil {
				return Sample{Err: s.Err}
			}
			warnings = append(warnings, s.Warnings...)
			q.into[w] = sumOr(s.Values, q.noDataIs)
		}
	}
	o := BurnRateOutcome(m, c)
	return Sample{Outcome: &o, Warnings: warnings[:min(len(warnings), 3)]}
}

// sumOr is the sum of the values that are not NaN, or none when there are
// none.
func sumOr(values []float64, none float64) float64 {
	sum, n := 0.0, 0
	for _, v := range values {
		if !math.IsNaN(v) {
			sum += v
			n++
		}
	}
	if n == 0 {
		return none
	}
	return sum
}

// BurnRate is the error-budget burn rate of errors out of total requests
// under objective: the error ratio over the budget, 1 - objective. No
// requests burn nothing.
func BurnRate(errors, total, objective float64) float64 {
	if total <= 0 || math.IsNaN(total) {
		return 0
	}
	return errors / total / (1 - objective)
}

// BurnRateOutcome is a burn-rate metric's measurement from its counts:
// no data (a total query without series) is the metric's onNoData; fewer
// than minEvents requests in the short window, the canary's or (with a
// relative check) the stable's, Inconclusive, saying how many more are
// needed; the canary burning faster than maxBurnRate over both windows, or
// than maxRelativeBurnRate times the stable's burn (at least 1) over both,
// Failed; otherwise Successful.
func BurnRateOutcome(m v1alpha1.Metric, c BurnRateCounts) Outcome {
	b := *m.Provider.BurnRate
	relative := b.MaxRelativeBurnRate != nil
	short, long := string(b.ShortWindow), string(b.LongWindow)
	names := [2]string{short, long}
	for w := range 2 {
		side := ""
		switch {
		case math.IsNaN(c.Total[w]):
			side = "the canary's"
		case relative && math.IsNaN(c.BaselineTotal[w]):
			side = "the stable baseline's"
		default:
			continue
		}
		phase := m.OnNoData
		if phase == "" {
			phase = argo.AnalysisPhaseInconclusive
		}
		return Outcome{Phase: phase, Message: fmt.Sprintf("%s: %s total query returned no data over %s; onNoData is %s", m.Name, side, names[w], phase)}
	}
	var canary, stable [2]float64
	for w := range 2 {
		canary[w] = BurnRate(c.Errors[w], c.Total[w], b.Objective)
		if relative {
			stable[w] = BurnRate(c.BaselineErrors[w], c.BaselineTotal[w], b.Objective)
		}
	}
	value := burnRateValue(canary, stable, relative)
	minEvents := float64(DefaultMinEvents)
	if b.MinEvents != nil {
		minEvents = float64(*b.MinEvents)
	}
	seen := fmt.Sprintf("burn rate %s over %s and %s over %s (%s errors in %s requests over %s)", g(canary[0]), short, g(canary[1]), long, count(c.Errors[0]), count(c.Total[0]), short)
	if c.Total[shortWindow] < minEvents {
		return Outcome{Phase: argo.AnalysisPhaseInconclusive, Value: value, Message: fmt.Sprintf(
			"%s: the canary had %s requests over %s, fewer than minEvents %s: %s more are needed to decide; %s",
			m.Name, count(c.Total[0]), short, count(minEvents), count(math.Ceil(minEvents-c.Total[0])), seen)}
	}
	limit := fmt.Sprintf("maxBurnRate %s", g(b.MaxBurnRate))
	if canary[0] > b.MaxBurnRate && canary[1] > b.MaxBurnRate {
		return Outcome{Phase: argo.AnalysisPhaseFailed, Value: value, Message: fmt.Sprintf("%s: %s, above %s over both windows", m.Name, seen, limit)}
	}
	if !relative {
		return Outcome{Phase: argo.AnalysisPhaseSuccessful, Value: value, Message: fmt.Sprintf("%s: %s, not above %s over both windows", m.Name, seen, limit)}
	}
	rel := *b.MaxRelativeBurnRate
	stableSeen := fmt.Sprintf("the stable baseline's %s and %s (%s errors in %s requests over %s)", g(stable[0]), g(stable[1]), count(c.BaselineErrors[0]), count(c.BaselineTotal[0]), short)
	if c.BaselineTotal[shortWindow] < minEvents {
		return Outcome{Phase: argo.AnalysisPhaseInconclusive, Value: value, Message: fmt.Sprintf(
			"%s: %s, not above %s over both windows; the stable baseline had %s requests over %s, fewer than minEvents %s: %s more are needed to compare with it; %s",
			m.Name, seen, limit, count(c.BaselineTotal[0]), short, count(minEvents), count(math.Ceil(minEvents-c.BaselineTotal[0])), stableSeen)}
	}
	bound := func(w int) float64 { return rel * max(stable[w], relativeFloor) }
	relText := fmt.Sprintf("%s× %s, each taken as at least %s,", g(rel), stableSeen, g(relativeFloor))
	if canary[0] > bound(0) && canary[1] > bound(1) {
		return Outcome{Phase: argo.AnalysisPhaseFailed, Value: value, Message: fmt.Sprintf("%s: %s, above maxRelativeBurnRate %s over both windows", m.Name, seen, relText)}
	}
	return Outcome{Phase: argo.AnalysisPhaseSuccessful, Value: value, Message: fmt.Sprintf(
		"%s: %s, not above %s nor maxRelativeBurnRate %s over both windows", m.Name, seen, limit, relText)}
}

// count is a number of requests as a measurement shows it: increase()
// extrapolates, so counts need not be whole.
func count(v float64) string { return strconv.FormatFloat(math.Round(v), 'f', -1, 64) }

// burnRateValue is a burn-rate measurement's value: small JSON with the
// canary's burn rates over the short and the long window, and the
// stable's with a relative check, to six significant digits.
func burnRateValue(canary, stable [2]float64, relative bool) string {
	f := func(v float64) string {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return "null"
		}
		return strconv.FormatFloat(v, 'g', 6, 64)
	}
	s := `{"short":` + f(canary[0]) + `,"long":` + f(canary[1])
	if relative {
		s += `,"baselineShort":` + f(stable[0]) + `,"baselineLong":` + f(stable[1])
	}
	return s + "}"
}
