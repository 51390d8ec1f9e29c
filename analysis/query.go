package analysis

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/prometheus/prometheus/promql/parser"
)

// ErrUnsafeArgument marks an argument whose value would change the structure
// of the query it is substituted into. The query is not sent.
var ErrUnsafeArgument = errors.New("argument would change the query's structure")

var placeholder = regexp.MustCompile(`\{\{\s*args\.([A-Za-z0-9_.-]+)\s*\}\}`)

// Render substitutes {{args.NAME}} in a PromQL query. Inside a string
// literal the value is escaped as PromQL reads strings; elsewhere (a range
// such as [{{args.window}}], a number) it must be a single token. The query
// is then parsed twice, with the values and with inert stand-ins, and the two
// trees must match in everything but the literal values: the same
// functions, operators, metric names, label matchers and modifiers.
func Render(query string, args map[string]string) (string, error) {
	withValues, err := substitute(query, args)
	if err != nil {
		return "", err
	}
	inert := map[string]string{}
	for _, m := range placeholder.FindAllStringSubmatch(query, -1) {
		inert[m[1]] = "1" // a label value, a number and a duration alike
	}
	withInert, err := substitute(query, inert)
	if err != nil {
		return "", err
	}
	p := parser.NewParser(parser.Options{})
	got, err := p.ParseExpr(withValues)
	if err != nil {
		return "", fmt.Errorf("rendered query does not parse: %w", err)
	}
	want, err := p.ParseExpr(withInert)
	if err != nil {
		return "", fmt.Errorf("query template does not parse: %w", err)
	}
	if a, b := shape(want), shape(got); a != b {
		return "", fmt.Errorf("%w: the template has %s, the rendered query %s", ErrUnsafeArgument, a, b)
	}
	return withValues, nil
}

// ArgNames are the names of the arguments a template text refers to.
func ArgNames(text string) []string {
	var names []string
	for _, m := range placeholder.FindAllStringSubmatch(text, -1) {
		names = append(names, m[1])
	}
	return names
}

// Shown is query with args substituted for display only, never to be sent:
// the structure is not checked, and a placeholder whose value does not fit
// is left out.
func Shown(query string, args map[string]string) string {
	s, _ := substitute(query, args)
	return s
}

// substitute replaces each placeholder, escaping by where it stands.
func substitute(query string, args map[string]string) (string, error) {
	var b strings.Builder
	var errs []error
	last := 0
	for _, loc := range placeholder.FindAllStringSubmatchIndex(query, -1) {
		name := query[loc[2]:loc[3]]
		v, ok := args[name]
		if !ok {
			errs = append(errs, fmt.Errorf("argument %q has no value", name))
			continue
		}
		b.WriteString(query[last:loc[0]])
		if quote, at := promqlSyntax.openQuoteAt(query[:loc[0]]); quote != 0 {
			if regexMatcher(query[:at]) {
				// A value in a =~ or !~ matcher is matched as it is: ".*"
				// selects a series named .*, not every series.
				v = regexp.QuoteMeta(v)
			}
			b.WriteString(escape(v, quote))
		} else if !token.MatchString(v) {
			errs = append(errs, fmt.Errorf("%w: argument %q outside quotes must be a single name, number or duration, got %q", ErrUnsafeArgument, name, v))
		} else {
			b.WriteString(v)
		}
		last = loc[1]
	}
	b.WriteString(query[last:])
	return b.String(), errors.Join(errs...)
}

var token = regexp.MustCompile(`^[A-Za-z0-9_.:]+$`)

// syntax is what a language's quote scanner must know: which comments hide
// quotes. PromQL has # to the end of the line; expr has // and /* */.
type syntax struct {
	line  string // starts a comment to the end of the line
	block bool   // /* ... */ comments
}

var (
	promqlSyntax = syntax{line: "#"}
	exprSyntax   = syntax{line: "//", block: true}
)

// regexMatcher reports whether a string literal that starts right after
// prefix is the value of a regular-expression label matcher.
func regexMatcher(prefix string) bool {
	p := strings.TrimRight(prefix, " \t\r\n")
	return strings.HasSuffix(p, "=~") || strings.HasSuffix(p, "!~")
}

// openQuote returns the quote character of the string literal that prefix
// ends inside, or 0 when it ends outside one (or inside a comment, which a
// value cannot leave either).
func (s syntax) openQuote(prefix string) byte {
	q, _ := s.openQuoteAt(prefix)
	return q
}

// openQuoteAt is openQuote with the index at which the literal opened.
func (s syntax) openQuoteAt(prefix string) (byte, int) {
	var q byte
	at := -1
	for i := 0; i < len(prefix); i++ {
		c := prefix[i]
		switch {
		case q == 0 && strings.HasPrefix(prefix[i:], s.line):
			for i < len(prefix) && prefix[i] != '\n' {
				i++
			}
		case q == 0 && s.block && strings.HasPrefix(prefix[i:], "/*"):
			end := strings.Index(prefix[i+2:], "*/")
			if end < 0 {
				return 0, -1
			}
			i += end + 3
		case q == 0 && (c == '"' || c == '\'' || c == '`'):
			q, at = c, i
		case q != 0 && c == '\\' && q != '`':
			i++
		case q != 0 && c == q:
			q, at = 0, -1
		}
	}
	return q, at
}

// escape makes v safe inside a PromQL string literal opened by quote.
func escape(v string, quote byte) string {
	if quote == '`' {
		// Raw strings have no escapes; a backquote would end the literal.
		return strings.ReplaceAll(v, "`", "")
	}
	q := strconv.Quote(v) // Go's escapes are PromQL's
	q = q[1 : len(q)-1]
	if quote == '\'' {
		q = strings.ReplaceAll(strings.ReplaceAll(q, `\"`, `"`), `'`, `\'`)
	}
	return q
}

// shape describes a parsed query with its literal values left out.
func shape(e parser.Expr) string {
	var b strings.Builder
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		switch n := n.(type) {
		case *parser.VectorSelector:
			fmt.Fprintf(&b, "selector(%s offset=%v at=%v", n.Name, n.OriginalOffset != 0, n.Timestamp != nil || n.StartOrEnd != 0)
			for _, m := range n.LabelMatchers {
				if m.Name == "__name__" {
					continue
				}
				fmt.Fprintf(&b, " %s%s", m.Name, m.Type)
			}
			b.WriteString(")")
		case *parser.NumberLiteral, *parser.StringLiteral:
			b.WriteString("literal ")
		default:
			fmt.Fprintf(&b, "%T ", n)
			if c, ok := n.(*parser.Call); ok {
				b.WriteString(c.Func.Name + " ")
			}
			if a, ok := n.(*parser.AggregateExpr); ok {
				fmt.Fprintf(&b, "%s by%v without=%v ", a.Op, a.Grouping, a.Without)
			}
			if bin, ok := n.(*parser.BinaryExpr); ok {
				fmt.Fprintf(&b, "%s bool=%v ", bin.Op, bin.ReturnBool)
				if vm := bin.VectorMatching; vm != nil {
					fmt.Fprintf(&b, "match(%v on=%v %v include=%v) ", vm.Card, vm.On, vm.MatchingLabels, vm.Include)
				}
			}
			if sq, ok := n.(*parser.SubqueryExpr); ok {
				fmt.Fprintf(&b, "offset=%v at=%v ", sq.OriginalOffset != 0, sq.Timestamp != nil || sq.StartOrEnd != 0)
			}
		}
		return nil
	})
	return strings.TrimSpace(b.String())
}

// Masked is values with those of Secret arguments replaced by mask.
func Masked(values map[string]string, secret map[string]bool, mask string) map[string]string {
	out := make(map[string]string, len(values))
	for k, v := range values {
		if secret[k] {
			v = mask
		}
		out[k] = v
	}
	return out
}
