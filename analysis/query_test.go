package analysis

import (
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/promql/parser"
)

const successRate = `sum(rate(istio_requests_total{destination_workload="{{args.workload}}", destination_workload_namespace="{{args.namespace}}", response_code!~"5.."}[{{args.window}}]))
/
sum(rate(istio_requests_total{destination_workload="{{args.workload}}", destination_workload_namespace="{{args.namespace}}"}[{{args.window}}]))`

func TestRender(t *testing.T) {
	ok := map[string]string{"workload": "podinfo", "namespace": "prod", "window": "1m"}
	got, err := Render(successRate, ok)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got, `destination_workload="podinfo"`) || !strings.Contains(got, `[1m]`) || strings.Contains(got, "{{") {
		t.Errorf("rendered: %s", got)
	}
	if _, err := Render(`up{job='{{args.job}}'}`, map[string]string{"job": `it's`}); err != nil {
		t.Errorf("a quote in a single-quoted value: %v", err)
	}
}

// TestRenderRefusesHostileArguments: no value changes what the query selects
// or computes; each is refused before anything is sent.
func TestRenderRefusesHostileArguments(t *testing.T) {
	for _, tt := range []struct {
		name, value string
	}{
		{"closing the quote and adding a matcher", `podinfo", job="admin`},
		{"closing the selector and adding an or", `podinfo"} or up{x="`},
		{"backslash escape of the closing quote", `podinfo\`},
		{"a newline", "podinfo\"\n} or vector(1) #"},
		{"a regex-breaking value stays a literal", `.*"} or up{a="`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			args := map[string]string{"workload": tt.value, "namespace": "prod", "window": "1m"}
			got, err := Render(successRate, args)
			if err != nil {
				if !errors.Is(err, ErrUnsafeArgument) {
					t.Errorf("error %v is not ErrUnsafeArgument", err)
				}
				return
			}
			// Quoted values are escaped: the whole value is one label value.
			expr, err := parser.NewParser(parser.Options{}).ParseExpr(got)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
				if vs, ok := node.(*parser.VectorSelector); ok {
					for _, m := range vs.LabelMatchers {
						if m.Name == "destination_workload" {
							n++
							if m.Value != tt.value {
								t.Errorf("label value %q, want %q", m.Value, tt.value)
							}
						}
					}
				}
				return nil
			})
			if n != 2 {
				t.Errorf("%d destination_workload matchers in %s", n, got)
			}
		})
	}
	for _, tt := range []struct {
		name, window string
	}{
		{"a range argument with an expression", `1m])) or vector(1) or sum(rate(up[1m`},
		{"a range argument with a space", `1m offset 1h`},
		{"a range argument with a brace", `1m]`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Render(successRate, map[string]string{"workload": "podinfo", "namespace": "prod", "window": tt.window})
			if !errors.Is(err, ErrUnsafeArgument) {
				t.Errorf("want ErrUnsafeArgument, got %v", err)
			}
		})
	}
	if _, err := Render(successRate, map[string]string{"workload": "podinfo"}); err == nil || !strings.Contains(err.Error(), `"namespace" has no value`) {
		t.Errorf("missing argument: %v", err)
	}
}

// TestRenderReadsComments: a quote in a comment does not make the rest of
// the query look like it is inside a string.
func TestRenderReadsComments(t *testing.T) {
	query := "# the canary's 5xx share\nsum(rate(x{w=\"{{args.w}}\"}[1m])) > {{args.t}}"
	if _, err := Render(query, map[string]string{"w": "podinfo", "t": "bool 0"}); !errors.Is(err, ErrUnsafeArgument) {
		t.Errorf("an unquoted argument after a comment: want ErrUnsafeArgument, got %v", err)
	}
	got, err := Render(query, map[string]string{"w": `a"b`, "t": "0.05"})
	if err != nil || !strings.Contains(got, `w="a\"b"`) {
		t.Errorf("a quote in a quoted argument after a comment: %q, %v", got, err)
	}
}

func TestRenderRefusesAStructureChangeThroughANumber(t *testing.T) {
	// Outside quotes only single tokens pass; a token that turns a number
	// into a selector still changes the tree's shape.
	_, err := Render(`sum(x) > {{args.threshold}}`, map[string]string{"threshold": "up"})
	if !errors.Is(err, ErrUnsafeArgument) {
		t.Errorf("want ErrUnsafeArgument, got %v", err)
	}
	if _, err := Render(`sum(x) > {{args.threshold}}`, map[string]string{"threshold": "0.99"}); err != nil {
		t.Errorf("a number: %v", err)
	}
}
