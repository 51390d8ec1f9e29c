package analysis

import (
	"cmp"
	"errors"
	"fmt"
	"time"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

// ErrDeferred is a measurement that is not back yet (it is under way, or its
// server is busy with as many of this controller's queries as it may have):
// it counts as nothing, and is looked for again shortly.
var ErrDeferred = errors.New("not measured yet: under way, or the server has as many of this controller's queries as it may; trying again shortly")

// deferredFor is how long a deferred measurement waits before it is tried again.
const deferredFor = time.Second

// DefaultRetention is how many measurements of a metric a run's status
// keeps unless measurementRetention says otherwise.
const DefaultRetention = 10

// Taken is one measurement as the caller took it, for Pass to judge and
// count.
type Taken struct {
	// Sample is what the provider returned; an error in it is an error
	// measurement, counted against consecutiveErrorLimit.
	Sample Sample
	// Query is the query as status shows it (Secret values masked).
	Query string
	// Invalid is the template's fault, found before anything was sent (an
	// argument that would change the query, say): nothing is measured, and
	// the metric errs.
	Invalid error
	// StartedAt is when the measurement was started, when that was before
	// it was counted (it ran off the reconcile path); zero means at once.
	StartedAt time.Time
	// FinishedAt is when the sample came back; zero means when it was due.
	FinishedAt time.Time
	// RetryAfter, for a deferred sample, is when to look again if nothing
	// wakes the run first (a Job's end does); deferredFor when zero.
	RetryAfter time.Duration
}

// Pass is one AnalysisRun's analysis, as Argo runs it. It is pure: Measure
// does the I/O. The AnalysisRun reconciler and Replay both run it, so that a
// replay judges as a live run does.
type Pass struct {
	Spec v1alpha1.AnalysisRunSpec
	// Args are the run's resolved arguments; those from Secrets reach the
	// query only.
	Args Args
	// Keep is how many measurements of a metric status keeps; nil means the
	// spec's measurementRetention, DefaultRetention by default.
	Keep func(metric string) int
	// Measure takes a metric's measurement that is due at at.
	Measure func(m *v1alpha1.Metric, at time.Time) Taken
	// Measured, when set, hears of each measurement counted, with the
	// metric's result after it.
	Measured func(m *v1alpha1.Metric, meas argo.Measurement, res *argo.MetricResult)
}

// Step takes, through Measure, every measurement that is due at now, counts
// it against its metric's limits, and sets the run's phase: the worst of its
// metrics (dry-run ones aside), ending at the first failure or error; a
// terminated run is decided by what it measured. It returns when the next
// measurement is due, zero when none is.
func (p Pass) Step(s *v1alpha1.AnalysisRunStatus, now time.Time) time.Time {
	if s.StartedAt == nil {
		s.StartedAt = &metav1.Time{Time: now}
		s.Phase = argo.AnalysisPhaseRunning
	}
	dry := DryRunMetrics(p.Spec)
	phases := map[string]argo.AnalysisPhase{}
	var wake time.Time
	for i := range p.Spec.Metrics {
		m := &p.Spec.Metrics[i]
		res := Result(s, m.Name, dry[m.Name])
		if !res.Phase.Completed() && !p.Spec.Terminate {
			if next := p.measureIfDue(m, res, s.StartedAt.Time, now); !next.IsZero() && (wake.IsZero() || next.Before(wake)) {
				wake = next
			}
		}
		phases[m.Name] = res.Phase
	}
	phase := RunPhase(phases, dry)
	if p.Spec.Terminate && !phase.Completed() {
		// Stopped early: what was measured so far decides, as in Argo.
		phase = argo.AnalysisPhaseSuccessful
		for name, ph := range phases {
			if !dry[name] && ph.Completed() && ph != argo.AnalysisPhaseSuccessful {
				phase = RunPhase(map[string]argo.AnalysisPhase{name: ph}, nil)
			}
		}
		s.Message = "terminated"
	}
	s.Phase = phase
	s.RunSummary, s.DryRunSummary = summaries(s.MetricResults)
	if phase.Completed() {
		s.CompletedAt = &metav1.Time{Time: now}
		if s.Message == "" {
			s.Message = verdictMessage(s.MetricResults, phase)
		}
		return time.Time{}
	}
	return wake
}

// measureIfDue takes a metric's measurement when it is due and returns when
// the next one is.
func (p Pass) measureIfDue(m *v1alpha1.Metric, res *argo.MetricResult, started, now time.Time) time.Time {
	due, err := nextDue(m, res, started)
	if err != nil {
		res.Phase, res.Message = argo.AnalysisPhaseError, err.Error()
		return time.Time{}
	}
	if now.Before(due) {
		return due
	}
	// Limits and conditions see only the arguments that are not Secrets'.
	plain := p.Args.Plain()
	limits, err := Limits{}, p.Args.CheckLimits(*m)
	if err == nil {
		limits, err = LimitsOf(*m, plain)
	}
	var taken Taken
	if err == nil {
		taken = p.Measure(m, now)
		err = taken.Invalid
	}
	if err == nil && errors.Is(taken.Sample.Err, ErrDeferred) {
		return now.Add(cmp.Or(taken.RetryAfter, deferredFor))
	}
	if err != nil {
		// The template's fault: no query is sent, the metric errs.
		res.Phase, res.Message = argo.AnalysisPhaseError, err.Error()
		return time.Time{}
	}
	phase, value, msg := Judge(*m, taken.Sample, plain)
	started, finished := taken.StartedAt, taken.FinishedAt
	if started.IsZero() {
		started = now
	}
	if finished.IsZero() {
		finished = now
	}
	meas := argo.Measurement{Phase: phase, Value: value, Message: msg, StartedAt: &metav1.Time{Time: started}, FinishedAt: &metav1.Time{Time: finished}}
	res.Measurements = append(res.Measurements, meas)
	if keep := p.keep(m.Name); len(res.Measurements) > keep {
		res.Measurements = res.Measurements[len(res.Measurements)-keep:]
	}
	Record(res, phase)
	res.Phase = Assess(*res, limits)
	res.Message = msg
	if res.Metadata == nil {
		res.Metadata = map[string]string{}
	}
	switch {
	case m.Provider.Web != nil:
		res.Metadata[MetadataWebRequest] = taken.Query // the method and URL: no Secret values
	case m.Provider.Prometheus != nil:
		res.Metadata[MetadataPrometheusQuery] = taken.Query // Secret values masked
	case m.Provider.Judge != nil:
		res.Metadata[MetadataJudgeQueries] = taken.Query // Secret values masked
	case m.Provider.BurnRate != nil:
		res.Metadata[MetadataBurnRateQueries] = taken.Query // Secret values masked
	}
	if p.Measured != nil {
		p.Measured(m, meas, res)
	}
	if res.Phase.Completed() {
		return time.Time{}
	}
	next, _ := nextDue(m, res, started)
	return next
}

// The metadata a metric's result records of what was asked.
const (
	MetadataPrometheusQuery = "ResolvedPrometheusQuery"
	MetadataWebRequest      = "ResolvedWebRequest"
	MetadataJudgeQueries    = "ResolvedJudgeQueries"
	MetadataBurnRateQueries = "ResolvedBurnRateQueries"
)

func (p Pass) keep(metric string) int {
	if p.Keep != nil {
		return p.Keep(metric)
	}
	for _, r := range p.Spec.MeasurementRetention {
		if (r.MetricName == metric || r.MetricName == "*") && r.Limit > 0 {
			return int(r.Limit)
		}
	}
	return DefaultRetention
}

// nextDue is when a metric's next measurement is due (NextDue), from its
// result so far.
func nextDue(m *v1alpha1.Metric, res *argo.MetricResult, started time.Time) (time.Time, error) {
	if len(res.Measurements) == 0 {
		return NextDue(*m, started, nil)
	}
	return NextDue(*m, started, &res.Measurements[len(res.Measurements)-1].StartedAt.Time)
}

// Result returns the metric's result in status, adding it when missing.
func Result(s *v1alpha1.AnalysisRunStatus, name string, dry bool) *argo.MetricResult {
	for i := range s.MetricResults {
		if s.MetricResults[i].Name == name {
			return &s.MetricResults[i]
		}
	}
	s.MetricResults = append(s.MetricResults, argo.MetricResult{Name: name, Phase: argo.AnalysisPhasePending, DryRun: dry})
	return &s.MetricResults[len(s.MetricResults)-1]
}

func summaries(results []argo.MetricResult) (argo.RunSummary, *argo.RunSummary) {
	var run, dry argo.RunSummary
	for _, r := range results {
		sum := &run
		if r.DryRun {
			sum = &dry
		}
		sum.Count++
		switch r.Phase {
		case argo.AnalysisPhaseSuccessful:
			sum.Successful++
		case argo.AnalysisPhaseFailed:
			sum.Failed++
		case argo.AnalysisPhaseInconclusive:
			sum.Inconclusive++
		case argo.AnalysisPhaseError:
			sum.Error++
		}
	}
	if dry.Count == 0 {
		return run, nil
	}
	return run, &dry
}

// verdictMessage explains a finished run by its deciding metric.
func verdictMessage(results []argo.MetricResult, phase argo.AnalysisPhase) string {
	for _, r := range results {
		if !r.DryRun && r.Phase == phase && phase != argo.AnalysisPhaseSuccessful {
			last := ""
			if n := len(r.Measurements); n > 0 {
				last = " (last value " + r.Measurements[n-1].Value + ")"
			}
			return fmt.Sprintf("metric %s %s%s: %s", r.Name, phase, last, r.Message)
		}
	}
	return "all metrics " + string(phase)
}
