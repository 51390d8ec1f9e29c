package prometheus

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	"github.com/tugboatdev/tugboat/analysis"
	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/sandbox/promserver"
)

// TestMeasureAgainstPrometheus runs queries against a real Prometheus with
// exact series loaded through promtool.
func TestMeasureAgainstPrometheus(t *testing.T) {
	ts := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	at := strconv.FormatInt(ts.Unix(), 10)
	srv := promserver.Start(t, promserver.Options{OpenMetrics: `# TYPE tugboat_test gauge
tugboat_test{workload="good"} 0.995 ` + at + `
tugboat_test{workload="bad"} 0.91 ` + at + `
tugboat_test{workload="nan"} NaN ` + at + `
`})
	p := &Provider{Guard: Guard{AllowLoopback: true}}
	metric := &v1alpha1.PrometheusMetric{Address: srv.URL}
	for _, tt := range []struct {
		name   string
		query  string
		values []float64
		scalar bool
		phase  argo.AnalysisPhase
	}{
		{"success", `tugboat_test{workload="good"}`, []float64{0.995}, false, argo.AnalysisPhaseSuccessful},
		{"failure", `tugboat_test{workload="bad"}`, []float64{0.91}, false, argo.AnalysisPhaseFailed},
		{"no data", `tugboat_test{workload="none"}`, []float64{}, false, argo.AnalysisPhaseInconclusive},
		{"NaN", `tugboat_test{workload="nan"}`, []float64{math.NaN()}, false, argo.AnalysisPhaseInconclusive},
		{"several series, in label order", `tugboat_test{workload=~"good|bad"}`, []float64{0.91, 0.995}, false, argo.AnalysisPhaseFailed},
		{"a scalar", `scalar(tugboat_test{workload="good"})`, []float64{0.995}, true, argo.AnalysisPhaseSuccessful},
		// Prometheus answers with a warning; the value is still the maximum.
		{"a warning", `quantile(1.5, tugboat_test{workload="good"})`, []float64{math.Inf(1)}, false, argo.AnalysisPhaseSuccessful},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := p.Measure(t.Context(), "prod", metric, tt.query, ts)
			if s.Err != nil {
				t.Fatal(s.Err)
			}
			if !sameValues(s.Values, tt.values) || s.Scalar != tt.scalar {
				t.Errorf("got %v (scalar %v), want %v", s.Values, s.Scalar, tt.values)
			}
			cond := "result[0] >= 0.99"
			if tt.scalar {
				cond = "result >= 0.99"
			}
			phase, _, msg := analysis.Judge(v1alpha1.Metric{SuccessCondition: cond}, s, nil)
			if phase != tt.phase {
				t.Errorf("phase %s (%s), want %s", phase, msg, tt.phase)
			}
			if warned := strings.Contains(msg, "the server warned: PromQL warning: quantile value should be between 0 and 1"); warned != (tt.name == "a warning") {
				t.Errorf("message %q (warnings %q)", msg, s.Warnings)
			}
		})
	}
}

// TestQueryRefused: Prometheus's answer that a query is bad is told apart
// from the server being unreachable, since its message may quote the query.
func TestQueryRefused(t *testing.T) {
	ts := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	srv := promserver.Start(t, promserver.Options{OpenMetrics: "# TYPE tugboat_test gauge\ntugboat_test 1 " + strconv.FormatInt(ts.Unix(), 10) + "\n"})
	p := &Provider{Guard: Guard{AllowLoopback: true}, Metrics: NewMetrics(prometheus.NewRegistry())}
	s := p.Measure(t.Context(), "prod", &v1alpha1.PrometheusMetric{Address: srv.URL}, `label_replace(tugboat_test, "x", "$1", "job", "(")`, ts)
	var refused *analysis.QueryRefused
	if !errors.As(s.Err, &refused) || refused.Reason != "execution" || !strings.Contains(s.Err.Error(), "invalid regular expression in label_replace(): (") {
		t.Errorf("error %v (%T), want an execution refusal quoting the argument", s.Err, s.Err)
	}
	s = p.Measure(t.Context(), "prod", &v1alpha1.PrometheusMetric{Address: "http://127.0.0.1:1"}, "up", time.Now())
	if s.Err == nil || errors.As(s.Err, &refused) {
		t.Errorf("an unreachable server: %v", s.Err)
	}
	for result, want := range map[string]float64{"ok": 0, "refused": 1, "error": 1} {
		if got := testutil.ToFloat64(p.Metrics.queries.WithLabelValues(result)); got != want {
			t.Errorf("tugboat_prometheus_queries_total{result=%q} = %v, want %v", result, got, want)
		}
	}
}

func sameValues(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] && !(math.IsNaN(a[i]) && math.IsNaN(b[i])) {
			return false
		}
	}
	return true
}

// TestUnreachableAndSlowEndInError: a refused connection and a server that
// never answers are measurement errors, and past consecutiveErrorLimit the
// metric is in Error.
func TestUnreachableAndSlowEndInError(t *testing.T) {
	refused := "http://127.0.0.1:1" // a privileged port nothing here listens on

	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close() // accepted, never answered
		}
	}()

	p := &Provider{Guard: Guard{AllowLoopback: true}}
	for _, tt := range []struct {
		name, address, want string
	}{
		{"connection refused", refused, "connection refused"},
		{"past the timeout", "http://" + silent.Addr().String(), "deadline exceeded"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := v1alpha1.Metric{SuccessCondition: "result[0] > 0"}
			limits := analysis.Limits{ConsecutiveError: 4, Count: 10}
			var r argo.MetricResult
			for i := range 5 {
				s := p.Measure(t.Context(), "prod", &v1alpha1.PrometheusMetric{Address: tt.address, Timeout: ptr.To[int64](1)}, "up", time.Now().Add(time.Duration(i)*time.Second))
				phase, _, msg := analysis.Judge(m, s, nil)
				if phase != argo.AnalysisPhaseError || !strings.Contains(msg, tt.want) {
					t.Fatalf("measurement %d: %s %q, want Error containing %q", i, phase, msg, tt.want)
				}
				analysis.Record(&r, phase)
				if got, want := analysis.Assess(r, limits), map[bool]argo.AnalysisPhase{true: argo.AnalysisPhaseError, false: argo.AnalysisPhaseRunning}[i == 4]; got != want {
					t.Fatalf("after %d errors the metric is %s, want %s", i+1, got, want)
				}
			}
		})
	}
}

func TestGuard(t *testing.T) {
	for _, address := range []string{"http://127.0.0.1:9090", "http://169.254.169.254", "http://[::1]:9090", "http://0.0.0.0:9090", "http://100.100.100.200"} {
		for _, p := range []*Provider{
			{},                        // named by a template
			{DefaultAddress: address}, // the controller's own: dialled, and refused on the IP
			{Guard: Guard{AllowedHosts: []string{"*"}}}, // allowed, and refused on the IP
		} {
			s := p.Measure(t.Context(), "prod", &v1alpha1.PrometheusMetric{Address: address, Timeout: ptr.To[int64](2)}, "up", time.Now())
			var refused *Refused
			u, _ := url.Parse(address)
			if !errors.As(s.Err, &refused) || s.Err.Error() != refused.Error() || strings.Contains(s.Err.Error(), u.Hostname()) {
				t.Errorf("%s (default %q): want a refusal by policy that names no address, got %v", address, p.DefaultAddress, s.Err)
			}
		}
	}
	redirect := httptest.NewServer(http.RedirectHandler("http://169.254.169.254/", http.StatusFound))
	defer redirect.Close()
	p := &Provider{Guard: Guard{AllowLoopback: true}}
	if s := p.Measure(t.Context(), "prod", &v1alpha1.PrometheusMetric{Address: redirect.URL}, "up", time.Now()); s.Err == nil || !strings.Contains(s.Err.Error(), "redirect") {
		t.Errorf("redirect followed: %v", s.Err)
	}
	if s := (&Provider{}).Measure(t.Context(), "prod", &v1alpha1.PrometheusMetric{}, "up", time.Now()); !errors.Is(s.Err, ErrNoAddress) {
		t.Errorf("no address: %v", s.Err)
	}
}

// Identical measurements due at once, for many Rollouts sharing a template,
// wait for one query: the first sends it, the others join it.
func TestConcurrentIdenticalQueriesJoinOne(t *testing.T) {
	var calls atomic.Int32
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		<-release
		fmt.Fprint(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"1"]}]}}`)
	}))
	defer srv.Close()
	p := &Provider{DefaultAddress: srv.URL, Guard: Guard{AllowLoopback: true}, Metrics: NewMetrics(prometheus.NewRegistry())}
	ts := time.Now()
	const n = 8
	var wg sync.WaitGroup
	samples := make([]analysis.Sample, n)
	for i := range n {
		wg.Go(func() { samples[i] = p.Measure(t.Context(), "prod", &v1alpha1.PrometheusMetric{}, "up", ts) })
	}
	// Hold the answer until the query is under way, then let it go.
	err := wait.PollUntilContextTimeout(t.Context(), 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		return calls.Load() > 0, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	close(release)
	wg.Wait()
	for _, s := range samples {
		if s.Err != nil || len(s.Values) != 1 {
			t.Fatalf("measure: %+v", s)
		}
	}
	// One query, almost always; a caller that arrives in the instant between
	// the answer and its being kept sends its own, and is counted so.
	sent, saved := testutil.ToFloat64(p.Metrics.queries.WithLabelValues("ok")), testutil.ToFloat64(p.Metrics.saved)
	if float64(calls.Load()) != sent || sent+saved != n || sent > 2 {
		t.Errorf("%d calls; metrics: %v sent, %v saved; want calls = sent, sent + saved = %d, and one query (two at most)", calls.Load(), sent, saved, n)
	}
}

// TestRequestDetails checks what goes over the wire: credentials from a
// Secret, headers, and identical queries sent once.
func TestRequestDetails(t *testing.T) {
	var calls atomic.Int32
	var mu sync.Mutex
	var got http.Header

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		mu.Lock()
		got = r.Header.Clone()
		mu.Unlock()

		fmt.Fprint(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"1"]}]}}`)
	}))
	defer srv.Close()
	p := &Provider{DefaultAddress: srv.URL, Guard: Guard{AllowLoopback: true}, Credentials: func(_ context.Context, ns, name string) (map[string][]byte, error) {
		if ns != "prod" || name != "prom-token" {
			return nil, fmt.Errorf("secret %s/%s not found", ns, name)
		}
		return map[string][]byte{"token": []byte("s3cret")}, nil
	}, Metrics: NewMetrics(prometheus.NewRegistry())}
	m := &v1alpha1.PrometheusMetric{
		Authentication: &v1alpha1.PrometheusAuthentication{BearerToken: &argo.SecretKeyRef{Name: "prom-token", Key: "token"}},
	}
	ts := time.Now()

	for range 3 {
		if s := p.Measure(t.Context(), "prod", m, "up", ts); s.Err != nil || len(s.Values) != 1 {
			t.Fatalf("measure: %+v", s)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("identical queries due at the same time sent %d times, want once", n)
	}
	if s := p.Measure(t.Context(), "prod", m, "up", ts.Add(time.Minute)); s.Err != nil || calls.Load() != 2 {
		t.Errorf("a query due later was not sent: %+v, %d calls", s, calls.Load())
	}
	if sent, saved := testutil.ToFloat64(p.Metrics.queries.WithLabelValues("ok")), testutil.ToFloat64(p.Metrics.saved); sent != 2 || saved != 2 {
		t.Errorf("metrics: %v queries sent, %v saved; want 2 and 2", sent, saved)
	}
	mu.Lock()
	defer mu.Unlock()
	if got.Get("Authorization") != "Bearer s3cret" {
		t.Errorf("headers sent: %v", got)
	}
	elsewhere := *m
	elsewhere.Address = "http://127.0.0.2:9"
	if s := p.Measure(t.Context(), "prod", &elsewhere, "up", ts); s.Err == nil || !strings.Contains(s.Err.Error(), "credentials from Secrets are sent only") {
		t.Errorf("credentials sent to a template's own address: %v", s.Err)
	}
	m.Authentication.BearerToken.Name = "missing"
	if s := p.Measure(t.Context(), "prod", m, "up", ts.Add(2*time.Minute)); s.Err == nil || !strings.Contains(s.Err.Error(), "not found") {
		t.Errorf("a missing Secret: %v", s.Err)
	}
}
