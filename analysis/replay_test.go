package analysis

import (
	"errors"
	"strings"
	"testing"
	"time"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

func TestReplay(t *testing.T) {
	start := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	// A success rate that breaks at 10:20 and a latency that never does.
	series := map[string]func(time.Time) Sample{
		"sr": func(at time.Time) Sample {
			if at.Before(start.Add(20 * time.Minute)) {
				return Sample{Values: []float64{0.999}}
			}
			return Sample{Values: []float64{0.9}}
		},
		"p99":   func(time.Time) Sample { return Sample{Values: []float64{120}} },
		"down":  func(time.Time) Sample { return Sample{Err: errors.New("connection refused")} },
		"empty": func(time.Time) Sample { return Sample{} },
	}
	metric := func(name string, edit func(*v1alpha1.Metric)) v1alpha1.Metric {
		m := v1alpha1.Metric{Name: name, Interval: "5m", SuccessCondition: "result[0] >= 0.99",
			Provider: v1alpha1.MetricProvider{Prometheus: &v1alpha1.PrometheusMetric{Query: name}}}
		if name == "p99" {
			m.SuccessCondition = "result[0] < 500"
		}
		if edit != nil {
			edit(&m)
		}
		return m
	}
	count := func(n int32) func(*v1alpha1.Metric) {
		return func(m *v1alpha1.Metric) { m.Count = ptr.To(intstr.FromInt32(n)) }
	}
	type metricWant struct {
		phase argo.AnalysisPhase
		n     int // measurements kept
	}
	for _, tt := range []struct {
		name    string
		spec    v1alpha1.AnalysisRunSpec
		end     time.Duration
		want    argo.AnalysisPhase
		metrics []metricWant
		sent    int // queries, when it matters
		err     string
	}{
		{name: "every measurement taken within the SLO",
			spec: v1alpha1.AnalysisRunSpec{Metrics: []v1alpha1.Metric{metric("sr", count(4))}}, end: time.Hour,
			want: argo.AnalysisPhaseSuccessful, metrics: []metricWant{{argo.AnalysisPhaseSuccessful, 4}}},
		{name: "fails at the first measurement past the break",
			spec: v1alpha1.AnalysisRunSpec{Metrics: []v1alpha1.Metric{metric("sr", count(12))}}, end: time.Hour,
			want: argo.AnalysisPhaseFailed, metrics: []metricWant{{argo.AnalysisPhaseFailed, 5}}},
		{name: "a failure limit lets some through",
			spec: v1alpha1.AnalysisRunSpec{Metrics: []v1alpha1.Metric{metric("sr", func(m *v1alpha1.Metric) {
				m.Count, m.FailureLimit = ptr.To(intstr.FromInt32(12)), ptr.To(intstr.FromInt32(2))
			})}}, end: time.Hour,
			want: argo.AnalysisPhaseFailed, metrics: []metricWant{{argo.AnalysisPhaseFailed, 7}}},
		{name: "initial delay: measured from 10:20, it fails at once",
			spec: v1alpha1.AnalysisRunSpec{Metrics: []v1alpha1.Metric{metric("sr", func(m *v1alpha1.Metric) {
				m.Count, m.InitialDelay = ptr.To(intstr.FromInt32(3)), "20m"
			})}}, end: time.Hour,
			want: argo.AnalysisPhaseFailed, metrics: []metricWant{{argo.AnalysisPhaseFailed, 1}}},
		{name: "a background metric runs until the end of the stretch",
			spec: v1alpha1.AnalysisRunSpec{Metrics: []v1alpha1.Metric{metric("p99", nil)}}, end: time.Hour,
			want: argo.AnalysisPhaseRunning, metrics: []metricWant{{argo.AnalysisPhaseRunning, 13}}},
		{name: "a failing metric ends the run: the other stops with it",
			spec: v1alpha1.AnalysisRunSpec{Metrics: []v1alpha1.Metric{metric("p99", nil), metric("sr", count(12))}}, end: 10 * time.Hour,
			want: argo.AnalysisPhaseFailed, metrics: []metricWant{{argo.AnalysisPhaseRunning, 5}, {argo.AnalysisPhaseFailed, 5}}, sent: 10},
		{name: "an erring metric ends the run too",
			spec: v1alpha1.AnalysisRunSpec{Metrics: []v1alpha1.Metric{metric("p99", nil), metric("down", count(10))}}, end: time.Hour,
			want: argo.AnalysisPhaseError, metrics: []metricWant{{argo.AnalysisPhaseRunning, 5}, {argo.AnalysisPhaseError, 5}}},
		{name: "a metric not due before the run ends was never measured",
			spec: v1alpha1.AnalysisRunSpec{Metrics: []v1alpha1.Metric{metric("p99", func(m *v1alpha1.Metric) { m.InitialDelay = "30m" }), metric("sr", count(12))}},
			end:  time.Hour, want: argo.AnalysisPhaseFailed, metrics: []metricWant{{argo.AnalysisPhasePending, 0}, {argo.AnalysisPhaseFailed, 5}}},
		{name: "a metric measured once that fails ends the run",
			spec: v1alpha1.AnalysisRunSpec{Metrics: []v1alpha1.Metric{metric("p99", nil), metric("sr", func(m *v1alpha1.Metric) { m.Interval, m.InitialDelay = "", "20m" })}},
			end:  time.Hour, want: argo.AnalysisPhaseFailed, metrics: []metricWant{{argo.AnalysisPhaseRunning, 5}, {argo.AnalysisPhaseFailed, 1}}},
		{name: "measured once, it is measured again at once while it errs",
			spec: v1alpha1.AnalysisRunSpec{Metrics: []v1alpha1.Metric{metric("down", func(m *v1alpha1.Metric) { m.Interval = "" })}}, end: time.Hour,
			want: argo.AnalysisPhaseError, metrics: []metricWant{{argo.AnalysisPhaseError, 5}}, sent: 5},
		{name: "a dry-run failure ends nothing",
			spec: v1alpha1.AnalysisRunSpec{Metrics: []v1alpha1.Metric{metric("p99", count(8)), metric("sr", count(12))},
				DryRun: []argo.DryRun{{MetricName: "sr"}}}, end: time.Hour,
			want: argo.AnalysisPhaseSuccessful, metrics: []metricWant{{argo.AnalysisPhaseSuccessful, 8}, {argo.AnalysisPhaseFailed, 5}}},
		{name: "errors past consecutiveErrorLimit",
			spec: v1alpha1.AnalysisRunSpec{Metrics: []v1alpha1.Metric{metric("down", count(10))}}, end: time.Hour,
			want: argo.AnalysisPhaseError, metrics: []metricWant{{argo.AnalysisPhaseError, 5}}},
		{name: "no data is inconclusive by default",
			spec: v1alpha1.AnalysisRunSpec{Metrics: []v1alpha1.Metric{metric("empty", count(3))}}, end: time.Hour,
			want: argo.AnalysisPhaseInconclusive, metrics: []metricWant{{argo.AnalysisPhaseInconclusive, 1}}},
		{name: "neither count nor interval: measured once",
			spec: v1alpha1.AnalysisRunSpec{Metrics: []v1alpha1.Metric{metric("sr", func(m *v1alpha1.Metric) { m.Interval = "" })}}, end: time.Hour,
			want: argo.AnalysisPhaseSuccessful, metrics: []metricWant{{argo.AnalysisPhaseSuccessful, 1}}},
		{name: "a stretch too long for the interval is refused",
			spec: v1alpha1.AnalysisRunSpec{Metrics: []v1alpha1.Metric{metric("p99", func(m *v1alpha1.Metric) { m.Interval = "1s" })}}, end: time.Hour,
			err: "would take 3601 measurements"},
		{name: "a count too large is refused",
			spec: v1alpha1.AnalysisRunSpec{Metrics: []v1alpha1.Metric{metric("sr", count(5000))}}, end: 48 * time.Hour,
			err: "would take 5000 measurements"},
		{name: "a count without an interval is refused",
			spec: v1alpha1.AnalysisRunSpec{Metrics: []v1alpha1.Metric{metric("sr", func(m *v1alpha1.Metric) {
				m.Interval, m.Count = "", ptr.To(intstr.FromInt32(3))
			})}}, end: time.Hour,
			err: "needs an interval"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sent := 0
			got, metrics, err := Replay(tt.spec, nil, start, start.Add(tt.end), func(m v1alpha1.Metric, at time.Time) Sample {
				sent++
				return series[m.Provider.Prometheus.Query](at)
			})
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("run %s, want %s", got, tt.want)
			}
			for i, w := range tt.metrics {
				if m := metrics[i]; m.Phase != w.phase || len(m.Measurements) != w.n || m.Measurements == nil {
					t.Errorf("metric %s: %s after %d measurements, want %s after %d", m.Metric, m.Phase, len(m.Measurements), w.phase, w.n)
				}
			}
			if tt.sent > 0 && sent != tt.sent {
				t.Errorf("%d queries sent, want %d", sent, tt.sent)
			}
		})
	}
}
