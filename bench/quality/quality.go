// Package quality measures how well a gate tells regressed canaries from
// healthy ones: a synthetic corpus (package corpus) backfilled into a real
// Prometheus, the gate replayed over each scenario's run, and the outcomes
// scored into a table. Run it with `make bench-quality`.
package quality

import (
	"fmt"
	"slices"
	"strings"
	"time"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"

	"github.com/tugboatdev/tugboat/analysis"
	"github.com/tugboatdev/tugboat/bench/quality/corpus"
)

// Result is one scenario's replayed run.
type Result struct {
	Scenario corpus.Scenario
	Phase    argo.AnalysisPhase
	// Failed is the moment of the measurement that failed the run (zero
	// when it did not fail).
	Failed time.Time
	// Last is each metric's last message, to say why.
	Last []string
}

// ResultOf is a scenario's result from its replay's metrics.
func ResultOf(s corpus.Scenario, phase argo.AnalysisPhase, metrics []analysis.MetricReplay) Result {
	r := Result{Scenario: s, Phase: phase}
	for _, m := range metrics {
		if n := len(m.Measurements); n > 0 {
			r.Last = append(r.Last, fmt.Sprintf("%s %s after %d looks: %s", m.Metric, m.Phase, n, m.Measurements[n-1].Message))
		}
	}
	if phase != argo.AnalysisPhaseFailed {
		return r
	}
	for _, m := range metrics {
		for _, x := range m.Measurements {
			if x.Metric == argo.AnalysisPhaseFailed && !m.DryRun {
				if r.Failed.IsZero() || x.At.Before(r.Failed) {
					r.Failed = x.At
				}
				break
			}
		}
	}
	return r
}

// Detectable says whether the data can show a scenario's regression: a
// regressed canary with low or high traffic. Thin traffic is scored apart.
func Detectable(s corpus.Scenario) bool {
	return s.Kind != corpus.Healthy && s.RPS >= corpus.LowRPS
}

// Table is the scored corpus.
type Table struct {
	// Detectable regressions, and those the gate failed.
	Detectable, Caught int
	// Healthy canaries (thin ones included), those the gate failed (a false
	// rollback) and those it passed.
	Healthy, FalseRollbacks, Promoted int
	// Thin canaries, those the gate called Inconclusive, and its guesses
	// among them: a healthy thin canary promoted or rolled back, or a
	// regressed one promoted. A regressed thin canary failed on the
	// evidence is no guess.
	Thin, ThinInconclusive, ThinGuesses, ThinCaught int
	// Delays are the caught regressions' times from onset to the failing
	// measurement.
	Delays []time.Duration
	Groups []Group
}

// Group is the outcomes of one kind of scenario at one traffic level.
type Group struct {
	Kind   corpus.Kind
	RPS    float64
	Phases map[argo.AnalysisPhase]int
	Delays []time.Duration
	N      int
}

// Score scores the results of a corpus whose runs started at runStart.
func Score(runStart time.Time, results []Result) Table {
	var t Table
	groups := map[string]*Group{}
	for _, r := range results {
		s := r.Scenario
		key := fmt.Sprintf("%s/%g", s.Kind, s.RPS)
		g := groups[key]
		if g == nil {
			g = &Group{Kind: s.Kind, RPS: s.RPS, Phases: map[argo.AnalysisPhase]int{}}
			groups[key] = g
		}
		g.N++
		g.Phases[r.Phase]++
		failed := r.Phase == argo.AnalysisPhaseFailed
		var delay time.Duration
		if failed && s.Kind != corpus.Healthy {
			delay = r.Failed.Sub(runStart.Add(s.Onset))
			g.Delays = append(g.Delays, delay)
		}
		if Detectable(s) {
			t.Detectable++
			if failed {
				t.Caught++
				t.Delays = append(t.Delays, delay)
			}
		}
		if s.Kind == corpus.Healthy {
			t.Healthy++
			if failed {
				t.FalseRollbacks++
			}
			if r.Phase == argo.AnalysisPhaseSuccessful {
				t.Promoted++
			}
		}
		if s.RPS < corpus.LowRPS {
			t.Thin++
			if r.Phase == argo.AnalysisPhaseInconclusive {
				t.ThinInconclusive++
			}
			if r.Phase == argo.AnalysisPhaseSuccessful || (failed && s.Kind == corpus.Healthy) {
				t.ThinGuesses++
			}
			if failed && s.Kind != corpus.Healthy {
				t.ThinCaught++
			}
		}
	}
	for _, g := range groups {
		t.Groups = append(t.Groups, *g)
	}
	slices.SortFunc(t.Groups, func(a, b Group) int {
		if a.RPS != b.RPS {
			if a.RPS > b.RPS {
				return -1
			}
			return 1
		}
		return strings.Compare(string(a.Kind), string(b.Kind))
	})
	return t
}

// Wrong are the results a reader of the table would want explained: the
// detectable regressions not caught, the healthy canaries rolled back, and
// the thin canaries guessed at.
func Wrong(results []Result) []string {
	var out []string
	for _, r := range results {
		s := r.Scenario
		missed := Detectable(s) && r.Phase != argo.AnalysisPhaseFailed
		falseRollback := s.Kind == corpus.Healthy && r.Phase == argo.AnalysisPhaseFailed
		guess := s.RPS < corpus.LowRPS && (r.Phase == argo.AnalysisPhaseSuccessful || falseRollback)
		if !missed && !falseRollback && !guess {
			continue
		}
		out = append(out, fmt.Sprintf("%s (%s, %g rps, errors ×%.2f, latency ×%.2f, baseline %.2f%% errors and %.0fms, onset %s): %s\n    %s",
			s.Name, s.Kind, s.RPS, s.ErrorFactor, s.LatencyFactor, 100*s.ErrorRatio, s.LatencyMS, s.Onset, r.Phase, strings.Join(r.Last, "\n    ")))
	}
	return out
}

// Median is the median of ds (0 for none).
func Median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func pct(n, of int) float64 {
	if of == 0 {
		return 0
	}
	return 100 * float64(n) / float64(of)
}

// CaughtPct, FalseRollbackPct and ThinInconclusivePct are the table's
// headline shares, in percent.
func (t Table) CaughtPct() float64           { return pct(t.Caught, t.Detectable) }
func (t Table) FalseRollbackPct() float64    { return pct(t.FalseRollbacks, t.Healthy) }
func (t Table) ThinInconclusivePct() float64 { return pct(t.ThinInconclusive, t.Thin) }

// Markdown is the table as docs/judge.md shows it: the headline against
// the targets, then each group's outcomes.
func (t Table) Markdown() string {
	var b strings.Builder
	ok := func(met bool) string {
		if met {
			return "met"
		}
		return "**missed**"
	}
	median := Median(t.Delays)
	b.WriteString("| measure | target | measured | |\n| --- | --- | --- | --- |\n")
	fmt.Fprintf(&b, "| detectable regressions caught | ≥ 98%% | %.1f%% (%d of %d) | %s |\n", t.CaughtPct(), t.Caught, t.Detectable, ok(t.CaughtPct() >= 98))
	fmt.Fprintf(&b, "| healthy canaries rolled back | ≤ 1%% | %.1f%% (%d of %d) | %s |\n", t.FalseRollbackPct(), t.FalseRollbacks, t.Healthy, ok(t.FalseRollbackPct() <= 1))
	shown := median.String()
	if len(t.Delays) == 0 {
		shown = "– (none caught)"
	}
	fmt.Fprintf(&b, "| median detection after onset | ≤ 5m | %s | %s |\n", shown, ok(len(t.Delays) > 0 && median <= 5*time.Minute))
	fmt.Fprintf(&b, "| thin traffic: guesses (promoted, or healthy rolled back) | none | %d of %d (%d Inconclusive, %d regressions failed on the evidence) | %s |\n",
		t.ThinGuesses, t.Thin, t.ThinInconclusive, t.ThinCaught, ok(t.ThinGuesses == 0))
	fmt.Fprintf(&b, "| healthy canaries promoted | | %.1f%% (%d of %d) | |\n", pct(t.Promoted, t.Healthy), t.Promoted, t.Healthy)
	b.WriteString("\n| canary | rps a side | scenarios | Successful | Failed | Inconclusive | other | median detection |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, g := range t.Groups {
		other := g.N - g.Phases[argo.AnalysisPhaseSuccessful] - g.Phases[argo.AnalysisPhaseFailed] - g.Phases[argo.AnalysisPhaseInconclusive]
		delay := "–"
		if g.Kind != corpus.Healthy && len(g.Delays) > 0 {
			delay = Median(g.Delays).String()
		}
		fmt.Fprintf(&b, "| %s | %g | %d | %d | %d | %d | %d | %s |\n", g.Kind, g.RPS, g.N, g.Phases[argo.AnalysisPhaseSuccessful],
			g.Phases[argo.AnalysisPhaseFailed], g.Phases[argo.AnalysisPhaseInconclusive], other, delay)
	}
	return b.String()
}
