package prometheus

import (
	"context"
	"fmt"
	"time"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"

	"github.com/tugboatdev/tugboat/analysis"
	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

// Replay measures spec's metrics through p over past data, as an
// AnalysisRun started at start would have, until its verdict or end (see
// analysis.Replay): what `kubectl tug analysis run --replay-from`, `kubectl
// tug analysis calibrate` and the gate quality benchmark run. Only
// Prometheus and judge metrics replay. Each metric is rendered with args
// first, so that a bad argument is an error before anything is sent; a
// query holding an argument from a Secret is sent by POST only, as the
// controller sends it. Secrets for authentication are read from namespace.
func (p *Provider) Replay(ctx context.Context, namespace string, spec v1alpha1.AnalysisRunSpec, args analysis.Args,
	start, end time.Time) (argo.AnalysisPhase, []analysis.MetricReplay, error) {
	judges := map[string]analysis.JudgeRequest{}
	burns := map[string]analysis.BurnRateRequest{}
	proms := map[string]v1alpha1.PrometheusMetric{}
	queries, secret := map[string]string{}, map[string]bool{}
	for _, m := range spec.Metrics {
		switch {
		case m.Provider.Judge != nil:
			req, err := args.RenderJudge(*m.Provider.Judge)
			if err != nil {
				return "", nil, fmt.Errorf("metric %s: %w", m.Name, err)
			}
			judges[m.Name] = req
		case m.Provider.BurnRate != nil:
			req, err := args.RenderBurnRate(*m.Provider.BurnRate)
			if err != nil {
				return "", nil, fmt.Errorf("metric %s: %w", m.Name, err)
			}
			burns[m.Name] = req
		case m.Provider.Prometheus != nil:
			prom, query, err := Rendered(m, args)
			if err != nil {
				return "", nil, fmt.Errorf("metric %s: %w", m.Name, err)
			}
			proms[m.Name], queries[m.Name] = prom, query
			for _, name := range analysis.ArgNames(m.Provider.Prometheus.Query) {
				secret[m.Name] = secret[m.Name] || args.Secret[name]
			}
		default:
			return "", nil, fmt.Errorf("metric %s: only Prometheus, judge and burnRate metrics replay", m.Name)
		}
	}
	send := func(secret bool, prom *v1alpha1.PrometheusMetric, query string, at time.Time) analysis.Sample {
		if secret {
			return p.MeasureSecret(ctx, namespace, prom, query, at)
		}
		return p.Measure(ctx, namespace, prom, query, at)
	}
	return analysis.Replay(spec, args.Values, start, end, func(m v1alpha1.Metric, at time.Time) analysis.Sample {
		if req, ok := judges[m.Name]; ok {
			return analysis.MeasureJudge(m, req, start, at, func(prom *v1alpha1.PrometheusMetric, query string) analysis.Sample {
				return send(req.Secret, prom, query, at)
			})
		}
		if req, ok := burns[m.Name]; ok {
			return analysis.MeasureBurnRate(m, req, func(prom *v1alpha1.PrometheusMetric, query string) analysis.Sample {
				return send(req.Secret, prom, query, at)
			})
		}
		prom := proms[m.Name]
		return send(secret[m.Name], &prom, queries[m.Name], at)
	})
}

// Rendered is a Prometheus metric's target and query with the arguments
// in place.
func Rendered(m v1alpha1.Metric, args analysis.Args) (v1alpha1.PrometheusMetric, string, error) {
	prom := *m.Provider.Prometheus
	if err := args.RenderTarget(&prom); err != nil {
		return prom, "", err
	}
	query, err := analysis.Render(prom.Query, args.Values)
	if err == nil && prom.RangeQuery != nil {
		var rq v1alpha1.PrometheusRangeQuery
		rq, err = analysis.RenderRange(*prom.RangeQuery, args.Values)
		prom.RangeQuery = &rq
	}
	return prom, query, err
}
