package analysis

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

// Sample is what a provider returned for one measurement: the values of a
// vector (one per series) or of a scalar, or the error that prevented it.
type Sample struct {
	Values []float64
	Scalar bool
	Err    error
}

// Judge is the phase of one measurement and why: Error when the sample
// could not be taken, the metric's no-data policy when it holds no data,
// else what the success and failure conditions say of it.
func Judge(m v1alpha1.Metric, s Sample, args map[string]string) (argo.AnalysisPhase, string, string) {
	if s.Err != nil {
		return argo.AnalysisPhaseError, "", s.Err.Error()
	}
	if why := noData(m, s); why != "" {
		phase := m.OnNoData
		if phase == "" {
			phase = argo.AnalysisPhaseInconclusive
		}
		return phase, "", why + "; onNoData is " + string(phase)
	}
	var result any = s.Values
	value := formatValues(s.Values)
	if s.Scalar {
		result = s.Values[0]
	}
	phase, err := conditionsPhase(m, result, args)
	if err != nil {
		return argo.AnalysisPhaseError, value, err.Error()
	}
	return phase, value, describe(m, phase)
}

// noData says why a sample holds no data, or "" when it does.
func noData(m v1alpha1.Metric, s Sample) string {
	n := 0
	for _, v := range s.Values {
		if !math.IsNaN(v) {
			n++
		}
	}
	switch {
	case len(s.Values) == 0:
		return "the query returned no data"
	case n == 0:
		return "the query returned only NaN"
	case m.MinSamples != nil && n < int(*m.MinSamples):
		return fmt.Sprintf("the query returned %d values, fewer than minSamples %d", n, *m.MinSamples)
	}
	return ""
}

// conditionsPhase applies Argo's rules: with only a success condition, not
// meeting it fails; with only a failure condition, not meeting it succeeds;
// with both, meeting neither is inconclusive; with none, success.
func conditionsPhase(m v1alpha1.Metric, result any, args map[string]string) (argo.AnalysisPhase, error) {
	var success, failure bool
	var err error
	if m.SuccessCondition != "" {
		if success, err = evalCondition(m.SuccessCondition, result, args); err != nil {
			return "", err
		}
	}
	if m.FailureCondition != "" {
		if failure, err = evalCondition(m.FailureCondition, result, args); err != nil {
			return "", err
		}
	}
	switch {
	case m.SuccessCondition == "" && m.FailureCondition == "":
		return argo.AnalysisPhaseSuccessful, nil
	case m.FailureCondition == "":
		failure = !success
	case m.SuccessCondition == "":
		success = !failure
	}
	switch {
	case failure:
		return argo.AnalysisPhaseFailed, nil
	case success:
		return argo.AnalysisPhaseSuccessful, nil
	}
	return argo.AnalysisPhaseInconclusive, nil
}

func describe(m v1alpha1.Metric, phase argo.AnalysisPhase) string {
	switch {
	case phase == argo.AnalysisPhaseSuccessful && m.SuccessCondition != "":
		return "met " + m.SuccessCondition
	case phase == argo.AnalysisPhaseFailed && m.FailureCondition != "":
		return "met failure condition " + m.FailureCondition
	case phase == argo.AnalysisPhaseFailed:
		return "did not meet " + m.SuccessCondition
	case phase == argo.AnalysisPhaseInconclusive:
		return "met neither " + m.SuccessCondition + " nor " + m.FailureCondition
	}
	return ""
}

func formatValues(vs []float64) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = strconv.FormatFloat(v, 'g', 6, 64)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// Record adds a measurement's phase to a metric's counters.
func Record(r *argo.MetricResult, phase argo.AnalysisPhase) {
	switch phase {
	case argo.AnalysisPhaseError:
		r.Error++
		r.ConsecutiveError++
		r.ConsecutiveSuccess = 0
		return
	case argo.AnalysisPhaseSuccessful:
		r.Successful++
		r.ConsecutiveSuccess++
	case argo.AnalysisPhaseFailed:
		r.Failed++
		r.ConsecutiveSuccess = 0
	case argo.AnalysisPhaseInconclusive:
		r.Inconclusive++
		r.ConsecutiveSuccess = 0
	}
	r.Count++
	r.ConsecutiveError = 0
}

// QueryRefused is the metrics server's answer that a query is bad or failed
// to run (as opposed to the server being unreachable). Its message may quote
// the query.
type QueryRefused struct {
	Reason string // such as bad_data or execution
	Err    error
}

func (e *QueryRefused) Error() string { return e.Err.Error() }
func (e *QueryRefused) Unwrap() error { return e.Err }

// Limits are a metric's resolved limits.
type Limits struct {
	Failure, Inconclusive, ConsecutiveError, ConsecutiveSuccess int32
	// Count of measurements to take; 0 means until the run ends.
	Count int32
}

// LimitsOf resolves a metric's limits (which may be templated strings) with
// Argo's defaults: no failures, no inconclusives, 4 errors in a row.
func LimitsOf(m v1alpha1.Metric, args map[string]string) (Limits, error) {
	var errs []error
	get := func(v *intstr.IntOrString, def int32, field string) int32 {
		if v == nil {
			return def
		}
		if v.Type == intstr.Int {
			return v.IntVal
		}
		s, err := substitute(v.StrVal, args)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", field, err))
			return def
		}
		n, err := strconv.ParseInt(s, 10, 32)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %q is not a number", field, s))
			return def
		}
		return int32(n)
	}
	l := Limits{
		Failure:            get(m.FailureLimit, 0, "failureLimit"),
		Inconclusive:       get(m.InconclusiveLimit, 0, "inconclusiveLimit"),
		ConsecutiveError:   get(m.ConsecutiveErrorLimit, 4, "consecutiveErrorLimit"),
		ConsecutiveSuccess: get(m.ConsecutiveSuccessLimit, 0, "consecutiveSuccessLimit"),
		Count:              get(m.Count, 0, "count"),
	}
	if l.Count == 0 && m.Interval == "" {
		l.Count = 1 // neither count nor interval: measure once
	}
	return l, errors.Join(errs...)
}

// Assess is a metric's phase from its counters, as Argo's assessMetricStatus
// has it: over a limit it fails, errs or is inconclusive; enough successes in
// a row, or every measurement taken, and it is done.
func Assess(r argo.MetricResult, l Limits) argo.AnalysisPhase {
	switch {
	case r.Count+r.Error == 0:
		return argo.AnalysisPhasePending
	case l.Failure >= 0 && r.Failed > l.Failure:
		return argo.AnalysisPhaseFailed
	case r.Inconclusive > l.Inconclusive:
		return argo.AnalysisPhaseInconclusive
	case r.ConsecutiveError > l.ConsecutiveError:
		return argo.AnalysisPhaseError
	case l.ConsecutiveSuccess > 0 && r.ConsecutiveSuccess >= l.ConsecutiveSuccess:
		return argo.AnalysisPhaseSuccessful
	case l.Count > 0 && r.Count >= l.Count:
		if l.ConsecutiveSuccess > 0 {
			return argo.AnalysisPhaseFailed // every measurement taken without the run of successes asked for
		}
		return argo.AnalysisPhaseSuccessful // failures and inconclusives, if any, were within their limits
	}
	return argo.AnalysisPhaseRunning
}

// severity orders phases from best to worst; a run takes its worst metric's.
var severity = map[argo.AnalysisPhase]int{
	argo.AnalysisPhaseSuccessful:   0,
	argo.AnalysisPhasePending:      1,
	argo.AnalysisPhaseRunning:      2,
	argo.AnalysisPhaseInconclusive: 3,
	argo.AnalysisPhaseError:        4,
	argo.AnalysisPhaseFailed:       5,
}

// RunPhase is a run's phase from its metrics' phases, dry-run metrics left
// out. A failed or erring metric ends the run at once; otherwise it runs
// until every metric is done, and takes the worst phase among them.
func RunPhase(phases map[string]argo.AnalysisPhase, dryRun map[string]bool) argo.AnalysisPhase {
	worst := argo.AnalysisPhaseSuccessful
	running := false
	for name, p := range phases {
		if dryRun[name] {
			continue
		}
		if !p.Completed() {
			running = true
			continue
		}
		if severity[p] > severity[worst] {
			worst = p
		}
	}
	if worst == argo.AnalysisPhaseFailed || worst == argo.AnalysisPhaseError {
		return worst
	}
	if running {
		return argo.AnalysisPhaseRunning
	}
	return worst
}
