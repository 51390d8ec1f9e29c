package analysis

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestThresholdOf(t *testing.T) {
	tests := []struct {
		name string
		cond string
		want Threshold
		ok   bool
	}{
		{name: "first value at least", cond: "result[0] >= 0.99", want: Threshold{Op: ">=", Value: 0.99}, ok: true},
		{name: "scalar below an integer", cond: "result < 500", want: Threshold{Op: "<", Value: 500}, ok: true},
		{name: "number first is mirrored", cond: "0.5 < result[0]", want: Threshold{Op: ">", Value: 0.5}, ok: true},
		{name: "negative number", cond: "result[0] > -1", want: Threshold{Op: ">", Value: -1}, ok: true},
		{name: "spaces and parentheses", cond: " ( result[0] <= 2.5 ) ", want: Threshold{Op: "<=", Value: 2.5}, ok: true},
		{name: "another element", cond: "result[1] >= 0.99"},
		{name: "two comparisons", cond: "result[0] >= 0.99 && result[0] < 2"},
		{name: "equality is no threshold", cond: "result[0] == 1"},
		{name: "an argument", cond: "result[0] >= asFloat(args.min)"},
		{name: "a function of result", cond: "all(result, {# >= 0.99})"},
		{name: "two results", cond: "result[0] >= result[0]"},
		{name: "not an expression", cond: "result[0] >="},
		{name: "empty", cond: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ThresholdOf(tt.cond)
			if ok != tt.ok {
				t.Fatalf("ThresholdOf(%q) ok = %v, want %v", tt.cond, ok, tt.ok)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ThresholdOf(%q) (-want +got):\n%s", tt.cond, diff)
			}
		})
	}
}
