package analysis

import (
	"fmt"
	"time"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

// MaxReplayed bounds the measurements one metric's replay takes, so that a
// short interval over a long stretch cannot flood Prometheus.
const MaxReplayed = 1000

// Replayed is one measurement of a replay and where it left the metric.
type Replayed struct {
	At      time.Time          `json:"at"`
	Value   string             `json:"value"`
	Phase   argo.AnalysisPhase `json:"phase"`
	Message string             `json:"message"`
	// Metric is the metric's phase after this measurement.
	Metric argo.AnalysisPhase `json:"metric"`
}

// MetricReplay is a metric's replay: its measurements and its phase.
type MetricReplay struct {
	Metric       string             `json:"metric"`
	DryRun       bool               `json:"dryRun,omitempty"`
	Phase        argo.AnalysisPhase `json:"phase"`
	Measurements []Replayed         `json:"measurements"`
}

// Replay measures each metric of spec as an AnalysisRun started at start
// would have: after its initialDelay, then every interval, until its
// counters decide, count measurements are taken, or end comes. measure
// takes one measurement of a metric as of a moment (against data from then).
// A metric that fails or errs ends the run, as it would have: the other
// metrics keep only what they measured until then. The run's phase is
// Running when end came before a verdict.
func Replay(spec v1alpha1.AnalysisRunSpec, args map[string]string, start, end time.Time,
	measure func(m v1alpha1.Metric, at time.Time) Sample) (argo.AnalysisPhase, []MetricReplay, error) {
	dry := DryRunMetrics(spec)
	out := make([]MetricReplay, 0, len(spec.Metrics))
	for _, m := range spec.Metrics {
		r, err := replayMetric(m, args, start, end, measure)
		if err != nil {
			return "", nil, err
		}
		r.DryRun = dry[m.Name]
		out = append(out, r)
	}
	// The run ends at the first failure or error of a metric that decides.
	var stop time.Time
	for _, r := range out {
		if r.DryRun || (r.Phase != argo.AnalysisPhaseFailed && r.Phase != argo.AnalysisPhaseError) {
			continue
		}
		if at := r.Measurements[len(r.Measurements)-1].At; stop.IsZero() || at.Before(stop) {
			stop = at
		}
	}
	phases := map[string]argo.AnalysisPhase{}
	for i := range out {
		if !stop.IsZero() {
			out[i].cutAfter(stop)
		}
		phases[out[i].Metric] = out[i].Phase
	}
	return RunPhase(phases, dry), out, nil
}

// cutAfter drops what was measured after t: the run had ended.
func (r *MetricReplay) cutAfter(t time.Time) {
	n := len(r.Measurements)
	for n > 0 && r.Measurements[n-1].At.After(t) {
		n--
	}
	r.Measurements = r.Measurements[:n]
	r.Phase = argo.AnalysisPhasePending
	if n > 0 {
		r.Phase = r.Measurements[n-1].Metric
	}
}

func replayMetric(m v1alpha1.Metric, args map[string]string, start, end time.Time,
	measure func(v1alpha1.Metric, time.Time) Sample) (MetricReplay, error) {
	r := MetricReplay{Metric: m.Name, Phase: argo.AnalysisPhasePending}
	limits, err := LimitsOf(m, args)
	if err != nil {
		return r, fmt.Errorf("metric %s: %w", m.Name, err)
	}
	delay, err := durationOf(m.InitialDelay)
	if err != nil {
		return r, fmt.Errorf("metric %s: initialDelay: %w", m.Name, err)
	}
	interval, err := durationOf(m.Interval)
	if err != nil {
		return r, fmt.Errorf("metric %s: interval: %w", m.Name, err)
	}
	if interval <= 0 && limits.Count != 1 {
		return r, fmt.Errorf("metric %s: measures more than once, so it needs an interval", m.Name)
	}
	if n := int(end.Sub(start.Add(delay))/max(interval, time.Nanosecond)) + 1; limits.Count == 0 && n > MaxReplayed {
		return r, fmt.Errorf("metric %s: replaying it every %s would take %d measurements, more than %d; replay a shorter stretch", m.Name, interval, n, MaxReplayed)
	}
	var counters argo.MetricResult
	for at := start.Add(delay); !at.After(end) && len(r.Measurements) < MaxReplayed; at = at.Add(interval) {
		phase, value, msg := Judge(m, measure(m, at), args)
		Record(&counters, phase)
		r.Phase = Assess(counters, limits)
		r.Measurements = append(r.Measurements, Replayed{At: at, Value: value, Phase: phase, Message: msg, Metric: r.Phase})
		if r.Phase.Completed() || interval <= 0 {
			break
		}
	}
	return r, nil
}

func durationOf(d argo.DurationString) (time.Duration, error) {
	if d == "" {
		return 0, nil
	}
	return d.Duration()
}
