package quality

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/tugboatdev/tugboat/analysis"
	"github.com/tugboatdev/tugboat/analysis/prometheus"
	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/bench/quality/corpus"
	"github.com/tugboatdev/tugboat/sandbox/promserver"
)

// gate is the template measured: the recommended default gate.
const gate = "../../examples/canary-judge/gate.yaml"

// loadGate reads the gate; with looks > 0, each metric measures that many
// times and may be Inconclusive at all but the last.
func loadGate(tb testing.TB, looks int) v1alpha1.AnalysisTemplate {
	tb.Helper()
	raw, err := os.ReadFile(gate)
	if err != nil {
		tb.Fatal(err)
	}
	var t v1alpha1.AnalysisTemplate
	if err := yaml.UnmarshalStrict(raw, &t); err != nil {
		tb.Fatalf("%s: %v", gate, err)
	}
	for i := range t.Spec.Metrics {
		if looks > 0 {
			count, limit := intstr.FromInt(looks), intstr.FromInt(looks-1)
			t.Spec.Metrics[i].Count, t.Spec.Metrics[i].InconclusiveLimit = &count, &limit
		}
	}
	return t
}

// replayAll backfills c into a real Prometheus and replays the gate over
// every scenario's run, two at a time.
func replayAll(tb testing.TB, c corpus.Corpus, t v1alpha1.AnalysisTemplate) []Result {
	tb.Helper()
	var om bytes.Buffer
	if err := c.WriteOpenMetrics(&om); err != nil {
		tb.Fatal(err)
	}
	began := time.Now()
	srv := promserver.Start(tb, promserver.Options{OpenMetrics: om.String()})
	tb.Logf("backfilled %d scenarios (%d MB of OpenMetrics) and started Prometheus in %s", len(c.Scenarios), om.Len()>>20, time.Since(began).Round(time.Millisecond))
	p := &prometheus.Provider{DefaultAddress: srv.URL, Guard: prometheus.Guard{AllowLoopback: true}}
	results := make([]Result, len(c.Scenarios))
	errs := make([]error, len(c.Scenarios))
	work := make(chan int)
	var wg sync.WaitGroup
	began = time.Now()
	for range 2 {
		wg.Go(func() {
			for i := range work {
				s := c.Scenarios[i]
				canary, stable := s.Canary(), s.Stable()
				spec, err := analysis.RunSpec([]v1alpha1.AnalysisTemplateSpec{t.Spec}, []argo.Argument{{Name: "canary", Value: &canary}, {Name: "stable", Value: &stable}})
				if err != nil {
					errs[i] = err
					continue
				}
				args := analysis.Args{Values: map[string]string{"canary": canary, "stable": stable}}
				phase, metrics, err := p.Replay(tb.Context(), "", spec, args, c.RunStart, c.RunStart.Add(c.RunFor))
				results[i], errs[i] = ResultOf(s, phase, metrics), err
			}
		})
	}
	for i := range c.Scenarios {
		work <- i
	}
	close(work)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			tb.Fatalf("replay %s: %v", c.Scenarios[i].Name, err)
		}
	}
	tb.Logf("replayed the gate over %d scenarios in %s", len(c.Scenarios), time.Since(began).Round(time.Millisecond))
	return results
}

// TestGateQualityHarness runs the harness end to end on two scenarios at
// high traffic, with little noise, and the gate given 30 looks: a healthy
// canary is not failed, and one with four times its baseline's errors from
// the run's start is, within the run.
func TestGateQualityHarness(t *testing.T) {
	c := corpus.Default(1, time.Now().Add(-time.Hour), corpus.Sizes{})
	c.Noise, c.RunFor = corpus.QuietNoise, 30*time.Minute
	c.Scenarios = []corpus.Scenario{
		{Name: "healthy", Kind: corpus.Healthy, RPS: corpus.HighRPS, ErrorRatio: 0.01, LatencyMS: 50, ErrorFactor: 1, LatencyFactor: 1},
		{Name: "errors", Kind: corpus.Errors, RPS: corpus.HighRPS, ErrorRatio: 0.01, LatencyMS: 50, ErrorFactor: 4, LatencyFactor: 1},
	}
	results := replayAll(t, c, loadGate(t, 30))
	if got := results[0].Phase; got == argo.AnalysisPhaseFailed {
		t.Errorf("healthy canary: %s", got)
	}
	if got := results[1].Phase; got != argo.AnalysisPhaseFailed {
		t.Fatalf("canary with 4x the errors: %s, want Failed", got)
	}
	table := Score(c.RunStart, results)
	if table.Caught != 1 || table.FalseRollbacks != 0 || Median(table.Delays) > c.RunFor {
		t.Errorf("scored %+v\n%s", table, table.Markdown())
	}
}

// BenchmarkGateQuality replays the default gate over the synthetic corpus
// (TUGBOAT_QUALITY_SEED picks another one) and reports the table.
func BenchmarkGateQuality(b *testing.B) {
	seed := uint64(1)
	if s := os.Getenv("TUGBOAT_QUALITY_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			b.Fatalf("TUGBOAT_QUALITY_SEED: %v", err)
		}
	}
	for _, v := range []struct {
		name  string
		noise corpus.Noise
		looks int // 0: the gate's own 10
	}{
		{"gate/noise=default", corpus.DefaultNoise, 0},
		{"gate/noise=quiet", corpus.QuietNoise, 0},
		{"gate-30-looks/noise=default", corpus.DefaultNoise, 30},
		{"gate-30-looks/noise=quiet", corpus.QuietNoise, 30},
	} {
		b.Run(v.name, func(b *testing.B) {
			c := corpus.Default(seed, time.Now().Add(-2*time.Hour), corpus.Sizes{Healthy: 20, Regressed: 20, Thin: 10})
			c.Noise = v.noise
			if v.looks > 0 {
				c.RunFor = time.Duration(v.looks) * time.Minute
			}
			gate := loadGate(b, v.looks)
			var table Table
			for b.Loop() {
				table = Score(c.RunStart, replayAll(b, c, gate))
			}
			b.ReportMetric(table.CaughtPct(), "caught-%")
			b.ReportMetric(table.FalseRollbackPct(), "false-rollback-%")
			b.ReportMetric(Median(table.Delays).Seconds(), "median-detection-s")
			b.ReportMetric(table.ThinInconclusivePct(), "thin-inconclusive-%")
			fmt.Fprintf(os.Stdout, "\n%s, seed %d, %d scenarios (%+v)\n\n%s\n", v.name, seed, len(c.Scenarios), c.Noise, table.Markdown())
		})
	}
}
