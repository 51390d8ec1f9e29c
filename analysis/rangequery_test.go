package analysis

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

func TestRenderRange(t *testing.T) {
	args := map[string]string{"lookback": "5m", "step": "30s", "hostile": `5m") - duration("1h`, "quote": `it's"`}
	tests := []struct {
		name    string
		q       v1alpha1.PrometheusRangeQuery
		want    v1alpha1.PrometheusRangeQuery
		wantErr string
		unsafe  bool
	}{{
		name: "Argo's example",
		q:    v1alpha1.PrometheusRangeQuery{Start: `now() - duration("{{args.lookback}}")`, End: "now()", Step: "1m"},
		want: v1alpha1.PrometheusRangeQuery{Start: `now() - duration("5m")`, End: "now()", Step: "1m"},
	}, {
		name: "single quotes, spaces in the placeholder, and an argument as the step",
		q:    v1alpha1.PrometheusRangeQuery{Start: `now() - duration('{{ args.lookback }}')`, End: "now()", Step: "{{args.step}}"},
		want: v1alpha1.PrometheusRangeQuery{Start: `now() - duration('5m')`, End: "now()", Step: "30s"},
	}, {
		name:    "a value that closes the string stays inside it",
		q:       v1alpha1.PrometheusRangeQuery{Start: `now() - duration("{{args.hostile}}")`, End: "now()", Step: "1m"},
		wantErr: `in duration "5m\") - duration(\"1h"`,
	}, {
		name:    "quotes of both kinds stay inside a single-quoted string",
		q:       v1alpha1.PrometheusRangeQuery{Start: `now() - duration('{{args.quote}}')`, End: "now()", Step: "1m"},
		wantErr: `invalid duration "it's\""`,
	}, {
		name:    "an argument outside a string",
		q:       v1alpha1.PrometheusRangeQuery{Start: `now() - {{args.lookback}}`, End: "now()", Step: "1m"},
		wantErr: `argument "lookback" must stand inside a string`,
		unsafe:  true,
	}, {
		name:    "an argument in a comment is outside a string",
		q:       v1alpha1.PrometheusRangeQuery{Start: `now() // "{{args.lookback}}"`, End: "now()", Step: "1m"},
		wantErr: "must stand inside a string",
		unsafe:  true,
	}, {
		name:    "an argument without a value",
		q:       v1alpha1.PrometheusRangeQuery{Start: `now() - duration("{{args.missing}}")`, End: "now()", Step: "{{args.gone}}"},
		wantErr: `argument "missing" has no value`,
	}, {
		name:    "a function other than now and duration",
		q:       v1alpha1.PrometheusRangeQuery{Start: `date("2020-01-01")`, End: "now()", Step: "1m"},
		wantErr: `rangeQuery.start "date(\"2020-01-01\")": unknown name date`,
	}, {
		name:    "an expression that is not a time",
		q:       v1alpha1.PrometheusRangeQuery{Start: `duration("5m")`, End: "now()", Step: "1m"},
		wantErr: "want a time",
	}, {
		name:    "a syntax error",
		q:       v1alpha1.PrometheusRangeQuery{Start: `now() -`, End: "now()", Step: "1m"},
		wantErr: `rangeQuery.start "now() -" does not parse`,
	}, {
		name:    "end before start",
		q:       v1alpha1.PrometheusRangeQuery{Start: "now()", End: `now() - duration("5m")`, Step: "1m"},
		wantErr: "end (now() - duration(\"5m\")) is 5m0s before start (now())",
	}, {
		name:    "a step that is not a duration",
		q:       v1alpha1.PrometheusRangeQuery{Start: "now()", End: "now()", Step: "{{args.lookback}}{{args.lookback}}x"},
		wantErr: `rangeQuery.step "5m5mx" is not a duration`,
	}, {
		name:    "a step of zero",
		q:       v1alpha1.PrometheusRangeQuery{Start: "now()", End: "now()", Step: "0s"},
		wantErr: "rangeQuery.step 0s must be positive",
	}, {
		name:    "too many points",
		q:       v1alpha1.PrometheusRangeQuery{Start: `now() - duration("24h")`, End: "now()", Step: "1s"},
		wantErr: "24h0m0s in steps of 1s is 86400 points per series, more than Prometheus's 11000",
	}, {
		name: "exactly the most points",
		q:    v1alpha1.PrometheusRangeQuery{Start: `now() - duration("11000s")`, End: "now()", Step: "1s"},
		want: v1alpha1.PrometheusRangeQuery{Start: `now() - duration("11000s")`, End: "now()", Step: "1s"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := RenderRange(tt.q, args)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				if errors.Is(err, ErrUnsafeArgument) != tt.unsafe {
					t.Errorf("errors.Is(%v, ErrUnsafeArgument) = %v", err, !tt.unsafe)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("rendered (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRangeAt: now() is the measurement's moment, never the wall clock.
func TestRangeAt(t *testing.T) {
	ts := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	got, err := RangeAt(v1alpha1.PrometheusRangeQuery{Start: `now() - duration("1h") - duration("30m")`, End: `now() - duration("1m")`, Step: "1m"}, ts)
	if err != nil {
		t.Fatal(err)
	}
	want := Range{Start: ts.Add(-90 * time.Minute), End: ts.Add(-time.Minute), Step: time.Minute}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("range (-want +got):\n%s", diff)
	}
	if _, err := RangeAt(v1alpha1.PrometheusRangeQuery{Start: `now() - duration("{{args.lookback}}")`, End: "now()", Step: "1m"}, ts); err == nil || !strings.Contains(err.Error(), "not rendered") {
		t.Errorf("unrendered arguments: %v", err)
	}
}
