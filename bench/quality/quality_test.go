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
	"sigs.k8s.io/yaml"

	"github.com/tugboatdev/tugboat/analysis"
	"github.com/tugboatdev/tugboat/analysis/prometheus"
	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/bench/quality/corpus"
	"github.com/tugboatdev/tugboat/sandbox/promserver"
)

// gate is the template measured: the recommended default gate.
const gate = "../../examples/canary-judge/gate.yaml"

// loadGate reads the gate.
func loadGate(tb testing.TB) v1alpha1.AnalysisTemplate {
	tb.Helper()
	raw, err := os.ReadFile(gate)
	if err != nil {
		tb.Fatal(err)
	}
	var t v1alpha1.AnalysisTemplate
	if err := yaml.UnmarshalStrict(raw, &t); err != nil {
		tb.Fatalf("%s: %v", gate, err)
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
				canary, stable, objective := s.Canary(), s.Stable(), strconv.FormatFloat(s.Objective(), 'g', -1, 64)
				spec, err := analysis.RunSpec([]v1alpha1.AnalysisTemplateSpec{t.Spec}, []argo.Argument{{Name: "canary", Value: &canary}, {Name: "stable", Value: &stable}, {Name: "objective", Value: &objective}})
				if err != nil {
					errs[i] = err
					continue
				}
				args := analysis.Args{Values: map[string]string{"canary": canary, "stable": stable, "objective": objective}}
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

// TestGateQualityHarness runs the harness end to end through the real
// Prometheus on four scenarios at high traffic, with little noise: a
// healthy canary is promoted, one with four times its baseline's errors and
// one twice as slow from the run's start are failed within minutes, and one
// whose traffic is too thin to tell is Inconclusive.
func TestGateQualityHarness(t *testing.T) {
	c := corpus.Default(1, time.Now().Add(-time.Hour), corpus.Sizes{})
	c.Noise = corpus.QuietNoise
	c.Scenarios = []corpus.Scenario{
		{Name: "healthy", Kind: corpus.Healthy, RPS: corpus.HighRPS, ErrorRatio: 0.01, LatencyMS: 50, ErrorFactor: 1, LatencyFactor: 1},
		{Name: "errors", Kind: corpus.Errors, RPS: corpus.HighRPS, ErrorRatio: 0.01, LatencyMS: 50, ErrorFactor: 4, LatencyFactor: 1},
		{Name: "latency", Kind: corpus.Latency, RPS: corpus.HighRPS, ErrorRatio: 0.01, LatencyMS: 50, ErrorFactor: 1, LatencyFactor: 2},
		{Name: "thin", Kind: corpus.Healthy, RPS: corpus.ThinRPS / 5, ErrorRatio: 0.01, LatencyMS: 50, ErrorFactor: 1, LatencyFactor: 1},
	}
	results := replayAll(t, c, loadGate(t))
	for i, want := range []argo.AnalysisPhase{argo.AnalysisPhaseSuccessful, argo.AnalysisPhaseFailed, argo.AnalysisPhaseFailed, argo.AnalysisPhaseInconclusive} {
		if got := results[i].Phase; got != want {
			t.Errorf("%s canary: %s, want %s", c.Scenarios[i].Name, got, want)
		}
	}
	table := Score(c.RunStart, results)
	if table.Caught != 2 || table.FalseRollbacks != 0 || Median(table.Delays) > 5*time.Minute {
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
	}{
		{"gate/noise=default", corpus.DefaultNoise},
		{"gate/noise=quiet", corpus.QuietNoise},
	} {
		b.Run(v.name, func(b *testing.B) {
			c := corpus.Default(seed, time.Now().Add(-2*time.Hour), corpus.Sizes{Healthy: 20, Regressed: 20, Thin: 10})
			c.Noise = v.noise
			gate := loadGate(b)
			var table Table
			var results []Result
			for b.Loop() {
				results = replayAll(b, c, gate)
				table = Score(c.RunStart, results)
			}
			for _, w := range Wrong(results) {
				b.Log(w)
			}
			b.ReportMetric(table.CaughtPct(), "caught-%")
			b.ReportMetric(table.FalseRollbackPct(), "false-rollback-%")
			b.ReportMetric(Median(table.Delays).Seconds(), "median-detection-s")
			b.ReportMetric(table.ThinInconclusivePct(), "thin-inconclusive-%")
			b.ReportMetric(float64(table.ThinGuesses), "thin-guesses")
			fmt.Fprintf(os.Stdout, "\n%s, seed %d, %d scenarios (%+v)\n\n%s\n", v.name, seed, len(c.Scenarios), c.Noise, table.Markdown())
		})
	}
}
