package analysis

import (
	"fmt"
	"time"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

// MaxReplayed bounds the measurements one metric's replay may take, so that
// a short interval over a long stretch cannot flood Prometheus. A replay
// that could need more is refused before it starts.
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

// Replay measures spec as an AnalysisRun started at start would have: it
// runs the same Pass as the AnalysisRun reconciler, at each moment a
// measurement is due, until the run reaches a verdict or end comes. measure
// takes one measurement of a metric as of a moment (against data from
// then). The run's phase is Running when end came before a verdict.
func Replay(spec v1alpha1.AnalysisRunSpec, args map[string]string, start, end time.Time,
	measure func(m v1alpha1.Metric, at time.Time) Sample) (argo.AnalysisPhase, []MetricReplay, error) {
	dry := DryRunMetrics(spec)
	out := make([]MetricReplay, len(spec.Metrics))
	index := map[string]int{}
	for i, m := range spec.Metrics {
		out[i] = MetricReplay{Metric: m.Name, DryRun: dry[m.Name], Phase: argo.AnalysisPhasePending, Measurements: []Replayed{}}
		index[m.Name] = i
		if err := replayable(m, args, start, end); err != nil {
			return "", nil, err
		}
	}
	var tooMany error
	pass := Pass{
		Spec: spec,
		Args: Args{Values: args},
		Keep: func(string) int { return MaxReplayed },
		Measure: func(m *v1alpha1.Metric, at time.Time) Taken {
			return Taken{Sample: measure(*m, at)}
		},
		Measured: func(m *v1alpha1.Metric, meas argo.Measurement, res *argo.MetricResult) {
			r := &out[index[m.Name]]
			r.Measurements = append(r.Measurements, Replayed{At: meas.StartedAt.Time, Value: meas.Value, Phase: meas.Phase, Message: meas.Message, Metric: res.Phase})
			if len(r.Measurements) > MaxReplayed && tooMany == nil {
				tooMany = fmt.Errorf("metric %s: more than %d measurements; replay a shorter stretch", m.Name, MaxReplayed)
			}
		},
	}
	status := v1alpha1.AnalysisRunStatus{StartedAt: &metav1.Time{Time: start}, Phase: argo.AnalysisPhaseRunning}
	for at := start; ; {
		wake := pass.Step(&status, at)
		if tooMany != nil {
			return "", nil, tooMany
		}
		if status.Phase.Completed() || wake.IsZero() || wake.After(end) {
			break
		}
		at = wake
	}
	for _, res := range status.MetricResults {
		out[index[res.Name]].Phase = res.Phase
	}
	return status.Phase, out, nil
}

// replayable refuses a metric that could take more than MaxReplayed
// measurements over the stretch.
func replayable(m v1alpha1.Metric, args map[string]string, start, end time.Time) error {
	limits, err := LimitsOf(m, args)
	if err != nil {
		return fmt.Errorf("metric %s: %w", m.Name, err)
	}
	first, err := NextDue(m, start, nil)
	if err != nil {
		return fmt.Errorf("metric %s: initialDelay: %w", m.Name, err)
	}
	interval, err := durationOf(m.Interval)
	if err != nil {
		return fmt.Errorf("metric %s: interval: %w", m.Name, err)
	}
	if interval <= 0 && limits.Count > 1 {
		return fmt.Errorf("metric %s: measures %d times, so it needs an interval", m.Name, limits.Count)
	}
	// A metric without a count measures every interval of the stretch; one
	// with a count, about count times and its extension (errors come on
	// top, and are bounded as the replay goes).
	most := int64(limits.Count) + int64(limits.Extend)
	if limits.Count <= 0 && interval > 0 {
		most = int64(end.Sub(first)/interval) + 1
	}
	if most > MaxReplayed {
		return fmt.Errorf("metric %s: replaying it would take %d measurements, more than %d; replay a shorter stretch", m.Name, most, MaxReplayed)
	}
	return nil
}

// NextDue is when a metric measures next in a run started at started: its
// initialDelay after the start, then an interval after its last measurement
// (at once again, for a metric without an interval).
func NextDue(m v1alpha1.Metric, started time.Time, last *time.Time) (time.Time, error) {
	if last == nil {
		delay, err := durationOf(m.InitialDelay)
		return started.Add(delay), err
	}
	interval, err := durationOf(m.Interval)
	return last.Add(interval), err
}

func durationOf(d argo.DurationString) (time.Duration, error) {
	if d == "" {
		return 0, nil
	}
	return d.Duration()
}
