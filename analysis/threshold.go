package analysis

import (
	"math"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/parser"
)

// Threshold is the number a condition holds a metric's one value against,
// and how: result Op Value.
type Threshold struct {
	Op    string // <, <=, > or >=
	Value float64
}

// ThresholdOf reads the threshold of a condition that compares the one
// value of a result with a number: `result[0] >= 0.99`, `result < 500`, or
// the same with the number first. Any other condition (several
// comparisons, functions, arguments) has no threshold that one number
// could show, and ok is false.
func ThresholdOf(cond string) (t Threshold, ok bool) {
	tree, err := parser.Parse(cond)
	if err != nil {
		return Threshold{}, false
	}
	b, isBinary := tree.Node.(*ast.BinaryNode)
	if !isBinary {
		return Threshold{}, false
	}
	mirrored := map[string]string{"<": ">", "<=": ">=", ">": "<", ">=": "<="}
	if _, comparison := mirrored[b.Operator]; !comparison {
		return Threshold{}, false
	}
	if v, isNumber := number(b.Right); isNumber && isResultValue(b.Left) {
		return Threshold{Op: b.Operator, Value: v}, true
	}
	if v, isNumber := number(b.Left); isNumber && isResultValue(b.Right) {
		return Threshold{Op: mirrored[b.Operator], Value: v}, true
	}
	return Threshold{}, false
}

// isResultValue: result itself (a scalar) or result[0].
func isResultValue(n ast.Node) bool {
	if id, ok := n.(*ast.IdentifierNode); ok {
		return id.Value == "result"
	}
	m, ok := n.(*ast.MemberNode)
	if !ok {
		return false
	}
	id, isID := m.Node.(*ast.IdentifierNode)
	i, isInt := m.Property.(*ast.IntegerNode)
	return isID && id.Value == "result" && isInt && i.Value == 0
}

// number is the value of a numeric literal, signed or not.
func number(n ast.Node) (float64, bool) {
	switch n := n.(type) {
	case *ast.IntegerNode:
		return float64(n.Value), true
	case *ast.FloatNode:
		return n.Value, !math.IsInf(n.Value, 0) && !math.IsNaN(n.Value)
	case *ast.UnaryNode:
		v, ok := number(n.Node)
		switch {
		case ok && n.Operator == "-":
			return -v, true
		case ok && n.Operator == "+":
			return v, true
		}
	}
	return 0, false
}
