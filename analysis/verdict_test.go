package analysis

import (
	"errors"
	"math"
	"strings"
	"testing"
	"unicode/utf8"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

func TestJudge(t *testing.T) {
	success := v1alpha1.Metric{SuccessCondition: "result[0] >= 0.99"}
	both := v1alpha1.Metric{SuccessCondition: "result[0] >= 0.99", FailureCondition: "result[0] < 0.95"}
	failOnly := v1alpha1.Metric{FailureCondition: "result[0] > 500"}
	for _, tt := range []struct {
		name    string
		m       v1alpha1.Metric
		s       Sample
		want    argo.AnalysisPhase
		message string
	}{
		{"success condition met", success, Sample{Values: []float64{0.995}}, argo.AnalysisPhaseSuccessful, "met result[0] >= 0.99"},
		{"success condition not met fails", success, Sample{Values: []float64{0.9}}, argo.AnalysisPhaseFailed, "did not meet result[0] >= 0.99"},
		{"both conditions, neither met", both, Sample{Values: []float64{0.97}}, argo.AnalysisPhaseInconclusive, "met neither"},
		{"both conditions, failure met", both, Sample{Values: []float64{0.5}}, argo.AnalysisPhaseFailed, "met failure condition"},
		{"failure condition alone, not met, succeeds", failOnly, Sample{Values: []float64{120}}, argo.AnalysisPhaseSuccessful, ""},
		{"no conditions succeeds", v1alpha1.Metric{}, Sample{Values: []float64{1}}, argo.AnalysisPhaseSuccessful, ""},
		{"a scalar result", v1alpha1.Metric{SuccessCondition: "result > 1"}, Sample{Values: []float64{2}, Scalar: true}, argo.AnalysisPhaseSuccessful, ""},
		{"every series checked", v1alpha1.Metric{SuccessCondition: "all(result, {# < 1})"}, Sample{Values: []float64{0.5, 2}}, argo.AnalysisPhaseFailed, ""},
		{"empty vector: inconclusive by default", success, Sample{}, argo.AnalysisPhaseInconclusive, "the query returned no data; onNoData is Inconclusive"},
		{"NaN: the no-data policy", v1alpha1.Metric{SuccessCondition: "result[0] > 0", OnNoData: argo.AnalysisPhaseFailed}, Sample{Values: []float64{math.NaN()}}, argo.AnalysisPhaseFailed, "only NaN"},
		{"fewer than minSamples is no data", v1alpha1.Metric{MinSamples: ptr.To[int32](3), OnNoData: argo.AnalysisPhaseError}, Sample{Values: []float64{1, 2}}, argo.AnalysisPhaseError, "fewer than minSamples 3"},
		{"the server's warnings are shown and change nothing", success, Sample{Values: []float64{0.995}, Warnings: []string{"PromQL warning: partial response"}},
			argo.AnalysisPhaseSuccessful, "met result[0] >= 0.99; the server warned: PromQL warning: partial response"},
		{"provider error", success, Sample{Err: errors.New("connection refused")}, argo.AnalysisPhaseError, "connection refused"},
		{"a condition that does not compile is an error", v1alpha1.Metric{SuccessCondition: "result[0] >>> 1"}, Sample{Values: []float64{1}}, argo.AnalysisPhaseError, "condition"},
		{"a NaN series among others is no data for that series", v1alpha1.Metric{SuccessCondition: "all(result, {# >= 0.99})"},
			Sample{Values: []float64{0.995, math.NaN(), 0.999}}, argo.AnalysisPhaseSuccessful, "1 of 3 series were NaN, left out as no data"},
		{"a NaN first series does not fail result[0]", success, Sample{Values: []float64{math.NaN(), 0.995}}, argo.AnalysisPhaseSuccessful, "NaN"},
		{"helpers", v1alpha1.Metric{SuccessCondition: `!isNaN(result[0]) && !isInf(result[0]) && result[0] <= asFloat(args["max"]) && asInt("3") == 3 && default(nil, 1) == 1 && !isNil(result)`},
			Sample{Values: []float64{400}}, argo.AnalysisPhaseSuccessful, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, _, msg := Judge(tt.m, tt.s, map[string]string{"max": "500"})
			if got != tt.want || !strings.Contains(msg, tt.message) {
				t.Errorf("Judge() = %s, %q; want %s, containing %q", got, msg, tt.want, tt.message)
			}
		})
	}
}

func TestAssess(t *testing.T) {
	res := func(phases ...argo.AnalysisPhase) argo.MetricResult {
		var r argo.MetricResult
		for _, p := range phases {
			r.Measurements = append(r.Measurements, argo.Measurement{Phase: p})
			Record(&r, p)
		}
		return r
	}
	const (
		S = argo.AnalysisPhaseSuccessful
		F = argo.AnalysisPhaseFailed
		I = argo.AnalysisPhaseInconclusive
		E = argo.AnalysisPhaseError
	)
	for _, tt := range []struct {
		name string
		r    argo.MetricResult
		l    Limits
		want argo.AnalysisPhase
	}{
		{"nothing measured", res(), Limits{Count: 3, ConsecutiveError: 4}, argo.AnalysisPhasePending},
		{"measuring", res(S), Limits{Count: 3, ConsecutiveError: 4}, argo.AnalysisPhaseRunning},
		{"count reached", res(S, S, S), Limits{Count: 3, ConsecutiveError: 4}, S},
		{"a failure over failureLimit 0", res(S, F), Limits{Count: 3, ConsecutiveError: 4}, F},
		{"a failure within failureLimit 1", res(S, F, S), Limits{Count: 3, Failure: 1, ConsecutiveError: 4}, S},
		{"failureLimit -1 disables failure", res(F, S, F), Limits{Count: 3, Failure: -1, ConsecutiveError: 4}, S},
		{"failures within their limit and not one success: no evidence", res(F, F, F), Limits{Count: 3, Failure: -1, ConsecutiveError: 4}, I},
		{"inconclusives within their limit and not one success: no evidence", res(I, I, I), Limits{Count: 3, Inconclusive: 5, ConsecutiveError: 4}, I},
		{"inconclusive over its limit", res(I), Limits{Count: 3, ConsecutiveError: 4}, I},
		{"errors up to the limit keep measuring", res(E, E, E, E), Limits{Count: 3, ConsecutiveError: 4}, argo.AnalysisPhaseRunning},
		{"errors past consecutiveErrorLimit", res(E, E, E, E, E), Limits{Count: 3, ConsecutiveError: 4}, E},
		{"a success resets the error run", res(E, E, E, S, E, E), Limits{Count: 3, ConsecutiveError: 4}, argo.AnalysisPhaseRunning},
		{"consecutive successes end early", res(F, S, S), Limits{Count: 10, Failure: 1, ConsecutiveSuccess: 2, ConsecutiveError: 4}, S},
		{"count reached without the successes in a row", res(S, F, S), Limits{Count: 3, Failure: 1, ConsecutiveSuccess: 2, ConsecutiveError: 4}, F},
		{"no count: runs until the run ends", res(S, S, S, S), Limits{ConsecutiveError: 4}, argo.AnalysisPhaseRunning},
		{"extension: inconclusive at count measures again", res(I, I, I), Limits{Count: 3, Extend: 2, ConsecutiveError: 4}, argo.AnalysisPhaseRunning},
		{"extension: inconclusives count against no limit", res(I, I, I, I), Limits{Count: 3, Extend: 2, ConsecutiveError: 4}, argo.AnalysisPhaseRunning},
		{"extension: a decision within it ends the metric", res(I, I, I, S), Limits{Count: 3, Extend: 2, ConsecutiveError: 4}, S},
		{"extension: a failure within it fails", res(I, I, I, F), Limits{Count: 3, Extend: 2, ConsecutiveError: 4}, F},
		{"extension used up: inconclusive", res(I, I, I, I, I), Limits{Count: 3, Extend: 2, ConsecutiveError: 4}, I},
		{"extension: decided at count, not extended", res(I, I, S), Limits{Count: 3, Extend: 2, ConsecutiveError: 4}, S},
		{"extension: an error in it decides nothing", res(S, S, I, E), Limits{Count: 3, Extend: 2, ConsecutiveError: 4}, argo.AnalysisPhaseRunning},
		{"extension: an error in it keeps measuring without a success", res(I, I, I, E), Limits{Count: 3, Extend: 2, ConsecutiveError: 4}, argo.AnalysisPhaseRunning},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := Assess(tt.r, tt.l); got != tt.want {
				t.Errorf("Assess(%+v) = %s, want %s", tt.r, got, tt.want)
			}
		})
	}
}

func TestLimitsOf(t *testing.T) {
	m := v1alpha1.Metric{Interval: "30s", FailureLimit: ptr.To(intstr.FromString("{{args.failures}}")), Count: ptr.To(intstr.FromInt32(5))}
	l, err := LimitsOf(m, map[string]string{"failures": "2"})
	if err != nil || l != (Limits{Failure: 2, ConsecutiveError: 4, Count: 5}) {
		t.Errorf("LimitsOf = %+v, %v", l, err)
	}
	if l, _ := LimitsOf(v1alpha1.Metric{}, nil); l.Count != 1 {
		t.Errorf("no count and no interval: want one measurement, got %d", l.Count)
	}
	if _, err := LimitsOf(v1alpha1.Metric{FailureLimit: ptr.To(intstr.FromString("lots"))}, nil); err == nil {
		t.Error("want an error for a limit that is not a number")
	}
}

func TestRunPhase(t *testing.T) {
	for _, tt := range []struct {
		name   string
		phases map[string]argo.AnalysisPhase
		dry    map[string]bool
		want   argo.AnalysisPhase
	}{
		{"all successful", map[string]argo.AnalysisPhase{"a": "Successful", "b": "Successful"}, nil, "Successful"},
		{"one still running", map[string]argo.AnalysisPhase{"a": "Successful", "b": "Running"}, nil, "Running"},
		{"a failure ends the run early", map[string]argo.AnalysisPhase{"a": "Failed", "b": "Running"}, nil, "Failed"},
		{"an error ends the run early", map[string]argo.AnalysisPhase{"a": "Error", "b": "Running"}, nil, "Error"},
		{"failed is worse than error", map[string]argo.AnalysisPhase{"a": "Error", "b": "Failed"}, nil, "Failed"},
		{"inconclusive waits for the others", map[string]argo.AnalysisPhase{"a": "Inconclusive", "b": "Running"}, nil, "Running"},
		{"inconclusive when done", map[string]argo.AnalysisPhase{"a": "Inconclusive", "b": "Successful"}, nil, "Inconclusive"},
		{"dry-run metrics never decide", map[string]argo.AnalysisPhase{"a": "Failed", "b": "Successful"}, map[string]bool{"a": true}, "Successful"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := RunPhase(tt.phases, tt.dry); got != tt.want {
				t.Errorf("RunPhase = %s, want %s", got, tt.want)
			}
		})
	}
}

// Whatever a query returns, what a measurement stores is bounded: a summary
// of the values and a short message, so the verdict always fits in status.
func TestJudgeIsBounded(t *testing.T) {
	many := make([]float64, 5000)
	for i := range many {
		many[i] = 0.5 + float64(i)/10000
	}
	for _, tt := range []struct {
		name      string
		s         Sample
		wantValue string
	}{
		{"5000 series", Sample{Values: many}, "[0.5,0.5001,0.5002,0.5003,0.5004,0.5005,0.5006,0.5007,0.5008,0.5009,…] (5000 values, min 0.5, max 0.9999)"},
		{"an error as long as a page", Sample{Err: errors.New(strings.Repeat("é", 100000))}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, value, msg := Judge(v1alpha1.Metric{SuccessCondition: "all(result, {# >= 0.99})"}, tt.s, nil)
			if value != tt.wantValue {
				t.Errorf("value %q, want %q", value, tt.wantValue)
			}
			if len(msg) > MaxMessage || !utf8.ValidString(msg) {
				t.Errorf("message of %d bytes (valid UTF-8: %v), want at most %d", len(msg), utf8.ValidString(msg), MaxMessage)
			}
		})
	}
}

// Negative limits are refused, also when they come from arguments, as Argo
// refuses them: failureLimit -1 only with consecutiveSuccessLimit.
func TestLimitsRefuseNegatives(t *testing.T) {
	arg := func(name string) *intstr.IntOrString { v := intstr.FromString("{{args." + name + "}}"); return &v }
	for _, tt := range []struct {
		name string
		m    v1alpha1.Metric
		args map[string]string
		want string // "" for accepted
	}{
		{"failureLimit -1", v1alpha1.Metric{Interval: "1s", FailureLimit: ptr.To(intstr.FromInt32(-1))}, nil, "failureLimit: -1 needs consecutiveSuccessLimit"},
		{"failureLimit -1 with consecutiveSuccessLimit", v1alpha1.Metric{Interval: "1s", FailureLimit: ptr.To(intstr.FromInt32(-1)), ConsecutiveSuccessLimit: ptr.To(intstr.FromInt32(3))}, nil, ""},
		{"failureLimit -2", v1alpha1.Metric{Interval: "1s", FailureLimit: ptr.To(intstr.FromInt32(-2))}, nil, "failureLimit: -2 must not be negative"},
		{"inconclusiveLimit -1", v1alpha1.Metric{Interval: "1s", InconclusiveLimit: ptr.To(intstr.FromInt32(-1))}, nil, "inconclusiveLimit: -1 must not be negative"},
		{"consecutiveErrorLimit -1", v1alpha1.Metric{Interval: "1s", ConsecutiveErrorLimit: ptr.To(intstr.FromInt32(-1))}, nil, "consecutiveErrorLimit: -1 must not be negative"},
		{"count -3", v1alpha1.Metric{Interval: "1s", Count: ptr.To(intstr.FromInt32(-3))}, nil, "count: -3 must not be negative"},
		{"a negative limit from an argument", v1alpha1.Metric{Interval: "1s", InconclusiveLimit: arg("i")}, map[string]string{"i": "-1"}, "inconclusiveLimit"},
		{"a limit from an argument", v1alpha1.Metric{Interval: "1s", InconclusiveLimit: arg("i")}, map[string]string{"i": "2"}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LimitsOf(tt.m, tt.args)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("LimitsOf() = %v, want no error", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("LimitsOf() = %v, want %q", err, tt.want)
			}
		})
	}
}
