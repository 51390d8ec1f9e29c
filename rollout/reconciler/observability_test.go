package reconciler_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/config/monitoring"
	"github.com/tugboatdev/tugboat/sandbox/toolchain"
)

// TestDashboardAndAlertsNameServedSeries drives a Rollout through analysis,
// an abort, a promotion and a rollback with the controller's metrics served,
// scraping them at each stage. Every series the Grafana dashboard and the
// alerting rules ask for must have been served, with the labels they match
// on: a renamed metric or label breaks this test, not a dashboard nobody
// looks at until an incident.
func TestDashboardAndAlertsNameServedSeries(t *testing.T) {
	f := givenMeasured(t)
	successRate.WithLabelValues("obs").Set(0.999)
	f.scraped("obs")
	tmpl := &v1alpha1.AnalysisTemplate{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "success-rate-ongoing"},
		Spec: v1alpha1.AnalysisTemplateSpec{Metrics: []v1alpha1.Metric{{
			Name: "success-rate", Interval: "1s", SuccessCondition: "result[0] >= 0.99",
			Provider: v1alpha1.MetricProvider{Prometheus: &v1alpha1.PrometheusMetric{Query: `tugboat_test_success_rate{workload="obs"}`}},
		}}},
	}
	if err := f.c.Create(t.Context(), tmpl); err != nil {
		t.Fatal(err)
	}
	f.app("obs", 1, managedRoute("obs"))
	ro := newRollout("obs", weight(20), pause(""))
	ro.Spec.Analysis = &v1alpha1.BackgroundAnalysis{Analysis: v1alpha1.Analysis{
		Templates: []v1alpha1.AnalysisTemplateRef{{TemplateName: "success-rate-ongoing"}},
	}}
	f.rollout(ro)
	f.eventually("obs", "initialized", time.Minute, hasReason("Healthy"))

	served := scrapes{}
	obs := map[string]string{"namespace": f.ns, "name": "obs"}
	f.release("obs", "v2")
	f.eventually("obs", "paused", time.Minute, hasReason("WaitingForPromotion"))
	served.until(t, f.metrics.URL, "the background analysis's value and threshold", func(s scrape) bool {
		return s.value("tugboat_analysis_metric_value", obs) == 0.999 &&
			s.value("tugboat_analysis_metric_threshold", with(obs, "condition", "success", "op", ">=")) == 0.99 &&
			s.value("tugboat_analysis_measurements_total", with(obs, "phase", "Successful")) > 0
	})

	f.annotate("obs", v1alpha1.AnnotationAbort, "a1")
	f.eventually("obs", "aborted", time.Minute, hasReason("AbortedByUser"))
	served.until(t, f.metrics.URL, "the abort, by Rollout and reason, and its duration", func(s scrape) bool {
		return s.value("tugboat_rollout_aborts_total", with(obs, "reason", "AbortedByUser")) == 1 &&
			s.value("tugboat_rollout_duration_seconds_count", map[string]string{"namespace": f.ns, "outcome": "Aborted"}) == 1
	})

	v3 := f.release("obs", "v3")
	f.eventually("obs", "v3 paused", time.Minute, atStep(1, "WaitingForPromotion"))
	f.annotate("obs", v1alpha1.AnnotationPromote, "p1")
	f.eventually("obs", "v3 promoted", time.Minute, stableAt(v3))
	f.rollBack("obs", "r1", 0, "v3 breaks checkout")
	f.eventually("obs", "rolled back", time.Minute, answered("r1"))
	served.until(t, f.metrics.URL, "the promotion's duration and the rollback's pin", func(s scrape) bool {
		return s.value("tugboat_rollout_duration_seconds_count", map[string]string{"namespace": f.ns, "outcome": "Promoted"}) == 1 &&
			s.value("tugboat_rollout_pinned_since_seconds", obs) > 0 &&
			s.value("tugboat_rollbacks_total", map[string]string{"namespace": f.ns, "rollout": "obs", "cause": "requested"}) == 1
	})

	dashboard, err := monitoring.Dashboard(toolchain.Root())
	if err != nil {
		t.Error(err)
	}
	rules, err := monitoring.Rules(toolchain.Root())
	if err != nil {
		t.Fatal(err)
	}
	exprs := append(dashboard, rules...)
	if len(exprs) < 10 {
		t.Fatalf("only %d expressions found in the dashboard and rules", len(exprs))
	}
	for _, e := range exprs {
		sels, err := monitoring.Selectors(e)
		if err != nil {
			t.Error(err)
		}
		for _, sel := range sels {
			labels, ok := served[sel.Name]
			if !ok {
				t.Errorf("%s asks for %s, which the controller never served", e.Where, sel.Name)
				continue
			}
			for _, m := range sel.LabelMatchers {
				if m.Name != model.MetricNameLabel && !labels[m.Name] {
					t.Errorf("%s matches label %s of %s, which has none", e.Where, m.Name, sel.Name)
				}
			}
		}
	}
}

// scrape is one scrape of the controller's metrics.
type scrape map[string]*dto.MetricFamily

// value is the value of the series of name (a family's, or a histogram's
// _count or _sum) whose labels include want; -1 when there is none.
func (s scrape) value(name string, want map[string]string) float64 {
	family, part := name, ""
	for _, suffix := range []string{"_count", "_sum"} {
		if f, ok := s[strings.TrimSuffix(name, suffix)]; ok && strings.HasSuffix(name, suffix) && f.GetType() == dto.MetricType_HISTOGRAM {
			family, part = strings.TrimSuffix(name, suffix), suffix
		}
	}
	f, ok := s[family]
	if !ok {
		return -1
	}
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case part == "_count":
			return float64(m.GetHistogram().GetSampleCount())
		case part == "_sum":
			return m.GetHistogram().GetSampleSum()
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		}
	}
	return -1
}

// scrapes holds the label names of every series name served in any
// scrape: the analysis gauges show only while a run measures, the pin's
// only while a pin holds.
type scrapes map[string]map[string]bool

// until scrapes url until cond holds of a scrape, adding every scrape's
// series to s.
func (s scrapes) until(t *testing.T, url, what string, cond func(scrape) bool) {
	t.Helper()
	var last scrape
	var lastErr error
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		last, lastErr = get(ctx, url)
		if lastErr != nil {
			return false, nil
		}
		s.add(last)
		return cond(last), nil
	})
	if err != nil {
		var names []string
		for n := range last {
			names = append(names, n)
		}
		slices.Sort(names)
		t.Fatalf("scraping for %s: %v (last error: %v); last scrape had %v", what, err, lastErr, names)
	}
}

func (s scrapes) add(sc scrape) {
	for name, f := range sc {
		names := []string{name}
		switch f.GetType() {
		case dto.MetricType_HISTOGRAM:
			names = []string{name + "_bucket", name + "_count", name + "_sum"}
		case dto.MetricType_SUMMARY:
			names = append(names, name+"_count", name+"_sum")
		}
		for _, m := range f.GetMetric() {
			for _, n := range names {
				if s[n] == nil {
					s[n] = map[string]bool{}
				}
				for _, l := range m.GetLabel() {
					s[n][l.GetName()] = true
				}
				if strings.HasSuffix(n, "_bucket") {
					s[n]["le"] = true
				}
			}
		}
	}
}

func get(ctx context.Context, url string) (scrape, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(resp.Body)
}

func with(base map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range base {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}
