// Package monitoring reads the PromQL that Tugboat's Grafana dashboard
// (config/grafana/tugboat.json) and alerting rules
// (config/prometheus/tugboat-rules.yaml) ask of the controller's metrics, so
// that tests can check each series they name is served.
package monitoring

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/prometheus/prometheus/promql/parser"
	"sigs.k8s.io/yaml"
)

// Expr is a PromQL expression and where it was found.
type Expr struct{ Where, Query string }

// DashboardFile and RulesFile are the files' paths under the repository root.
var (
	DashboardFile = filepath.Join("config", "grafana", "tugboat.json")
	RulesFile     = filepath.Join("config", "prometheus", "tugboat-rules.yaml")
)

// grafanaVariables are the dashboard's variables, put in as Grafana would.
var grafanaVariables = strings.NewReplacer("$__rate_interval", "5m", "$__range", "6h", "$__interval", "30s", "$namespace", ".*", "$rollout", ".*")

// Dashboard returns the queries of the dashboard under root: its panels'
// targets, annotations and variables. It fails on a file that is not JSON, a
// schema older than Grafana 9's, or a panel without a query.
func Dashboard(root string) ([]Expr, error) {
	raw, err := os.ReadFile(filepath.Join(root, DashboardFile))
	if err != nil {
		return nil, err
	}
	type target struct {
		Expr string `json:"expr"`
	}
	var d struct {
		SchemaVersion int `json:"schemaVersion"`
		Panels        []struct {
			Title   string   `json:"title"`
			Type    string   `json:"type"`
			Targets []target `json:"targets"`
		} `json:"panels"`
		Annotations struct {
			List []struct {
				Name string `json:"name"`
				Expr string `json:"expr"`
			} `json:"list"`
		} `json:"annotations"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Type  string `json:"type"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		return nil, fmt.Errorf("%s: %w", DashboardFile, err)
	}
	var errs []error
	if d.SchemaVersion < 36 {
		errs = append(errs, fmt.Errorf("%s: schemaVersion %d, older than Grafana 9's", DashboardFile, d.SchemaVersion))
	}
	var out []Expr
	for _, p := range d.Panels {
		if p.Type != "row" && len(p.Targets) == 0 {
			errs = append(errs, fmt.Errorf("%s: panel %q has no query", DashboardFile, p.Title))
		}
		for i, tg := range p.Targets {
			out = append(out, Expr{fmt.Sprintf("dashboard panel %q target %d", p.Title, i), grafanaVariables.Replace(tg.Expr)})
		}
	}
	for _, a := range d.Annotations.List {
		if a.Expr != "" {
			out = append(out, Expr{fmt.Sprintf("dashboard annotation %q", a.Name), grafanaVariables.Replace(a.Expr)})
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		q, _ := v.Query.(map[string]any)
		s, _ := q["query"].(string)
		// label_values(SELECTOR, LABEL): the selector is PromQL.
		inner, ok := strings.CutPrefix(s, "label_values(")
		i := strings.LastIndex(inner, ",")
		if !ok || i < 0 {
			errs = append(errs, fmt.Errorf("%s: variable %s: query %q is not label_values(selector, label)", DashboardFile, v.Name, s))
			continue
		}
		out = append(out, Expr{fmt.Sprintf("dashboard variable %s", v.Name), grafanaVariables.Replace(inner[:i])})
	}
	return out, errors.Join(errs...)
}

// Rules returns the expressions of the alerting rules under root.
func Rules(root string) ([]Expr, error) {
	raw, err := os.ReadFile(filepath.Join(root, RulesFile))
	if err != nil {
		return nil, err
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `json:"alert"`
				Expr  string `json:"expr"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := yaml.Unmarshal(raw, &rules); err != nil {
		return nil, fmt.Errorf("%s: %w", RulesFile, err)
	}
	var out []Expr
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			out = append(out, Expr{"alert " + r.Alert, r.Expr})
		}
	}
	return out, nil
}

// Selectors are the series selectors of e, read from its parse tree; an
// expression that does not parse or selects nothing is an error.
func Selectors(e Expr) ([]*parser.VectorSelector, error) {
	node, err := parser.NewParser(parser.Options{}).ParseExpr(e.Query)
	if err != nil {
		return nil, fmt.Errorf("%s: %q: %w", e.Where, e.Query, err)
	}
	var out []*parser.VectorSelector
	parser.Inspect(node, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			out = append(out, vs)
		}
		return nil
	})
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: %q selects no series", e.Where, e.Query)
	}
	return out, nil
}
