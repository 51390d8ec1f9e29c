package demo

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"github.com/tugboatdev/tugboat/analysis"
	"github.com/tugboatdev/tugboat/analysis/prometheus"
	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/sandbox/toolchain"
)

// GateObjective is the latency objective the demo gives the default gate:
// the first of Istio's bucket bounds at least twice the emulator's 45ms.
const GateObjective = "100"

// ReplayGate replays the default gate, examples/canary-judge/gate.yaml, over
// a release's canary as it ran (the Deployment key.Name against
// key.Name-primary), through the sandbox's Prometheus, as
// `kubectl tug analysis run --replay-from` does, and writes each metric's
// last verdict. It first waits, at most a minute, for the gate's second
// look at the release to lie in the past. A rolled-back release should
// fail the gate; the result says whether it did.
func ReplayGate(ctx context.Context, prometheusURL string, key types.NamespacedName, r Result, out io.Writer) (Result, error) {
	file := filepath.Join(toolchain.Root(), "examples", "canary-judge", "gate.yaml")
	raw, err := os.ReadFile(file)
	if err != nil {
		return Result{}, err
	}
	var t v1alpha1.AnalysisTemplate
	if err := yaml.UnmarshalStrict(raw, &t); err != nil {
		return Result{}, fmt.Errorf("%s: %w", file, err)
	}
	canary, stable, objective := key.Name, key.Name+"-primary", GateObjective
	args := []argo.Argument{{Name: "canary", Value: &canary}, {Name: "stable", Value: &stable}, {Name: "objective", Value: &objective}}
	spec, err := analysis.RunSpec([]v1alpha1.AnalysisTemplateSpec{t.Spec}, args)
	if err != nil {
		return Result{}, err
	}
	from := r.Started.Truncate(time.Second)
	to := from.Add(max(r.Took, time.Minute) + 15*time.Second)
	fmt.Fprintf(out, "\n▶ the default gate (examples/canary-judge/gate.yaml) replayed over release %q's canary, %s to %s: want it %s\n",
		r.Release.Name, from.Format(time.TimeOnly), to.Format(time.TimeOnly), r.Release.Want)
	if wait := time.Until(to); wait > 0 {
		select {
		case <-ctx.Done():
			return Result{}, ctx.Err()
		case <-time.After(min(wait, time.Minute)):
		}
	}
	p := &prometheus.Provider{DefaultAddress: prometheusURL, Guard: prometheus.Guard{AllowLoopback: true}}
	began := time.Now()
	phase, metrics, err := p.Replay(ctx, key.Namespace, spec, analysis.Args{Values: map[string]string{"canary": canary, "stable": stable, "objective": objective}}, from, to)
	if err != nil {
		return Result{}, err
	}
	res := Result{Release: Release{Name: r.Release.Name + ", replayed through the default gate", Want: r.Release.Want}, Got: Outcome(phase), Took: time.Since(began)}
	if phase == argo.AnalysisPhaseFailed {
		res.Got = Aborted
	}
	for _, m := range metrics {
		if n := len(m.Measurements); n > 0 {
			last := m.Measurements[n-1]
			fmt.Fprintf(out, "  %s: %s after %d looks: %s\n", m.Metric, m.Phase, n, last.Message)
			if m.Phase == argo.AnalysisPhaseFailed && res.Message == "" {
				res.Message = last.Message
			}
		}
	}
	fmt.Fprintf(out, "  → %s\n", phase)
	return res, nil
}
