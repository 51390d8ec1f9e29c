package reconciler

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"time"

	"github.com/tugboatdev/tugboat/analysis"
	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

// One measurement by its metric's provider: a Prometheus query, a web
// request, or (job.go) a Job.

// take renders a metric's query, address and headers and measures it, in a
// run started at started.
func (r *Reconciler) take(ctx context.Context, namespace string, m *v1alpha1.Metric, a measureArgs, started, now time.Time) analysis.Taken {
	if m.Provider.Web != nil {
		return r.takeWeb(ctx, *m.Provider.Web, a)
	}
	if m.Provider.Judge != nil {
		return r.takeJudge(ctx, namespace, m, a, started, now)
	}
	if m.Provider.BurnRate != nil {
		return r.takeBurnRate(ctx, namespace, m, a, now)
	}
	prom := *m.Provider.Prometheus
	if a.err != nil && slices.ContainsFunc(analysis.ArgNames(prom.Query), func(n string) bool { _, ok := a.Values[n]; return !ok }) {
		// An argument that cannot be resolved now (a Secret not readable
		// yet) may resolve next time: an error measurement, counted against
		// consecutiveErrorLimit. Nothing is rendered or sent.
		return analysis.Taken{Sample: analysis.Sample{Err: a.err}, Query: a.Shown(prom.Query), FinishedAt: r.Now()}
	}
	query, shown, err := a.Render(prom.Query)
	if err == nil {
		err = a.RenderTarget(&prom)
	}
	if err == nil {
		err = a.CheckAddress(prom)
	}
	if err == nil && prom.RangeQuery != nil {
		prom.RangeQuery, err = a.RenderRange(*prom.RangeQuery)
	}
	if err != nil {
		return analysis.Taken{Invalid: err}
	}
	sample := r.measure(ctx, namespace, &prom, query, now, a.In(prom.Query))
	if a.In(prom.Query) {
		scrub(a, &sample)
	}
	return analysis.Taken{Sample: sample, Query: shown, FinishedAt: r.Now()}
}

// scrub keeps Secret values out of a sample: Prometheus's errors and
// warnings may quote the query, Secret values and all.
func scrub(a measureArgs, sample *analysis.Sample) {
	if sample.Err != nil {
		sample.Err = a.Scrub(sample.Err)
	}
	for i, w := range sample.Warnings {
		sample.Warnings[i] = a.Scrub(&analysis.QueryRefused{Reason: "warning", Err: errors.New(w)}).Error()
	}
}

// takeJudge renders a judge metric's queries and address and measures it:
// the canary's and the baseline's range queries, judged (analysis.MeasureJudge).
func (r *Reconciler) takeJudge(ctx context.Context, namespace string, m *v1alpha1.Metric, a measureArgs, started, now time.Time) analysis.Taken {
	j := *m.Provider.Judge
	if a.err != nil && slices.ContainsFunc(analysis.ArgNames(analysis.JudgeArgText(j)+" "+j.Address), func(n string) bool { _, ok := a.Values[n]; return !ok }) {
		// An argument not resolvable now may be next time: an error
		// measurement, as for a Prometheus metric.
		return analysis.Taken{Sample: analysis.Sample{Err: a.err}, Query: analysis.ShownJudge(j, analysis.Masked(a.Values, a.Secret, "REDACTED")), FinishedAt: r.Now()}
	}
	req, err := a.RenderJudge(j)
	if err != nil {
		return analysis.Taken{Invalid: err}
	}
	sample := analysis.MeasureJudge(*m, req, started, now, func(prom *v1alpha1.PrometheusMetric, query string) analysis.Sample {
		s := r.measure(ctx, namespace, prom, query, now, req.Secret)
		if req.Secret && !errors.Is(s.Err, analysis.ErrDeferred) {
			scrub(a, &s)
		}
		return s
	})
	return analysis.Taken{Sample: sample, Query: req.Shown, FinishedAt: r.Now()}
}

// takeBurnRate renders a burn-rate metric's queries and address and
// measures it: each window's errors and total, judged
// (analysis.MeasureBurnRate).
func (r *Reconciler) takeBurnRate(ctx context.Context, namespace string, m *v1alpha1.Metric, a measureArgs, now time.Time) analysis.Taken {
	b := *m.Provider.BurnRate
	if a.err != nil && slices.ContainsFunc(analysis.ArgNames(analysis.BurnRateArgText(b)), func(n string) bool { _, ok := a.Values[n]; return !ok }) {
		// An argument not resolvable now may be next time: an error
		// measurement, as for a Prometheus metric.
		return analysis.Taken{Sample: analysis.Sample{Err: a.err}, Query: analysis.ShownBurnRate(b, analysis.Masked(a.Values, a.Secret, "REDACTED")), FinishedAt: r.Now()}
	}
	req, err := a.RenderBurnRate(b)
	if err != nil {
		return analysis.Taken{Invalid: err}
	}
	sample := analysis.MeasureBurnRate(*m, req, func(prom *v1alpha1.PrometheusMetric, query string) analysis.Sample {
		s := r.measure(ctx, namespace, prom, query, now, req.Secret)
		if req.Secret && !errors.Is(s.Err, analysis.ErrDeferred) {
			scrub(a, &s)
		}
		return s
	})
	return analysis.Taken{Sample: sample, Query: req.Shown, FinishedAt: r.Now()}
}

// takeWeb renders a web metric's request and sends it. What status shows
// of it is the method and URL, which hold no value from a Secret.
func (r *Reconciler) takeWeb(ctx context.Context, w v1alpha1.WebMetric, a measureArgs) analysis.Taken {
	shown := cmp.Or(string(w.Method), "GET") + " " + w.URL
	text := w.URL + " " + w.JSONPath + " " + w.Body + " " + string(w.JSONBody)
	for _, h := range w.Headers {
		text += " " + h.Value
	}
	if a.err != nil && slices.ContainsFunc(analysis.ArgNames(text), func(n string) bool { _, ok := a.Values[n]; return !ok }) {
		// An argument it needs, not resolvable now (a Secret not readable
		// yet), may be next time: an error measurement, counted against
		// consecutiveErrorLimit.
		return analysis.Taken{Sample: analysis.Sample{Err: a.err}, Query: shown, FinishedAt: r.Now()}
	}
	req, err := a.RenderWeb(w)
	if err != nil {
		return analysis.Taken{Invalid: err}
	}
	shown = req.Method + " " + req.URL
	if r.Web == nil {
		return analysis.Taken{Invalid: errors.New("provider.web: this controller measures no web metrics")}
	}
	sample := r.Web.MeasureWeb(ctx, req)
	if analysis.WebRefersTo(w, a.Secret) {
		// A server that echoes its request would show a token in status.
		sample.Answer = a.Mask(sample.Answer)
		if sample.Err != nil && !errors.Is(sample.Err, analysis.ErrDeferred) {
			if masked := a.MaskText(sample.Err.Error()); masked != sample.Err.Error() {
				sample.Err = errors.New(masked)
			}
		}
	}
	return analysis.Taken{Sample: sample, Query: shown, FinishedAt: r.Now()}
}

// secretMeasurer is a measurer that can keep a query out of URLs: the
// Prometheus adapter never sends such a query by GET.
type secretMeasurer interface {
	MeasureSecret(ctx context.Context, namespace string, m *v1alpha1.PrometheusMetric, query string, ts time.Time) analysis.Sample
}

// measure sends a query through the measurer; one holding values from
// Secrets goes by MeasureSecret when the measurer has it (the adapter does;
// stand-ins in tests need not).
func (r *Reconciler) measure(ctx context.Context, namespace string, prom *v1alpha1.PrometheusMetric, query string, ts time.Time, holdsSecrets bool) analysis.Sample {
	if sm, ok := r.Measurer.(secretMeasurer); ok && holdsSecrets {
		return sm.MeasureSecret(ctx, namespace, prom, query, ts)
	}
	return r.Measurer.Measure(ctx, namespace, prom, query, ts)
}
