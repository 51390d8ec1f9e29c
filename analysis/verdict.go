package analysis

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

// Sample is what a provider returned for one measurement: the values of a
// vector (one per series) or of a scalar, or the error that prevented it.
type Sample struct {
	Values []float64
	Scalar bool
	// Web says the sample is a web metric's answer: Answer, as
	// encoding/json decodes it (the part the metric's jsonPath picked), is
	// the result; nil is no data.
	Web    bool
	Answer any
	// Outcome, when set, is the verdict the provider found (a Job's
	// success or failure): no condition applies.
	Outcome *Outcome
	Err     error
	// Warnings are what the server warned of with its answer (a partial
	// response, say); they are shown with the measurement and change no
	// verdict.
	Warnings []string
}

// Judge is the phase of one measurement and why: Error when the sample
// could not be taken, the metric's no-data policy when it holds no data,
// else what the success and failure conditions say of it.
//
// What it returns is bounded, whatever the query returned, so that the
// verdict always fits in status: the value is a summary (the first values,
// how many, the least and the greatest), the message at most MaxMessage
// bytes.
func Judge(m v1alpha1.Metric, s Sample, args map[string]string) (phase argo.AnalysisPhase, value, message string) {
	phase, value, message = judge(m, s, args)
	if len(s.Warnings) > 0 {
		message += "; the server warned: " + strings.Join(s.Warnings, "; ")
	}
	return phase, value, Shorten(message, MaxMessage)
}

func judge(m v1alpha1.Metric, s Sample, args map[string]string) (argo.AnalysisPhase, string, string) {
	if s.Err != nil {
		return argo.AnalysisPhaseError, "", s.Err.Error()
	}
	if s.Outcome != nil {
		return s.Outcome.Phase, s.Outcome.Value, s.Outcome.Message
	}
	if s.Web {
		return judgeAnswer(m, s.Answer, args)
	}
	if why := noData(m, s); why != "" {
		phase := m.OnNoData
		if phase == "" {
			phase = argo.AnalysisPhaseInconclusive
		}
		return phase, "", why + "; onNoData is " + string(phase)
	}
	// A series whose value is NaN has no data: it is left out of what the
	// conditions see, and said so.
	values := slices.DeleteFunc(slices.Clone(s.Values), math.IsNaN)
	dropped := ""
	if n := len(s.Values) - len(values); n > 0 {
		dropped = fmt.Sprintf(" (%d of %d series were NaN, left out as no data)", n, len(s.Values))
	}
	var result any = values
	value := formatValues(values)
	if s.Scalar {
		result = values[0]
	}
	phase, err := conditionsPhase(m, result, args)
	if err != nil {
		return argo.AnalysisPhaseError, value, err.Error() + dropped
	}
	return phase, value, describe(m, phase) + dropped
}

// MaxMessage bounds a measurement's message.
const MaxMessage = 1024

// maxShownValues is how many values a measurement shows before it
// summarises the rest.
const maxShownValues = 10

// Shorten cuts s to at most n bytes, on a rune boundary, marking the cut.
func Shorten(s string, n int) string {
	const mark = "…"
	if len(s) <= n {
		return s
	}
	cut := n - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
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

// formatValues shows the values a query returned: all of them when there
// are few, else the first ones with how many there were and their range.
func formatValues(vs []float64) string {
	shown := vs[:min(len(vs), maxShownValues)]
	parts := make([]string, len(shown))
	for i, v := range shown {
		parts[i] = strconv.FormatFloat(v, 'g', 6, 64)
	}
	if len(vs) <= maxShownValues {
		return "[" + strings.Join(parts, ",") + "]"
	}
	lo, hi := slices.Min(vs), slices.Max(vs)
	return fmt.Sprintf("[%s,…] (%d values, min %s, max %s)", strings.Join(parts, ","), len(vs),
		strconv.FormatFloat(lo, 'g', 6, 64), strconv.FormatFloat(hi, 'g', 6, 64))
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
	// Extend is how many more measurements the metric takes beyond Count
	// while its latest is Inconclusive (ExtensionOf).
	Extend int32
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
	if l.Count > 0 {
		l.Extend = ExtensionOf(m, l.Count)
	}
	// As Argo has it: no negative limit, but failureLimit -1 (never fail on
	// failures) alongside consecutiveSuccessLimit. The schema says so of
	// numbers; this says it of values that come from arguments.
	for _, c := range []struct {
		field string
		v     int32
		ok    bool
	}{
		{"failureLimit", l.Failure, l.Failure >= 0 || (l.Failure == -1 && l.ConsecutiveSuccess > 0)},
		{"inconclusiveLimit", l.Inconclusive, l.Inconclusive >= 0},
		{"consecutiveErrorLimit", l.ConsecutiveError, l.ConsecutiveError >= 0},
		{"consecutiveSuccessLimit", l.ConsecutiveSuccess, l.ConsecutiveSuccess >= 0},
		{"count", l.Count, l.Count >= 0},
		{"extendWhileInconclusive", l.Extend, l.Extend >= 0},
	} {
		if !c.ok {
			msg := fmt.Errorf("%s: %d must not be negative", c.field, c.v)
			if c.field == "failureLimit" && c.v == -1 {
				msg = errors.New("failureLimit: -1 needs consecutiveSuccessLimit")
			}
			errs = append(errs, msg)
		}
	}
	return l, errors.Join(errs...)
}

// Assess is a metric's phase from its counters, as Argo's assessMetricStatus
// has it: over a limit it fails, errs or is inconclusive; enough successes in
// a row, or every measurement taken, and it is done. With an extension,
// inconclusive measurements count against no limit: at count, a latest
// measurement that is Inconclusive takes another, until the extension runs
// out and the metric is Inconclusive.
func Assess(r argo.MetricResult, l Limits) argo.AnalysisPhase {
	// The latest decision: an Error measurement decides nothing (errors
	// have their own limit), so one during the extension does not end it.
	latest := argo.AnalysisPhase("")
	for i := len(r.Measurements) - 1; i >= 0 && latest == ""; i-- {
		if p := r.Measurements[i].Phase; p != argo.AnalysisPhaseError {
			latest = p
		}
	}
	switch {
	case r.Count+r.Error == 0:
		return argo.AnalysisPhasePending
	case l.Failure >= 0 && r.Failed > l.Failure:
		return argo.AnalysisPhaseFailed
	case l.Extend == 0 && r.Inconclusive > l.Inconclusive:
		return argo.AnalysisPhaseInconclusive
	case l.Extend > 0 && l.Count > 0 && r.Count >= l.Count && latest == argo.AnalysisPhaseInconclusive:
		if r.Count < l.Count+l.Extend {
			return argo.AnalysisPhaseRunning
		}
		return argo.AnalysisPhaseInconclusive
	case r.ConsecutiveError > l.ConsecutiveError:
		return argo.AnalysisPhaseError
	case l.ConsecutiveSuccess > 0 && r.ConsecutiveSuccess >= l.ConsecutiveSuccess:
		return argo.AnalysisPhaseSuccessful
	case l.Count > 0 && r.Count >= l.Count:
		if l.ConsecutiveSuccess > 0 {
			return argo.AnalysisPhaseFailed // every measurement taken without the run of successes asked for
		}
		if r.Successful == 0 {
			// Failures and inconclusives within their limits, but not one
			// success: no evidence is no pass (Argo would call it Successful).
			return argo.AnalysisPhaseInconclusive
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

// Outcome is a measurement decided by its provider.
type Outcome struct {
	Phase          argo.AnalysisPhase
	Value, Message string
}

// maxShownAnswer bounds the part of a web answer a measurement shows.
const maxShownAnswer = 256

// judgeAnswer judges a web metric's answer.
func judgeAnswer(m v1alpha1.Metric, answer any, args map[string]string) (argo.AnalysisPhase, string, string) {
	if answer == nil {
		phase := m.OnNoData
		if phase == "" {
			phase = argo.AnalysisPhaseInconclusive
		}
		return phase, "", "the answer holds no value there; onNoData is " + string(phase)
	}
	var shown strings.Builder
	enc := json.NewEncoder(&shown)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(answer); err != nil {
		return argo.AnalysisPhaseError, "", "the answer: " + err.Error()
	}
	value := Shorten(strings.TrimSpace(shown.String()), maxShownAnswer)
	phase, err := conditionsPhase(m, answer, args)
	if err != nil {
		return argo.AnalysisPhaseError, value, err.Error()
	}
	return phase, value, describe(m, phase)
}
