package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	promconfig "github.com/prometheus/common/config"
	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/tugboatdev/tugboat/analysis"
	"github.com/tugboatdev/tugboat/analysis/prometheus"
	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

func newAnalysisCmd(o *options) *cobra.Command {
	cmd := &cobra.Command{Use: "analysis", Short: "Work with analysis templates"}
	var (
		file    string
		out     *output
		args    []string
		secrets bool
		prom    prometheusFlags

		replayFrom, replayTo string
	)
	run := &cobra.Command{
		Use:   "run -f TEMPLATE [--arg NAME=VALUE]...",
		Short: "Evaluate a template once and show the resolved queries, values and verdicts",
		Long: `Evaluate an AnalysisTemplate (or ClusterAnalysisTemplate, or an Argo Rollouts
one) once, now, against Prometheus, as the controller would for one
measurement: each metric's resolved query, value, phase and why. For people
writing templates. Exits 1 when a metric is not Successful, and 4 when the
template could not be evaluated (bad flags, a file that does not parse).

With --replay-from, the template is replayed over past data instead: each
metric measured as a run started then would have (initialDelay, interval,
count, limits), up to its verdict or --replay-to, with each measurement
shown. Exits 0 when the replayed run succeeds, 1 when it fails, errs or is
inconclusive, 2 when it is still running at --replay-to, and 4 when it could
not be replayed (a stretch that would take more than 1,000 measurements of a
metric is refused).

Arguments come from --arg, Secret arguments included (their values are
never read from the cluster, and are masked in what is printed). With
--secrets, the Secrets a metric names for authentication or tls are read
from the namespace (-n) with your kubeconfig; as in the controller,
credentials go only to --prometheus.

-o json or yaml prints the evaluation (a list: each metric's query, value,
phase and message) or the replay (its phase, the stretch, and each metric's
measurements), with the same exit codes.`,
		Example: `  kubectl tug analysis run -f template.yaml --arg workload=web --prometheus http://localhost:9090
  kubectl tug analysis run -f template.yaml --arg workload=web --prometheus http://localhost:9090 -o json
  kubectl tug analysis run -f template.yaml --arg workload=web --prometheus http://localhost:9090 --replay-from 2h -o yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := o.loadTemplate(file, args)
			if err != nil {
				return err
			}
			p, namespace, err := prom.provider(o, secrets)
			if err != nil {
				return err
			}
			now := time.Now()
			if replayFrom != "" {
				return replay(cmd.Context(), o.streams.Out, t, p, namespace, replayFrom, replayTo, now, out)
			}
			if replayTo != "" {
				return errors.New("--replay-to needs --replay-from")
			}
			results := evaluate(cmd.Context(), t, p, namespace, now)
			if err := printEvaluation(o.streams.Out, results, out); err != nil {
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
	run.Flags().StringVarP(&file, "filename", "f", "", "the template's YAML file (- for stdin)")
	run.Flags().StringArrayVar(&args, "arg", nil, "an argument, NAME=VALUE (repeatable)")
	prom.register(run)
	run.Flags().StringVar(&replayFrom, "replay-from", "", "replay the template as a run started then (RFC 3339, or a duration ago such as 2h) would have measured it")
	run.Flags().StringVar(&replayTo, "replay-to", "", "end of the replay (RFC 3339, or a duration ago; default now)")
	run.Flags().BoolVar(&secrets, "secrets", false, "read the Secrets metrics name for authentication and tls from the namespace, with your kubeconfig")
	out = outputFlag(run, "json", "yaml")
	_ = run.MarkFlagRequired("filename")
	cmd.AddCommand(run, newCalibrateCmd(o))
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

// prometheusFlags are where and how to reach the default Prometheus.
type prometheusFlags struct {
	address string
	tls     promconfig.TLSConfig
}

// register adds the flags that set f to cmd.
func (f *prometheusFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.address, "prometheus", "", "Prometheus for metrics that name no address")
	cmd.Flags().StringVar(&f.tls.CAFile, "prometheus-ca-file", "", "CA (PEM) that --prometheus's certificate must chain to, instead of the system's roots")
	cmd.Flags().StringVar(&f.tls.CertFile, "prometheus-cert-file", "", "client certificate (PEM) presented to --prometheus")
	cmd.Flags().StringVar(&f.tls.KeyFile, "prometheus-key-file", "", "key (PEM) of --prometheus-cert-file")
	cmd.Flags().StringVar(&f.tls.ServerName, "prometheus-server-name", "", "name --prometheus's certificate must hold, when it is not the address's host")
}

// provider measures as the controller does, run by a person on their own
// machine (so local servers, and any address a template names, are fair
// game), and reads Secrets from namespace when allowed to.
func (f prometheusFlags) provider(o *options, secrets bool) (*prometheus.Provider, string, error) {
	if err := prometheus.CheckDefaultTLS(f.address, f.tls); err != nil {
		return nil, "", err
	}
	p := &prometheus.Provider{DefaultAddress: f.address, DefaultTLS: f.tls, Guard: prometheus.Guard{AllowLoopback: true, AllowedHosts: []string{"*"}}}
	if !secrets {
		p.Credentials = func(_ context.Context, _, name string) (map[string][]byte, error) {
			return nil, fmt.Errorf("reading Secret %s needs --secrets", name)
		}
		return p, "", nil
	}
	c, namespace, err := o.client()
	if err != nil {
		return nil, "", err
	}
	p.Credentials = prometheus.CredentialsFrom(c)
	return p, namespace, nil
}

// loadTemplate reads the template -f names, with the --arg values given.
func (o *options) loadTemplate(file string, args []string) (template, error) {
	raw, err := o.readFile(file)
	if err != nil {
		return template{}, err
	}
	given, err := parseArgs(args)
	if err != nil {
		return template{}, err
	}
	return load(raw, given)
}

// load reads the template in raw and resolves its arguments from given.
func load(raw []byte, given []argo.Argument) (template, error) {
	var at v1alpha1.AnalysisTemplate // the spec is the same for every kind
	if err := yaml.Unmarshal(raw, &at); err != nil {
		return template{}, fmt.Errorf("read template: %w", err)
	}
	spec, err := analysis.RunSpec([]v1alpha1.AnalysisTemplateSpec{at.Spec}, given)
	if err != nil {
		return template{}, err
	}
	secret := map[string]bool{}
	t := template{spec: spec, values: map[string]string{}, secret: secret}
	for _, a := range at.Spec.Args {
		secret[a.Name] = a.ValueFrom != nil && a.ValueFrom.SecretKeyRef != nil
	}
	for _, a := range spec.Args {
		if a.Value == nil {
			return template{}, fmt.Errorf("argument %q comes from a Secret; pass its value with --arg %s=...", a.Name, a.Name)
		}
		t.values[a.Name] = *a.Value
	}
	t.shownValues = analysis.Masked(t.values, secret, "REDACTED")
	for _, m := range spec.Metrics {
		if m.Provider.Prometheus == nil && m.Provider.Judge == nil && m.Provider.BurnRate == nil {
			return template{}, errors.New("metric " + m.Name + ": only Prometheus, judge and burnRate metrics run here; a web or job metric measures the world as it is now, which has no history to replay")
		}
	}
	return t, nil
}

// template is a template read from a file, its arguments resolved.
type template struct {
	spec   v1alpha1.AnalysisRunSpec
	values map[string]string
	// shownValues are the values as printed: those of arguments the
	// template reads from Secrets are masked, as the controller masks them.
	shownValues map[string]string
	// secret names the arguments the template reads from Secrets.
	secret map[string]bool
}

// measure measures a rendered metric as the controller does: a query
// holding Secret values is never sent as a GET, whose URL proxies log.
func (t template) measure(ctx context.Context, p *prometheus.Provider, namespace string, m v1alpha1.Metric, prom *v1alpha1.PrometheusMetric, query string, ts time.Time) analysis.Sample {
	for name := range t.secret {
		if t.secret[name] && slices.Contains(analysis.ArgNames(m.Provider.Prometheus.Query), name) {
			return p.MeasureSecret(ctx, namespace, prom, query, ts)
		}
	}
	return p.Measure(ctx, namespace, prom, query, ts)
}

// shown is a metric's query as printed.
func (t template) shown(m v1alpha1.Metric) string {
	if m.Provider.Judge != nil {
		return analysis.ShownJudge(*m.Provider.Judge, t.shownValues)
	}
	if m.Provider.BurnRate != nil {
		return analysis.ShownBurnRate(*m.Provider.BurnRate, t.shownValues)
	}
	return analysis.Shown(m.Provider.Prometheus.Query, t.shownValues)
}

// measureJudge measures a judge metric as the controller does, in a run
// started at started: its queries, rendered, through the provider.
func (t template) measureJudge(ctx context.Context, p *prometheus.Provider, namespace string, m v1alpha1.Metric, started, ts time.Time) analysis.Sample {
	req, err := (analysis.Args{Values: t.values, Secret: t.secret}).RenderJudge(*m.Provider.Judge)
	if err != nil {
		return analysis.Sample{Err: err}
	}
	return analysis.MeasureJudge(m, req, started, ts, send(ctx, p, namespace, req.Secret, ts))
}

// measureBurnRate measures a burn-rate metric at ts as the controller
// does: its queries, rendered for each window, through the provider.
func (t template) measureBurnRate(ctx context.Context, p *prometheus.Provider, namespace string, m v1alpha1.Metric, ts time.Time) analysis.Sample {
	req, err := (analysis.Args{Values: t.values, Secret: t.secret}).RenderBurnRate(*m.Provider.BurnRate)
	if err != nil {
		return analysis.Sample{Err: err}
	}
	return analysis.MeasureBurnRate(m, req, send(ctx, p, namespace, req.Secret, ts))
}

// send sends one query at ts through the provider; one holding Secret
// values never as a GET.
func send(ctx context.Context, p *prometheus.Provider, namespace string, secret bool, ts time.Time) func(prom *v1alpha1.PrometheusMetric, query string) analysis.Sample {
	return func(prom *v1alpha1.PrometheusMetric, query string) analysis.Sample {
		if secret {
			return p.MeasureSecret(ctx, namespace, prom, query, ts)
		}
		return p.Measure(ctx, namespace, prom, query, ts)
	}
}

// rendered is a metric's Prometheus query with the arguments in place.
func rendered(m v1alpha1.Metric, t template) (v1alpha1.PrometheusMetric, string, error) {
	return prometheus.Rendered(m, analysis.Args{Values: t.values, Secret: t.secret})
}

// evaluate measures every metric of spec once, at ts, with Secrets for
// authentication and tls read from namespace.
func evaluate(ctx context.Context, t template, p *prometheus.Provider, namespace string, ts time.Time) []evaluation {
	var out []evaluation
	for _, m := range t.spec.Metrics {
		e := evaluation{Metric: m.Name}
		if m.Provider.Judge != nil {
			// Measured once, as a run's first measurement: the lookback.
			e.Query = t.shown(m)
			e.Phase, e.Value, e.Message = analysis.Judge(m, t.measureJudge(ctx, p, namespace, m, ts, ts), t.values)
			out = append(out, e)
			continue
		}
		if m.Provider.BurnRate != nil {
			e.Query = t.shown(m)
			e.Phase, e.Value, e.Message = analysis.Judge(m, t.measureBurnRate(ctx, p, namespace, m, ts), t.values)
			out = append(out, e)
			continue
		}
		prom, query, err := rendered(m, t)
		if err == nil {
			e.Query = t.shown(m)
		}
		if err != nil {
			e.Phase, e.Message = argo.AnalysisPhaseError, err.Error()
			out = append(out, e)
			continue
		}
		s := t.measure(ctx, p, namespace, m, &prom, query, ts)
		e.Phase, e.Value, e.Message = analysis.Judge(m, s, t.values)
		out = append(out, e)
	}
	return out
}

func printEvaluation(out io.Writer, results []evaluation, o *output) error {
	if o.structured() {
		return o.print(out, results)
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
