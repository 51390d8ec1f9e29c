package reconciler_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/tugboatdev/tugboat/analysis"
	"github.com/tugboatdev/tugboat/analysis/reconciler"
	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/sandbox/cluster"
)

// measurer answers every query with the value set for it, and records the
// queries sent. It stands in for the Prometheus adapter, which has its own
// tests against a real Prometheus.
type measurer struct {
	mu      sync.Mutex
	values  map[string]float64
	queries []string
}

func (m *measurer) Measure(_ context.Context, _ string, p *v1alpha1.PrometheusMetric, query string, _ time.Time) analysis.Sample {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r := p.RangeQuery; r != nil {
		query += " range " + r.Start + ", " + r.End + ", " + string(r.Step)
	}
	m.queries = append(m.queries, query)
	if strings.Contains(query, "echo-error") {
		// As Prometheus does for, say, a bad regular expression.
		return analysis.Sample{Err: &analysis.QueryRefused{Reason: "bad_data", Err: fmt.Errorf("bad_data: invalid regular expression in label_replace(): %q", query)}}
	}
	for k, v := range m.values {
		if strings.Contains(query, k) {
			return analysis.Sample{Values: []float64{v}}
		}
	}
	return analysis.Sample{}
}

func (m *measurer) sent(substr string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, q := range m.queries {
		if strings.Contains(q, substr) {
			n++
		}
	}
	return n
}

func metric(name, query string, count int32) v1alpha1.Metric {
	return v1alpha1.Metric{
		Name: name, Interval: "1s", Count: ptr.To(intstr.FromInt32(count)),
		SuccessCondition: "result[0] >= 0.99",
		Provider:         v1alpha1.MetricProvider{Prometheus: &v1alpha1.PrometheusMetric{Query: query}},
	}
}

// TestAnalysisRuns drives AnalysisRuns on a real API server.
func TestAnalysisRuns(t *testing.T) {
	env := cluster.Start(t)
	m := &measurer{values: map[string]float64{`w="good"`: 0.999, `w="bad"`: 0.5, `"s3cret"`: 1}}
	var patches sync.Map // run name -> status patches
	// The run named "lagging" has a cache that keeps showing it as it was
	// before its first status write, for a few measurement intervals.
	var lag struct {
		sync.Mutex
		stale *v1alpha1.AnalysisRun
		until time.Time
	}
	count := interceptor.Funcs{
		SubResourcePatch: func(ctx context.Context, c client.Client, sub string, o client.Object, p client.Patch, opts ...client.SubResourcePatchOption) error {
			var before v1alpha1.AnalysisRun
			if err := c.Get(ctx, client.ObjectKeyFromObject(o), &before); err != nil {
				return err
			}
			err := c.SubResource(sub).Patch(ctx, o, p, opts...)
			if err == nil {
				n, _ := patches.LoadOrStore(o.GetName(), new(atomic.Int32))
				n.(*atomic.Int32).Add(1)
				lag.Lock()
				if o.GetName() == "lagging" && lag.stale == nil {
					lag.stale, lag.until = &before, time.Now().Add(2500*time.Millisecond)
				}
				lag.Unlock()
			}
			return err
		},
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, o client.Object, opts ...client.GetOption) error {
			lag.Lock()
			defer lag.Unlock()
			if run, ok := o.(*v1alpha1.AnalysisRun); ok && key.Name == "lagging" && lag.stale != nil && time.Now().Before(lag.until) {
				lag.stale.DeepCopyInto(run)
				return nil
			}
			return c.Get(ctx, key, o, opts...)
		},
	}
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme: env.Scheme, Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0",
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
		NewClient: func(cfg *rest.Config, o client.Options) (client.Client, error) {
			c, err := client.NewWithWatch(cfg, o)
			if err != nil {
				return nil, err
			}
			return interceptor.NewClient(c, count), nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	var laterReadable atomic.Bool
	secrets := func(_ context.Context, ns, name string) (map[string][]byte, error) {
		if name == "later" && !laterReadable.Load() {
			return nil, fmt.Errorf("secret %s/%s not found", ns, name)
		}
		return map[string][]byte{"token": []byte("s3cret"), "hostile": []byte("1) or vector(s3cret"), "regex": []byte(`s3c"r(et`)}, nil
	}
	reg := prometheus.NewRegistry()
	r := &reconciler.Reconciler{Client: mgr.GetClient(), Measurer: m, Secrets: secrets, Now: time.Now, Coalesce: time.Hour, Metrics: reconciler.NewMetrics(reg)}
	if err := r.SetupWithManager(mgr, 2); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	create := func(t *testing.T, name string, spec v1alpha1.AnalysisRunSpec) {
		t.Helper()
		run := &v1alpha1.AnalysisRun{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}, Spec: spec}
		if err := env.Client.Create(t.Context(), run); err != nil {
			t.Fatal(err)
		}
	}
	until := func(t *testing.T, name string, cond func(*v1alpha1.AnalysisRun) bool) *v1alpha1.AnalysisRun {
		t.Helper()
		var run v1alpha1.AnalysisRun
		err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, &run); err != nil {
				return false, client.IgnoreNotFound(err)
			}
			return cond(&run), nil
		})
		if err != nil {
			t.Fatalf("run %s: %v; status %+v", name, err, run.Status)
		}
		return &run
	}
	completed := func(r *v1alpha1.AnalysisRun) bool { return r.Status.Phase.Completed() }

	t.Run("measures on schedule and succeeds after count", func(t *testing.T) {
		create(t, "scheduled", v1alpha1.AnalysisRunSpec{
			Metrics: []v1alpha1.Metric{metric("sr", `up{w="good"}`, 3)},
		})
		run := until(t, "scheduled", completed)
		res := run.Status.MetricResults[0]
		if run.Status.Phase != argo.AnalysisPhaseSuccessful || res.Successful != 3 || len(res.Measurements) != 3 || run.Status.CompletedAt == nil {
			t.Errorf("status %+v", run.Status)
		}
		if first, last := res.Measurements[0].StartedAt.Time, res.Measurements[2].StartedAt.Time; last.Sub(first) < 2*time.Second-100*time.Millisecond {
			t.Errorf("three measurements a second apart took %s", last.Sub(first))
		}
		// Started and first measured (one write), the second success held
		// in memory, the verdict (one write).
		if n, _ := patches.Load("scheduled"); n == nil || n.(*atomic.Int32).Load() > 3 {
			t.Errorf("status patches: %v, want at most 3 for 3 measurements with coalescing", n)
		}
		if runs, measured := counter(t, reg, "tugboat_analysis_runs_completed_total", "scheduled", "Successful"), counter(t, reg, "tugboat_analysis_measurements_total", "scheduled", "Successful"); runs != 1 || measured != 3 {
			t.Errorf("metrics: %v runs Successful, %v measurements Successful; want 1 and 3", runs, measured)
		}
	})

	t.Run("a failing metric ends the run early; a dry-run one never decides", func(t *testing.T) {
		create(t, "early", v1alpha1.AnalysisRunSpec{
			Metrics: []v1alpha1.Metric{metric("bad", `up{w="bad"}`, 5), metric("slow", `up{w="good"}`, 100), metric("dry", `up{w="bad"}`, 1)},
			DryRun:  []argo.DryRun{{MetricName: "dry"}},
		})
		run := until(t, "early", completed)
		if run.Status.Phase != argo.AnalysisPhaseFailed || !strings.Contains(run.Status.Message, "metric bad Failed (last value [0.5])") {
			t.Errorf("phase %s, message %q", run.Status.Phase, run.Status.Message)
		}
		if run.Status.DryRunSummary == nil || run.Status.DryRunSummary.Failed != 1 {
			t.Errorf("dry-run summary %+v", run.Status.DryRunSummary)
		}
		if runs := counter(t, reg, "tugboat_analysis_runs_completed_total", "early", "Failed"); runs != 1 {
			t.Errorf("metrics: %v runs Failed, want 1", runs)
		}
	})

	t.Run("coalesced successes are all counted", func(t *testing.T) {
		create(t, "coalesced", v1alpha1.AnalysisRunSpec{Metrics: []v1alpha1.Metric{metric("sr", `up{w="good", c="1"}`, 6)}})
		run := until(t, "coalesced", completed)
		res := run.Status.MetricResults[0]
		if res.Successful != 6 || len(res.Measurements) != 6 || m.sent(`c="1"`) != 6 {
			t.Errorf("%d successes, %d measurements kept, %d queries sent; want 6 each", res.Successful, len(res.Measurements), m.sent(`c="1"`))
		}
		if v, _ := patches.Load("coalesced"); v == nil || v.(*atomic.Int32).Load() != 3 {
			t.Errorf("status patches: %v, want 3 (started, first measurement, verdict)", v)
		}
	})

	t.Run("a run with many metrics writes its status at most once a second", func(t *testing.T) {
		// Failures are not coalesced: without the bound, each of the six
		// metrics' measurements would be a write of its own.
		var metrics []v1alpha1.Metric
		for i := range 6 {
			mt := metric(fmt.Sprintf("m%d", i), fmt.Sprintf(`up{w="bad", many="%d"}`, i), 4)
			mt.FailureLimit = ptr.To(intstr.FromInt32(10))
			metrics = append(metrics, mt)
		}
		create(t, "many", v1alpha1.AnalysisRunSpec{Metrics: metrics})
		run := until(t, "many", completed)
		for _, res := range run.Status.MetricResults {
			if res.Failed != 4 {
				t.Errorf("metric %s: %d failures counted, want 4", res.Name, res.Failed)
			}
		}
		seconds := int32(run.Status.CompletedAt.Sub(run.Status.StartedAt.Time)/time.Second) + 1
		if v, _ := patches.Load("many"); v == nil || v.(*atomic.Int32).Load() > seconds+1 {
			t.Errorf("status patches: %v in %ds, want at most one a second and the verdict", v, seconds)
		}
	})

	t.Run("successes held while the cache lags behind a write are kept", func(t *testing.T) {
		create(t, "lagging", v1alpha1.AnalysisRunSpec{Metrics: []v1alpha1.Metric{metric("sr", `up{w="good", c="2"}`, 6)}})
		run := until(t, "lagging", completed)
		res := run.Status.MetricResults[0]
		if res.Successful != 6 || m.sent(`c="2"`) != 6 {
			t.Errorf("%d successes, %d queries sent; want 6 each (none measured twice)", res.Successful, m.sent(`c="2"`))
		}
	})

	t.Run("retention bounds the measurements kept", func(t *testing.T) {
		create(t, "retained", v1alpha1.AnalysisRunSpec{
			Metrics:              []v1alpha1.Metric{metric("sr", `up{w="good", r="1"}`, 4)},
			MeasurementRetention: []argo.MeasurementRetention{{MetricName: "sr", Limit: 2}},
		})
		res := until(t, "retained", completed).Status.MetricResults[0]
		if len(res.Measurements) != 2 || res.Count != 4 {
			t.Errorf("kept %d measurements of %d", len(res.Measurements), res.Count)
		}
	})

	t.Run("an argument that would change the query errs without sending it", func(t *testing.T) {
		create(t, "hostile", v1alpha1.AnalysisRunSpec{
			Metrics: []v1alpha1.Metric{metric("sr", `rate(up{w="good", h="1"}[{{args.window}}])`, 1)},
			Args:    []argo.Argument{{Name: "window", Value: ptr.To("1m]) or vector(1")}},
		})
		run := until(t, "hostile", completed)
		if run.Status.Phase != argo.AnalysisPhaseError || !strings.Contains(run.Status.Message, "change the query's structure") {
			t.Errorf("phase %s, message %q", run.Status.Phase, run.Status.Message)
		}
		if n := m.sent(`h="1"`); n != 0 {
			t.Errorf("the query was sent %d times", n)
		}
	})

	t.Run("a Secret argument is used but never shown", func(t *testing.T) {
		create(t, "secret", v1alpha1.AnalysisRunSpec{
			Metrics: []v1alpha1.Metric{metric("sr", `up{token="{{args.token}}"}`, 1)},
			Args:    []argo.Argument{{Name: "token", ValueFrom: &argo.ValueFrom{SecretKeyRef: &argo.SecretKeyRef{Name: "t", Key: "token"}}}},
		})
		run := until(t, "secret", completed)
		res := run.Status.MetricResults[0]
		if run.Status.Phase != argo.AnalysisPhaseSuccessful || m.sent(`token="s3cret"`) != 1 {
			t.Errorf("phase %s; sent with the secret %d times", run.Status.Phase, m.sent(`token="s3cret"`))
		}
		if q := res.Metadata["ResolvedPrometheusQuery"]; strings.Contains(q, "s3cret") || !strings.Contains(q, "REDACTED") {
			t.Errorf("status shows %q", q)
		}
	})

	t.Run("a Secret argument that does not fit the query errs without showing it", func(t *testing.T) {
		create(t, "secret-hostile", v1alpha1.AnalysisRunSpec{
			Metrics: []v1alpha1.Metric{metric("sr", `up > {{args.h}}`, 1)},
			Args:    []argo.Argument{{Name: "h", ValueFrom: &argo.ValueFrom{SecretKeyRef: &argo.SecretKeyRef{Name: "t", Key: "hostile"}}}},
		})
		run := until(t, "secret-hostile", completed)
		if run.Status.Phase != argo.AnalysisPhaseError || !strings.Contains(run.Status.Message, "the value is not shown") {
			t.Errorf("phase %s, message %q", run.Status.Phase, run.Status.Message)
		}
		if strings.Contains(fmt.Sprintf("%+v", run.Status), "s3cret") {
			t.Errorf("status shows the Secret's value: %+v", run.Status)
		}
		if n := m.sent("vector(s3cret"); n != 0 {
			t.Errorf("the query was sent %d times", n)
		}
	})

	for i, tt := range []struct {
		name   string
		change func(*v1alpha1.Metric)
		want   string
	}{
		{"a Secret argument in a condition is not there to read", func(m *v1alpha1.Metric) { m.SuccessCondition = `asInt(args.token) > 0` }, "condition"},
		{"a Secret argument that decides a condition is not there to read", func(m *v1alpha1.Metric) { m.SuccessCondition = `args.token == "s3c" + "ret"` }, "did not meet"},
		{"a Secret argument in a limit errs", func(m *v1alpha1.Metric) { m.FailureLimit = ptr.To(intstr.FromString("{{args.token}}")) }, "not in limits or count"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			name := fmt.Sprintf("secret-elsewhere-%d", i)
			mt := metric("sr", `up{w="good"}`, 1)
			tt.change(&mt)
			create(t, name, v1alpha1.AnalysisRunSpec{
				Metrics: []v1alpha1.Metric{mt},
				Args:    []argo.Argument{{Name: "token", ValueFrom: &argo.ValueFrom{SecretKeyRef: &argo.SecretKeyRef{Name: "t", Key: "token"}}}},
			})
			run := until(t, name, completed)
			if run.Status.Phase == argo.AnalysisPhaseSuccessful || !strings.Contains(run.Status.Message, tt.want) {
				t.Errorf("phase %s, message %q", run.Status.Phase, run.Status.Message)
			}
			if strings.Contains(fmt.Sprintf("%+v", run.Status), "s3cret") {
				t.Errorf("status shows the Secret's value: %+v", run.Status)
			}
		})
	}

	t.Run("an error from Prometheus that quotes the query does not show a Secret's value", func(t *testing.T) {
		create(t, "secret-echoed", v1alpha1.AnalysisRunSpec{
			Metrics: []v1alpha1.Metric{metric("sr", `label_replace(up{w="echo-error"}, "x", "$1", "job", "{{args.re}}")`, 1)},
			Args:    []argo.Argument{{Name: "re", ValueFrom: &argo.ValueFrom{SecretKeyRef: &argo.SecretKeyRef{Name: "t", Key: "regex"}}}},
		})
		run := until(t, "secret-echoed", completed)
		if run.Status.Phase != argo.AnalysisPhaseError || !strings.Contains(run.Status.Message, "the server refused the query (bad_data)") {
			t.Errorf("phase %s, message %q", run.Status.Phase, run.Status.Message)
		}
		if st := fmt.Sprintf("%+v", run.Status); strings.Contains(st, "s3c") {
			t.Errorf("status shows the Secret's value: %s", st)
		}
	})

	t.Run("a Secret not readable yet is an error measurement, tried again", func(t *testing.T) {
		mt := metric("sr", `up{w="good", token="{{args.token}}"}`, 2)
		mt.ConsecutiveErrorLimit = ptr.To(intstr.FromInt32(5))
		create(t, "secret-later", v1alpha1.AnalysisRunSpec{
			Metrics: []v1alpha1.Metric{mt},
			Args:    []argo.Argument{{Name: "token", ValueFrom: &argo.ValueFrom{SecretKeyRef: &argo.SecretKeyRef{Name: "later", Key: "token"}}}},
		})
		run := until(t, "secret-later", func(r *v1alpha1.AnalysisRun) bool {
			return len(r.Status.MetricResults) == 1 && r.Status.MetricResults[0].Error >= 1
		})
		if res := run.Status.MetricResults[0]; res.Phase.Completed() || !strings.Contains(res.Message, `secret `+run.Namespace+`/later not found`) {
			t.Fatalf("after the first try: %+v", res)
		}
		laterReadable.Store(true)
		run = until(t, "secret-later", completed)
		if res := run.Status.MetricResults[0]; run.Status.Phase != argo.AnalysisPhaseSuccessful || res.Successful < 1 || res.Error < 1 {
			t.Errorf("phase %s, %+v", run.Status.Phase, res)
		}
	})

	t.Run("a range query is measured with its arguments rendered", func(t *testing.T) {
		ranged := metric("sr", `up{w="good", rq="1"}`, 1)
		ranged.Provider.Prometheus.RangeQuery = &v1alpha1.PrometheusRangeQuery{Start: `now() - duration("{{args.lookback}}")`, End: "now()", Step: "{{args.step}}"}
		create(t, "ranged", v1alpha1.AnalysisRunSpec{
			Metrics: []v1alpha1.Metric{ranged},
			Args:    []argo.Argument{{Name: "lookback", Value: ptr.To("5m")}, {Name: "step", Value: ptr.To("30s")}},
		})
		run := until(t, "ranged", completed)
		if want := `rq="1"} range now() - duration("5m"), now(), 30s`; run.Status.Phase != argo.AnalysisPhaseSuccessful || m.sent(want) != 1 {
			t.Errorf("phase %s (%s); %q sent %d times", run.Status.Phase, run.Status.Message, want, m.sent(want))
		}
	})

	for _, tt := range []struct {
		name, start string
		arg         argo.Argument
		want        string
	}{
		{"a range argument outside a string errs without sending", `now() - {{args.lookback}}`, argo.Argument{Name: "lookback", Value: ptr.To("5m")}, `argument "lookback" must stand inside a string`},
		{"a Secret argument in a range errs without sending", `now() - duration("{{args.token}}")`, argo.Argument{Name: "token", ValueFrom: &argo.ValueFrom{SecretKeyRef: &argo.SecretKeyRef{Name: "t", Key: "token"}}}, "arguments from Secrets cannot be used in start, end or step"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			name := "range-" + strings.ToLower(tt.arg.Name)
			ranged := metric("sr", `up{w="good", rq="`+name+`"}`, 1)
			ranged.Provider.Prometheus.RangeQuery = &v1alpha1.PrometheusRangeQuery{Start: tt.start, End: "now()", Step: "1m"}
			create(t, name, v1alpha1.AnalysisRunSpec{Metrics: []v1alpha1.Metric{ranged}, Args: []argo.Argument{tt.arg}})
			run := until(t, name, completed)
			if run.Status.Phase != argo.AnalysisPhaseError || !strings.Contains(run.Status.Message, tt.want) || strings.Contains(run.Status.Message, "s3cret") {
				t.Errorf("phase %s, message %q; want Error with %q", run.Status.Phase, run.Status.Message, tt.want)
			}
			if n := m.sent(`rq="` + name); n != 0 {
				t.Errorf("the query was sent %d times", n)
			}
		})
	}

	t.Run("terminate stops a run with what was measured", func(t *testing.T) {
		long := metric("sr", `up{w="good", t="1"}`, 1000)
		long.Interval = "1h"
		create(t, "terminated", v1alpha1.AnalysisRunSpec{Metrics: []v1alpha1.Metric{long}})
		until(t, "terminated", func(r *v1alpha1.AnalysisRun) bool {
			return len(r.Status.MetricResults) == 1 && r.Status.MetricResults[0].Count == 1
		})
		var run v1alpha1.AnalysisRun
		if err := env.Client.Get(t.Context(), client.ObjectKey{Namespace: "default", Name: "terminated"}, &run); err != nil {
			t.Fatal(err)
		}
		patch := client.MergeFrom(run.DeepCopy())
		run.Spec.Terminate = true
		if err := env.Client.Patch(t.Context(), &run, patch); err != nil {
			t.Fatal(err)
		}
		done := until(t, "terminated", completed)
		if done.Status.Phase != argo.AnalysisPhaseSuccessful || done.Status.Message != "terminated" {
			t.Errorf("phase %s, message %q", done.Status.Phase, done.Status.Message)
		}
	})
}

// counter reads a counter of reg by name, and by the name (a run's Rollout,
// or the run itself when no Rollout made it) and phase labels.
func counter(t *testing.T, reg *prometheus.Registry, name, of, phase string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["namespace"] == "default" && labels["name"] == of && labels["phase"] == phase {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no %s{namespace=\"default\", name=%q, phase=%q}", name, of, phase)
	return 0
}
