package analysis

import (
	"fmt"
	"time"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"

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

// replaying is a metric under replay: when it measures next, and its
// counters so far.
type replaying struct {
	m        v1alpha1.Metric
	limits   Limits
	interval time.Duration
	next     time.Time
	counters argo.MetricResult
	out      *MetricReplay
}

// Replay measures spec as an AnalysisRun started at start would have: each
// metric after its initialDelay, then every interval, until its counters
// decide or end comes, in time order. measure takes one measurement of a
// metric as of a moment (against data from then). As in a live run, a
// metric that fails or errs ends the run (metrics due at that same moment
// are measured too), and a metric measured once is measured again while it
// errs. The run's phase is Running when end came before a verdict.
func Replay(spec v1alpha1.AnalysisRunSpec, args map[string]string, start, end time.Time,
	measure func(m v1alpha1.Metric, at time.Time) Sample) (argo.AnalysisPhase, []MetricReplay, error) {
	dry := DryRunMetrics(spec)
	out := make([]MetricReplay, len(spec.Metrics))
	metrics := make([]*replaying, len(spec.Metrics))
	for i, m := range spec.Metrics {
		out[i] = MetricReplay{Metric: m.Name, DryRun: dry[m.Name], Phase: argo.AnalysisPhasePending, Measurements: []Replayed{}}
		r, err := scheduled(m, args, start, end)
		if err != nil {
			return "", nil, err
		}
		r.out = &out[i]
		metrics[i] = r
	}
	for ended := false; !ended; {
		// The next moment any metric is due; every metric due then measures.
		var at time.Time
		for _, r := range metrics {
			if !r.out.Phase.Completed() && !r.next.After(end) && (at.IsZero() || r.next.Before(at)) {
				at = r.next
			}
		}
		if at.IsZero() {
			break
		}
		for _, r := range metrics {
			if r.out.Phase.Completed() || !r.next.Equal(at) {
				continue
			}
			if len(r.out.Measurements) == MaxReplayed {
				return "", nil, fmt.Errorf("metric %s: more than %d measurements; replay a shorter stretch", r.m.Name, MaxReplayed)
			}
			phase, value, msg := Judge(r.m, measure(r.m, at), args)
			Record(&r.counters, phase)
			r.out.Phase = Assess(r.counters, r.limits)
			r.out.Measurements = append(r.out.Measurements, Replayed{At: at, Value: value, Phase: phase, Message: msg, Metric: r.out.Phase})
			if r.interval > 0 || phase == argo.AnalysisPhaseError {
				r.next, _ = NextDue(r.m, start, &at) // parsed by scheduled
			} else {
				r.next = end.Add(time.Nanosecond) // measured once: done
			}
			if !r.out.DryRun && (r.out.Phase == argo.AnalysisPhaseFailed || r.out.Phase == argo.AnalysisPhaseError) {
				ended = true
			}
		}
	}
	phases := map[string]argo.AnalysisPhase{}
	for _, m := range out {
		phases[m.Metric] = m.Phase
	}
	return RunPhase(phases, dry), out, nil
}

// scheduled readies a metric for replay, refusing one that could take more
// than MaxReplayed measurements over the stretch.
func scheduled(m v1alpha1.Metric, args map[string]string, start, end time.Time) (*replaying, error) {
	limits, err := LimitsOf(m, args)
	if err != nil {
		return nil, fmt.Errorf("metric %s: %w", m.Name, err)
	}
	first, err := NextDue(m, start, nil)
	if err != nil {
		return nil, fmt.Errorf("metric %s: initialDelay: %w", m.Name, err)
	}
	interval, err := durationOf(m.Interval)
	if err != nil {
		return nil, fmt.Errorf("metric %s: interval: %w", m.Name, err)
	}
	if interval <= 0 && limits.Count > 1 {
		return nil, fmt.Errorf("metric %s: measures %d times, so it needs an interval", m.Name, limits.Count)
	}
	// A metric without a count measures every interval of the stretch; one
	// with a count, about count times (errors come on top, and are bounded
	// as the replay goes).
	most := int64(limits.Count)
	if limits.Count <= 0 && interval > 0 {
		most = int64(end.Sub(first)/interval) + 1
	}
	if most > MaxReplayed {
		return nil, fmt.Errorf("metric %s: replaying it would take %d measurements, more than %d; replay a shorter stretch", m.Name, most, MaxReplayed)
	}
	return &replaying{m: m, limits: limits, interval: interval, next: first}, nil
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
