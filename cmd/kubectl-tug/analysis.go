package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/tugboatdev/tugboat/analysis"
	"github.com/tugboatdev/tugboat/analysis/prometheus"
	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

func newAnalysisCmd(o *options) *cobra.Command {
	cmd := &cobra.Command{Use: "analysis", Short: "Work with analysis templates"}
	var (
		file, address, output string
		args                  []string
	)
	run := &cobra.Command{
		Use:   "run -f TEMPLATE [--arg NAME=VALUE]...",
		Short: "Evaluate a template once and show the resolved queries, values and verdicts",
		Long: `Evaluate an AnalysisTemplate (or ClusterAnalysisTemplate, or an Argo Rollouts
one) once, now, against Prometheus, as the controller would for one
measurement: each metric's resolved query, value, phase and why. For people
writing templates. Exits 1 when a metric is not Successful.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "" && output != "json" {
				return fmt.Errorf("-o: want json, got %q", output)
			}
			raw, err := os.ReadFile(file)
			if err != nil {
				return err
			}
			given, err := parseArgs(args)
			if err != nil {
				return err
			}
			results, err := evaluate(cmd.Context(), raw, given, address, time.Now())
			if err != nil {
				return err
			}
			if err := printEvaluation(o.streams.Out, results, output); err != nil {
				return err
			}
			for _, r := range results {
				if r.Phase != argo.AnalysisPhaseSuccessful {
					return &exitError{code: 1, err: fmt.Errorf("metric %s is %s", r.Metric, r.Phase)}
				}
			}
			return nil
		},
	}
	run.Flags().StringVarP(&file, "filename", "f", "", "the template's YAML file")
	run.Flags().StringArrayVar(&args, "arg", nil, "an argument, NAME=VALUE (repeatable)")
	run.Flags().StringVar(&address, "prometheus", "", "Prometheus for metrics that name no address")
	run.Flags().StringVarP(&output, "output", "o", "", "json for a machine-readable result")
	_ = run.MarkFlagRequired("filename")
	cmd.AddCommand(run)
	return cmd
}

// evaluation is one metric's measurement.
type evaluation struct {
	Metric  string             `json:"metric"`
	Query   string             `json:"query"`
	Value   string             `json:"value"`
	Phase   argo.AnalysisPhase `json:"phase"`
	Message string             `json:"message"`
}

func parseArgs(args []string) ([]argo.Argument, error) {
	var out []argo.Argument
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--arg %q: want NAME=VALUE", a)
		}
		out = append(out, argo.Argument{Name: k, Value: &v})
	}
	return out, nil
}

// evaluate measures every metric of the template in raw once, at ts.
func evaluate(ctx context.Context, raw []byte, given []argo.Argument, address string, ts time.Time) ([]evaluation, error) {
	var t v1alpha1.AnalysisTemplate // the spec is the same for every kind
	if err := yaml.Unmarshal(raw, &t); err != nil {
		return nil, fmt.Errorf("read template: %w", err)
	}
	spec, err := analysis.RunSpec([]v1alpha1.AnalysisTemplateSpec{t.Spec}, given)
	if err != nil {
		return nil, err
	}
	values := map[string]string{}
	for _, a := range spec.Args {
		if a.Value == nil {
			return nil, fmt.Errorf("argument %q comes from a Secret; pass its value with --arg %s=...", a.Name, a.Name)
		}
		values[a.Name] = *a.Value
	}
	// Run by a person on their own machine: local servers are fair game.
	p := &prometheus.Provider{DefaultAddress: address, Guard: prometheus.Guard{AllowLoopback: true}}
	var out []evaluation
	for _, m := range spec.Metrics {
		if m.Provider.Prometheus == nil {
			return nil, errors.New("metric " + m.Name + ": provider.prometheus is required")
		}
		e := evaluation{Metric: m.Name}
		prom := *m.Provider.Prometheus
		e.Query, err = analysis.Render(prom.Query, values)
		if err == nil && prom.RangeQuery != nil {
			var rq v1alpha1.PrometheusRangeQuery
			rq, err = analysis.RenderRange(*prom.RangeQuery, values)
			prom.RangeQuery = &rq
		}
		if err != nil {
			e.Phase, e.Message = argo.AnalysisPhaseError, err.Error()
			out = append(out, e)
			continue
		}
		s := p.Measure(ctx, "", &prom, e.Query, ts)
		e.Phase, e.Value, e.Message = analysis.Judge(m, s, values)
		out = append(out, e)
	}
	return out, nil
}

func printEvaluation(out io.Writer, results []evaluation, format string) error {
	if format == "json" {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false) // conditions hold > and <
		return enc.Encode(results)
	}
	for _, r := range results {
		fmt.Fprintf(out, "metric %s\n  query:   %s\n", r.Metric, strings.Join(strings.Fields(r.Query), " "))
		w := tabwriter.NewWriter(out, 0, 4, 1, ' ', 0)
		fmt.Fprintf(w, "  value:\t%s\n  phase:\t%s\n  why:\t%s\n", orDash(r.Value), r.Phase, orDash(r.Message))
		if err := w.Flush(); err != nil {
			return err
		}
	}
	return nil
}
