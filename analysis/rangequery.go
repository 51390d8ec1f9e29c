package analysis

import (
	"errors"
	"fmt"
	"strings"
	"time"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/parser"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

// MaxRangePoints is the most steps a range may span: Prometheus refuses a
// range query of more than 11,000 points per series.
const MaxRangePoints = 11000

// Range is the window of a range query at the moment of one measurement.
type Range struct {
	Start, End time.Time
	Step       time.Duration
}

// RenderRange substitutes {{args.NAME}} in a range query, as Argo Rollouts
// renders arguments throughout a metric. In start and end an argument must
// stand inside a string literal (duration("{{args.lookback}}")), where its
// value is escaped as expr reads strings; anywhere else it is refused with
// ErrUnsafeArgument. As with Render, the rendered expressions are parsed and
// compared with the template's. The result is then evaluated once, so that a
// range that can never be valid is the template's error before any query is
// sent: with only now() and duration() to call, whether a range is valid does
// not depend on when it is evaluated.
func RenderRange(q v1alpha1.PrometheusRangeQuery, args map[string]string) (v1alpha1.PrometheusRangeQuery, error) {
	start, err := renderTime("rangeQuery.start", q.Start, args)
	if err != nil {
		return v1alpha1.PrometheusRangeQuery{}, err
	}
	end, err := renderTime("rangeQuery.end", q.End, args)
	if err != nil {
		return v1alpha1.PrometheusRangeQuery{}, err
	}
	step, err := renderStep(string(q.Step), args)
	if err != nil {
		return v1alpha1.PrometheusRangeQuery{}, err
	}
	out := v1alpha1.PrometheusRangeQuery{Start: start, End: end, Step: argo.DurationString(step)}
	if _, err := RangeAt(out, time.Unix(0, 0)); err != nil {
		return v1alpha1.PrometheusRangeQuery{}, err
	}
	return out, nil
}

// RangeAt evaluates a rendered range query with now() at ts, not the wall
// clock, so that identical queries due at the same moment are one query. The
// range must not end before it starts, its step must be positive, and it
// must span at most MaxRangePoints steps.
func RangeAt(q v1alpha1.PrometheusRangeQuery, ts time.Time) (Range, error) {
	for _, v := range []string{q.Start, q.End, string(q.Step)} {
		if placeholder.MatchString(v) {
			return Range{}, fmt.Errorf("rangeQuery %q: arguments are not rendered", v)
		}
	}
	start, err := evalTime(q.Start, ts)
	if err != nil {
		return Range{}, fmt.Errorf("rangeQuery.start %q: %w", q.Start, err)
	}
	end, err := evalTime(q.End, ts)
	if err != nil {
		return Range{}, fmt.Errorf("rangeQuery.end %q: %w", q.End, err)
	}
	step, err := time.ParseDuration(string(q.Step))
	if err != nil {
		return Range{}, fmt.Errorf("rangeQuery.step %q is not a duration such as 30s or 1m", q.Step)
	}
	switch {
	case step <= 0:
		return Range{}, fmt.Errorf("rangeQuery.step %s must be positive", q.Step)
	case end.Before(start):
		return Range{}, fmt.Errorf("rangeQuery: end (%s) is %s before start (%s)", q.End, start.Sub(end), q.Start)
	case end.Sub(start)/step > MaxRangePoints:
		return Range{}, fmt.Errorf("rangeQuery: %s in steps of %s is %d points per series, more than Prometheus's %d; use a longer step or a shorter range",
			end.Sub(start), step, end.Sub(start)/step, MaxRangePoints)
	}
	return Range{Start: start, End: end, Step: step}, nil
}

// evalTime evaluates a start or end expression as Argo Rollouts' EvalTime
// does, except that now() is ts and no other function but duration() exists.
func evalTime(e string, ts time.Time) (time.Time, error) {
	prog, err := expr.Compile(e,
		expr.Env(map[string]any{}),
		expr.DisableAllBuiltins(),
		expr.Function("now", func(...any) (any, error) { return ts, nil }, new(func() time.Time)),
		expr.Function("duration", func(p ...any) (any, error) { return time.ParseDuration(p[0].(string)) }, new(func(string) time.Duration)),
	)
	if err != nil {
		return time.Time{}, exprError(err)
	}
	out, err := expr.Run(prog, map[string]any{})
	if err != nil {
		return time.Time{}, exprError(err)
	}
	t, ok := out.(time.Time)
	if !ok {
		return time.Time{}, fmt.Errorf("want a time, such as now() - duration(\"5m\"), got a %T", out)
	}
	return t, nil
}

// exprError keeps an expr error's message and drops its source snippet,
// which spans lines.
func exprError(err error) error {
	var fe *file.Error
	if errors.As(err, &fe) {
		return errors.New(fe.Message)
	}
	return err
}

// renderTime substitutes arguments in a start or end expression.
func renderTime(field, e string, args map[string]string) (string, error) {
	withValues, err := substituteInStrings(field, e, args)
	if err != nil {
		return "", err
	}
	inert := map[string]string{}
	for _, m := range placeholder.FindAllStringSubmatch(e, -1) {
		inert[m[1]] = ""
	}
	withInert, err := substituteInStrings(field, e, inert)
	if err != nil {
		return "", err
	}
	want, err := exprShape(withInert)
	if err != nil {
		return "", fmt.Errorf("%s %q does not parse: %w", field, e, err)
	}
	got, err := exprShape(withValues)
	if err != nil || got != want {
		return "", fmt.Errorf("%w: in %s", ErrUnsafeArgument, field)
	}
	return withValues, nil
}

// substituteInStrings replaces each placeholder that stands inside a string
// literal with the escaped value, and refuses any other.
func substituteInStrings(field, e string, args map[string]string) (string, error) {
	var b strings.Builder
	var errs []error
	last := 0
	for _, loc := range placeholder.FindAllStringSubmatchIndex(e, -1) {
		name := e[loc[2]:loc[3]]
		b.WriteString(e[last:loc[0]])
		last = loc[1]
		v, ok := args[name]
		quote := exprSyntax.openQuote(e[:loc[0]])
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("%s: argument %q has no value", field, name))
		case quote == 0:
			errs = append(errs, fmt.Errorf("%w: in %s, argument %q must stand inside a string, as in duration(\"{{args.%s}}\")", ErrUnsafeArgument, field, name, name))
		default:
			b.WriteString(escape(v, quote))
		}
	}
	b.WriteString(e[last:])
	return b.String(), errors.Join(errs...)
}

// exprShape describes a parsed expression with its string literals left out.
func exprShape(e string) (string, error) {
	tree, err := parser.Parse(e)
	if err != nil {
		return "", exprError(err)
	}
	var v shapeVisitor
	ast.Walk(&tree.Node, &v)
	return v.String(), nil
}

type shapeVisitor struct{ strings.Builder }

func (v *shapeVisitor) Visit(n *ast.Node) {
	switch n := (*n).(type) {
	case *ast.StringNode:
		v.WriteString("string")
	case *ast.IdentifierNode:
		v.WriteString("ident " + n.Value)
	case *ast.BuiltinNode:
		fmt.Fprintf(v, "builtin %s/%d", n.Name, len(n.Arguments))
	case *ast.CallNode:
		fmt.Fprintf(v, "call/%d", len(n.Arguments))
	case *ast.BinaryNode:
		v.WriteString("binary " + n.Operator)
	case *ast.UnaryNode:
		v.WriteString("unary " + n.Operator)
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode:
		fmt.Fprintf(v, "%T %s", n, n)
	default:
		fmt.Fprintf(v, "%T", n)
	}
	v.WriteString("; ")
}

// renderStep substitutes arguments in a step; what results must be a
// duration, which RangeAt checks.
func renderStep(step string, args map[string]string) (string, error) {
	out, err := substitutePlain(step, args)
	if err != nil {
		return out, fmt.Errorf("rangeQuery.step: %w", err)
	}
	return out, nil
}
