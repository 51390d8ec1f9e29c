package analysis

import (
	"math"
	"regexp"
	"testing"
	"unicode/utf8"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

// FuzzRender: whatever an argument holds, the rendered query selects what
// the template says, with the value taken literally (an equality matcher
// equal to it, a regex matcher matching it and only it), or it is refused.
func FuzzRender(f *testing.F) {
	for _, v := range []string{"podinfo", ".*", `"} or up{a="`, "a\\\"b", "x'y", "`", "5..", "\n#", "é", "a|b", "1m"} {
		f.Add(v, "1m")
	}
	const tmpl = `sum(rate(requests{job="{{args.v}}", pod=~'{{args.v}}', code!~"{{args.v}}"}[{{args.w}}]))`
	f.Fuzz(func(t *testing.T, v, w string) {
		q, err := Render(tmpl, map[string]string{"v": v, "w": w})
		if err != nil {
			return // refused: nothing is sent
		}
		if !utf8.ValidString(v) {
			return // PromQL strings are UTF-8; what Go's escaping made of it is still one literal
		}
		e, err := parser.NewParser(parser.Options{}).ParseExpr(q)
		if err != nil {
			t.Fatalf("rendered query %q does not parse: %v", q, err)
		}
		var sel []*parser.VectorSelector
		parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
			if s, ok := n.(*parser.VectorSelector); ok {
				sel = append(sel, s)
			}
			return nil
		})
		if len(sel) != 1 {
			t.Fatalf("%q: %d selectors", q, len(sel))
		}
		for _, m := range sel[0].LabelMatchers {
			switch m.Name {
			case "__name__":
				if m.Value != "requests" {
					t.Fatalf("%q selects metric %q", q, m.Value)
				}
			case "job":
				if m.Type != labels.MatchEqual || m.Value != v {
					t.Fatalf("%q: job matcher %s, want = %q", q, m, v)
				}
			case "pod", "code":
				if m.Type != labels.MatchRegexp && m.Type != labels.MatchNotRegexp {
					t.Fatalf("%q: %s matcher changed type: %s", q, m.Name, m)
				}
				re, err := regexp.Compile("^(?:" + m.Value + ")$")
				if err != nil {
					t.Fatalf("%q: %s matcher %q does not compile: %v", q, m.Name, m.Value, err)
				}
				if !re.MatchString(v) || re.MatchString(v+"x") {
					t.Fatalf("%q: %s matcher %q does not match %q literally", q, m.Name, m.Value, v)
				}
			default:
				t.Fatalf("%q: unexpected matcher %s", q, m)
			}
		}
	})
}

// FuzzJudge: any sample (NaN, ±Inf, huge, many series) is judged without a
// panic, into a bounded value and message.
func FuzzJudge(f *testing.F) {
	f.Add(0.995, 0.0, uint16(1), false, "result[0] >= 0.99")
	f.Add(math.NaN(), math.Inf(1), uint16(3), false, "all(result, {# < 1})")
	f.Add(math.Inf(-1), 1e308, uint16(5000), true, "result > 1")
	f.Add(-0.0, 5e-324, uint16(0), false, "result[9]")
	f.Fuzz(func(t *testing.T, a, b float64, n uint16, scalar bool, cond string) {
		vs := make([]float64, int(n)%6000)
		for i := range vs {
			vs[i] = a
			if i%2 == 1 {
				vs[i] = b
			}
		}
		if scalar && len(vs) > 1 {
			vs = vs[:1]
		}
		m := v1alpha1.Metric{SuccessCondition: cond}
		phase, value, msg := Judge(m, Sample{Values: vs, Scalar: scalar && len(vs) == 1}, nil)
		switch phase {
		case argo.AnalysisPhaseSuccessful, argo.AnalysisPhaseFailed, argo.AnalysisPhaseInconclusive, argo.AnalysisPhaseError:
		default:
			t.Fatalf("phase %q", phase)
		}
		if len(msg) > MaxMessage || len(value) > 512 {
			t.Fatalf("unbounded: value %d bytes, message %d bytes", len(value), len(msg))
		}
	})
}

// FuzzAssess: over any sequence of measurement outcomes and any limits the
// schema accepts, a metric is Successful only when enough measurements
// succeeded, and Failed only past its failure limit (or, asked for a run of
// successes, without one once every measurement was taken).
func FuzzAssess(f *testing.F) {
	f.Add([]byte{0, 0, 0}, int32(0), int32(0), int32(4), int32(3), int32(0))
	f.Add([]byte{1, 1, 2, 3, 0}, int32(-1), int32(2), int32(1), int32(0), int32(2))
	f.Fuzz(func(t *testing.T, outcomes []byte, failure, inconclusive, consecutiveError, count, consecutiveSuccess int32) {
		m := v1alpha1.Metric{
			Interval:                "1s",
			FailureLimit:            ptr.To(intstr.FromInt32(failure)),
			InconclusiveLimit:       ptr.To(intstr.FromInt32(inconclusive)),
			ConsecutiveErrorLimit:   ptr.To(intstr.FromInt32(consecutiveError)),
			Count:                   ptr.To(intstr.FromInt32(count)),
			ConsecutiveSuccessLimit: ptr.To(intstr.FromInt32(consecutiveSuccess)),
		}
		l, err := LimitsOf(m, nil)
		if err != nil {
			return // refused before anything is measured
		}
		phases := []argo.AnalysisPhase{argo.AnalysisPhaseSuccessful, argo.AnalysisPhaseFailed, argo.AnalysisPhaseInconclusive, argo.AnalysisPhaseError}
		var r argo.MetricResult
		for _, o := range outcomes {
			Record(&r, phases[int(o)%len(phases)])
			switch Assess(r, l) {
			case argo.AnalysisPhaseSuccessful:
				enough := (l.ConsecutiveSuccess > 0 && r.ConsecutiveSuccess >= l.ConsecutiveSuccess) || (l.Count > 0 && r.Count >= l.Count)
				if !enough || r.Successful == 0 {
					t.Fatalf("Successful with %+v under %+v", r, l)
				}
				if l.Failure >= 0 && r.Failed > l.Failure {
					t.Fatalf("Successful past the failure limit: %+v under %+v", r, l)
				}
				return
			case argo.AnalysisPhaseFailed:
				pastLimit := l.Failure >= 0 && r.Failed > l.Failure
				noRunOfSuccesses := l.ConsecutiveSuccess > 0 && l.Count > 0 && r.Count >= l.Count && r.ConsecutiveSuccess < l.ConsecutiveSuccess
				if !pastLimit && !noRunOfSuccesses {
					t.Fatalf("Failed within the failure limit: %+v under %+v", r, l)
				}
				return
			case argo.AnalysisPhaseInconclusive, argo.AnalysisPhaseError:
				return
			}
		}
	})
}
