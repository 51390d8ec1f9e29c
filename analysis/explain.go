package analysis

import (
	"cmp"
	"slices"
	"time"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

// maxShownQuery bounds a query copied into a Rollout's status; the
// AnalysisRun keeps it whole.
const maxShownQuery = 1024

// Explain is the explanation of a run's verdict for the Rollout's status. A
// metric that keeps its phase from before keeps its Since; one that reached
// a new phase has it since its last measurement, or since now when it has
// none.
func Explain(run *v1alpha1.AnalysisRun, before *v1alpha1.RolloutAnalysis, now time.Time) v1alpha1.RolloutAnalysis {
	out := v1alpha1.RolloutAnalysis{Run: run.Name, Phase: run.Status.Phase, Message: run.Status.Message}
	args := map[string]string{}
	for _, a := range run.Spec.Args {
		if a.Value != nil {
			args[a.Name] = *a.Value
		}
	}
	dry := DryRunMetrics(run.Spec)
	for _, m := range run.Spec.Metrics {
		e := v1alpha1.MetricExplanation{
			Name:             m.Name,
			Phase:            argo.AnalysisPhasePending,
			SuccessCondition: m.SuccessCondition,
			FailureCondition: m.FailureCondition,
			DryRun:           dry[m.Name],
		}
		if l, err := LimitsOf(m, args); err == nil {
			e.Limits = &v1alpha1.MetricLimits{
				FailureLimit:          l.Failure,
				InconclusiveLimit:     l.Inconclusive,
				ConsecutiveErrorLimit: l.ConsecutiveError,
				Count:                 l.Count,
			}
		}
		if i := slices.IndexFunc(run.Status.MetricResults, func(r argo.MetricResult) bool { return r.Name == m.Name }); i >= 0 {
			r := run.Status.MetricResults[i]
			e.Phase, e.Message = r.Phase, r.Message
			e.Query = shorten(cmp.Or(r.Metadata[MetadataPrometheusQuery], r.Metadata[MetadataWebRequest], r.Metadata[MetadataJudgeQueries], r.Metadata[MetadataBurnRateQueries]), maxShownQuery)
			e.Counters = v1alpha1.MetricCounters{
				Successful:       r.Successful,
				Failed:           r.Failed,
				Inconclusive:     r.Inconclusive,
				Error:            r.Error,
				ConsecutiveError: r.ConsecutiveError,
			}
			if n := len(r.Measurements); n > 0 {
				last := r.Measurements[n-1]
				e.Value = last.Value
				if last.FinishedAt != nil {
					e.Since = last.FinishedAt.DeepCopy()
				}
			}
		}
		if prev := explained(before, m.Name); prev != nil && prev.Phase == e.Phase && prev.Since != nil {
			e.Since = prev.Since.DeepCopy()
		}
		if e.Since == nil {
			e.Since = &metav1.Time{Time: now.Truncate(time.Second)}
		}
		e.Since = &metav1.Time{Time: e.Since.Truncate(time.Second)} // status keeps whole seconds
		out.Metrics = append(out.Metrics, e)
	}
	return out
}

// SameVerdict reports whether two explanations say the same thing about what
// decides a rollout: the same runs with the same verdicts, each metric with
// the same verdict and the same failures, inconclusives and errors. Pending
// and Running are both "no verdict yet". Successful measurements, values and
// times may differ; they decide nothing, and writing them each time would
// cost a write per measurement.
func SameVerdict(a, b []v1alpha1.RolloutAnalysis) bool {
	// A run that has counted nothing that decides anything yet (one just
	// created) waits for the next write.
	a, b = slices.DeleteFunc(slices.Clone(a), undecided), slices.DeleteFunc(slices.Clone(b), undecided)
	return slices.EqualFunc(a, b, func(x, y v1alpha1.RolloutAnalysis) bool {
		return x.Run == y.Run && verdict(x.Phase) == verdict(y.Phase) &&
			slices.EqualFunc(x.Metrics, y.Metrics, func(m, n v1alpha1.MetricExplanation) bool {
				return m.Name == n.Name && verdict(m.Phase) == verdict(n.Phase) &&
					m.Counters.Failed == n.Counters.Failed &&
					m.Counters.Inconclusive == n.Counters.Inconclusive &&
					m.Counters.Error == n.Counters.Error &&
					m.Counters.ConsecutiveError == n.Counters.ConsecutiveError
			})
	})
}

// undecided reports whether a run has no verdict and no metric has one or
// has counted a failure, an inconclusive or an error.
func undecided(a v1alpha1.RolloutAnalysis) bool {
	if a.Phase.Completed() {
		return false
	}
	for _, m := range a.Metrics {
		if m.Phase.Completed() || m.Counters.Failed+m.Counters.Inconclusive+m.Counters.Error > 0 {
			return false
		}
	}
	return true
}

// verdict is a phase with Pending and Running taken as one.
func verdict(p argo.AnalysisPhase) argo.AnalysisPhase {
	if p.Completed() {
		return p
	}
	return argo.AnalysisPhaseRunning
}

func explained(a *v1alpha1.RolloutAnalysis, metric string) *v1alpha1.MetricExplanation {
	if a == nil {
		return nil
	}
	for i := range a.Metrics {
		if a.Metrics[i].Name == metric {
			return &a.Metrics[i]
		}
	}
	return nil
}

func shorten(s string, n int) string { return Shorten(s, n) }
