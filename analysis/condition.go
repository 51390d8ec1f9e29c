package analysis

import (
	"fmt"
	"math"
	"strconv"

	"github.com/expr-lang/expr"
)

// evalCondition evaluates a success or failure condition over result, with
// Argo Rollouts' helper functions.
func evalCondition(cond string, result any, args map[string]string) (bool, error) {
	env := map[string]any{
		"result":  result,
		"args":    args,
		"asInt":   asInt,
		"asFloat": asFloat,
		"isNaN":   math.IsNaN,
		"isInf":   func(f float64) bool { return math.IsInf(f, 0) },
		"isNil":   func(v any) bool { return v == nil },
		"default": func(v, d any) any {
			if v == nil {
				return d
			}
			return v
		},
	}
	prog, err := expr.Compile(cond, expr.Env(env), expr.AsBool())
	if err != nil {
		return false, fmt.Errorf("condition %q: %w", cond, err)
	}
	out, err := expr.Run(prog, env)
	if err != nil {
		return false, fmt.Errorf("condition %q: %w", cond, err)
	}
	return out.(bool), nil
}

func asInt(v any) (int64, error) {
	switch v := v.(type) {
	case string:
		return strconv.ParseInt(v, 10, 64)
	case float64:
		return int64(v), nil
	case int:
		return int64(v), nil
	case int64:
		return v, nil
	}
	return 0, fmt.Errorf("asInt: cannot convert %T", v)
}

func asFloat(v any) (float64, error) {
	switch v := v.(type) {
	case string:
		return strconv.ParseFloat(v, 64)
	case float64:
		return v, nil
	case int:
		return float64(v), nil
	case int64:
		return float64(v), nil
	}
	return 0, fmt.Errorf("asFloat: cannot convert %T", v)
}
