package reconciler

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/tugboatdev/tugboat/analysis"
	"github.com/tugboatdev/tugboat/analysis/prometheus"
	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/sandbox/promserver"
)

// These tests take measurements as the controller does (step, with the
// Prometheus adapter), without an API server: what they check is where
// queries go and what status says, not how status is written.

// argoAddressTemplate is an Argo Rollouts AnalysisTemplate, only its
// apiVersion changed, that takes its Prometheus and its tenant header from
// arguments, as Argo substitutes {{args.*}} everywhere in a metric.
const argoAddressTemplate = `apiVersion: tugboat.dev/v1alpha1
kind: AnalysisTemplate
metadata:
  name: success-rate
spec:
  args:
  - name: service-name
  - name: prometheus-address
  - name: tenant
    value: tenant_a
  metrics:
  - name: success-rate
    interval: 5m
    successCondition: result[0] >= 0.95
    failureLimit: 3
    provider:
      prometheus:
        address: "{{args.prometheus-address}}"
        timeout: 40
        headers:
        - key: X-Scope-OrgID
          value: "{{args.tenant}}"
        query: |
          sum(istio_requests_total{destination_service=~"{{args.service-name}}",response_code!~"5.*"})
          /
          sum(istio_requests_total{destination_service=~"{{args.service-name}}"})
`

// TestArgoTemplateWithAddressFromArgument evaluates an Argo template whose
// address is an argument against a real Prometheus.
func TestArgoTemplateWithAddressFromArgument(t *testing.T) {
	ts := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	at := strconv.FormatInt(ts.Unix(), 10)
	srv := promserver.Start(t, promserver.Options{OpenMetrics: `# TYPE istio_requests counter
istio_requests_total{destination_service="good.prod.svc.cluster.local",response_code="200"} 990 ` + at + `
istio_requests_total{destination_service="good.prod.svc.cluster.local",response_code="500"} 10 ` + at + `
istio_requests_total{destination_service="bad.prod.svc.cluster.local",response_code="200"} 800 ` + at + `
istio_requests_total{destination_service="bad.prod.svc.cluster.local",response_code="500"} 200 ` + at + `
`})
	var tmpl v1alpha1.AnalysisTemplate
	if err := yaml.UnmarshalStrict([]byte(argoAddressTemplate), &tmpl); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		service string
		want    argo.AnalysisPhase
	}{
		{"good.prod.svc.cluster.local", argo.AnalysisPhaseSuccessful},
		{"bad.prod.svc.cluster.local", argo.AnalysisPhaseFailed},
	} {
		t.Run(tt.service, func(t *testing.T) {
			spec, err := analysis.RunSpec([]v1alpha1.AnalysisTemplateSpec{tmpl.Spec}, []argo.Argument{
				{Name: "service-name", Value: ptr.To(tt.service)},
				{Name: "prometheus-address", Value: ptr.To(srv.URL)},
			})
			if err != nil {
				t.Fatal(err)
			}
			r := &Reconciler{Measurer: &prometheus.Provider{Guard: prometheus.Guard{AllowLoopback: true}}, Now: time.Now}
			run := &v1alpha1.AnalysisRun{Spec: spec}
			measureOnce(t, r, run, ts)
			if got := lastMeasurement(t, run); got.Phase != tt.want {
				t.Errorf("measured %s (%s), want %s", got.Phase, got.Message, tt.want)
			}
			if got := run.Spec.Metrics[0].Provider.Prometheus.Address; got != "{{args.prometheus-address}}" {
				t.Errorf("the run's spec was changed: address %q", got)
			}
		})
	}
}

// TestAddressAndHeadersFromArguments: arguments are substituted in the
// address and header values, the result is still admitted by the
// allow-list, and arguments from Secrets have no place there.
func TestAddressAndHeadersFromArguments(t *testing.T) {
	var mu sync.Mutex
	var sent []http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		sent = append(sent, r.Header.Clone())
		mu.Unlock()
		fmt.Fprint(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"1"]}]}}`)
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	secrets := func(context.Context, string, string) (map[string][]byte, error) {
		return map[string][]byte{"token": []byte("s3cret"), "address": []byte(srv.URL)}, nil
	}
	fromSecret := func(name, key string) argo.Argument {
		return argo.Argument{Name: name, ValueFrom: &argo.ValueFrom{SecretKeyRef: &argo.SecretKeyRef{Name: "s", Key: key}}}
	}
	for _, tt := range []struct {
		name     string
		guard    prometheus.Guard
		address  string
		header   string
		args     []argo.Argument
		want     argo.AnalysisPhase
		message  string
		received string // the tenant header the server got; empty: no query
	}{{
		name:     "an address and a header value from arguments",
		guard:    prometheus.Guard{AllowLoopback: true},
		address:  "{{ args.prometheus-address }}",
		header:   "{{args.tenant}}",
		args:     []argo.Argument{{Name: "prometheus-address", Value: ptr.To(srv.URL)}, {Name: "tenant", Value: ptr.To("tenant_b")}},
		want:     argo.AnalysisPhaseSuccessful,
		received: "tenant_b",
	}, {
		name:     "part of an address",
		guard:    prometheus.Guard{AllowLoopback: true},
		address:  "http://{{args.host}}/",
		header:   "tenant_c",
		args:     []argo.Argument{{Name: "host", Value: ptr.To(host)}},
		want:     argo.AnalysisPhaseSuccessful,
		received: "tenant_c",
	}, {
		name:    "a rendered address is still admitted by the allow-list",
		address: "{{args.prometheus-address}}",
		args:    []argo.Argument{{Name: "prometheus-address", Value: ptr.To(srv.URL)}},
		want:    argo.AnalysisPhaseError,
		message: "refused by policy",
	}, {
		name:    "an argument that makes the address something else",
		guard:   prometheus.Guard{AllowLoopback: true},
		address: "{{args.prometheus-address}}",
		args:    []argo.Argument{{Name: "prometheus-address", Value: ptr.To("file:///etc/passwd")}},
		want:    argo.AnalysisPhaseError,
		message: `address "{{args.prometheus-address}}" does not render to an http:// or https:// URL`,
	}, {
		name:    "a user name slipped into the host",
		guard:   prometheus.Guard{AllowLoopback: true},
		address: "http://{{args.host}}/",
		args:    []argo.Argument{{Name: "host", Value: ptr.To("prometheus.monitoring@" + host)}},
		want:    argo.AnalysisPhaseError,
		message: "the metric's address holds a user name or password",
	}, {
		name:    "a Secret argument in the address",
		guard:   prometheus.Guard{AllowLoopback: true},
		address: "{{args.prometheus-address}}",
		args:    []argo.Argument{fromSecret("prometheus-address", "address")},
		want:    argo.AnalysisPhaseError,
		message: "arguments from Secrets cannot be used in the address",
	}, {
		name:    "a Secret argument in a header",
		guard:   prometheus.Guard{AllowLoopback: true},
		address: srv.URL,
		header:  "Bearer {{args.token}}",
		args:    []argo.Argument{fromSecret("token", "token")},
		want:    argo.AnalysisPhaseError,
		message: "header X-Scope-OrgID: arguments from Secrets cannot be used in headers",
	}, {
		name:    "a header value that would end the header",
		guard:   prometheus.Guard{AllowLoopback: true},
		address: srv.URL,
		header:  "{{args.tenant}}",
		args:    []argo.Argument{{Name: "tenant", Value: ptr.To("a\r\nX-Other: b")}},
		want:    argo.AnalysisPhaseError,
		message: "header X-Scope-OrgID: the value holds control characters",
	}} {
		t.Run(tt.name, func(t *testing.T) {
			mu.Lock()
			sent = nil
			mu.Unlock()
			m := v1alpha1.Metric{Name: "m", SuccessCondition: "result[0] == 1", Provider: v1alpha1.MetricProvider{Prometheus: &v1alpha1.PrometheusMetric{
				Address: tt.address, Query: "up", Timeout: ptr.To[int64](2),
			}}}
			if tt.header != "" {
				m.Provider.Prometheus.Headers = []argo.WebMetricHeader{{Key: "X-Scope-OrgID", Value: tt.header}}
			}
			run := &v1alpha1.AnalysisRun{Spec: v1alpha1.AnalysisRunSpec{Metrics: []v1alpha1.Metric{m}, Args: tt.args}}
			r := &Reconciler{Measurer: &prometheus.Provider{Guard: tt.guard}, Secrets: secrets, Now: time.Now}
			measureOnce(t, r, run, time.Now())
			if got := lastMeasurement(t, run); got.Phase != tt.want || !strings.Contains(got.Message, tt.message) {
				t.Errorf("measured %s, message %q; want %s with %q", got.Phase, got.Message, tt.want, tt.message)
			}
			if tt.want != argo.AnalysisPhaseSuccessful {
				for _, leak := range []string{"127.0.0.1", "s3cret", "passwd", "X-Other"} {
					if strings.Contains(fmt.Sprintf("%+v", run.Status), leak) {
						t.Errorf("status shows %q: %+v", leak, run.Status)
					}
				}
			}
			if h := run.Spec.Metrics[0].Provider.Prometheus.Headers; tt.header != "" && h[0].Value != tt.header {
				t.Errorf("the run's spec was changed: header %q", h[0].Value)
			}
			mu.Lock()
			defer mu.Unlock()
			switch {
			case tt.received == "" && len(sent) > 0:
				t.Errorf("%d queries sent, want none", len(sent))
			case tt.received != "" && (len(sent) != 1 || sent[0].Get("X-Scope-OrgID") != tt.received):
				t.Errorf("sent %v, want one query with X-Scope-OrgID %s", sent, tt.received)
			}
		})
	}
}

// TestSecretQueriesAreNeverSentByGET: a server that answers POST with 405
// would make the client library send the query again by GET, with the
// Secret's value in the URL, which proxies log.
func TestSecretQueriesAreNeverSentByGET(t *testing.T) {
	var mu sync.Mutex
	var urls []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		mu.Lock()
		urls = append(urls, r.URL.String())
		mu.Unlock()
		fmt.Fprint(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"1"]}]}}`)
	}))
	defer srv.Close()
	r := &Reconciler{
		Measurer: &prometheus.Provider{DefaultAddress: srv.URL, Guard: prometheus.Guard{AllowLoopback: true}},
		Secrets: func(context.Context, string, string) (map[string][]byte, error) {
			return map[string][]byte{"token": []byte("s3cret")}, nil
		},
		Now: time.Now,
	}
	run := &v1alpha1.AnalysisRun{Spec: v1alpha1.AnalysisRunSpec{
		Metrics: []v1alpha1.Metric{{Name: "m", SuccessCondition: "result[0] == 1", Provider: v1alpha1.MetricProvider{Prometheus: &v1alpha1.PrometheusMetric{
			Query: `up{token="{{args.token}}"}`,
		}}}},
		Args: []argo.Argument{{Name: "token", ValueFrom: &argo.ValueFrom{SecretKeyRef: &argo.SecretKeyRef{Name: "s", Key: "token"}}}},
	}}
	measureOnce(t, r, run, time.Now())
	mu.Lock()
	defer mu.Unlock()
	if len(urls) != 0 {
		t.Errorf("a query holding a Secret's value was sent by GET: %v", urls)
	}
	if got := lastMeasurement(t, run); got.Phase != argo.AnalysisPhaseError || !strings.Contains(got.Message, "never sent by GET") || strings.Contains(got.Message, "s3cret") {
		t.Errorf("measured %s, message %q; want Error saying the query is never sent by GET", got.Phase, got.Message)
	}
}

// measureOnce steps the run, as reconciles do, until its one metric has a
// measurement or a verdict: measurements come back off the reconcile path.
func measureOnce(t *testing.T, r *Reconciler, run *v1alpha1.AnalysisRun, ts time.Time) {
	t.Helper()
	err := wait.PollUntilContextTimeout(t.Context(), 5*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		r.step(ctx, run, ts)
		res := run.Status.MetricResults
		return len(res) == 1 && (len(res[0].Measurements) > 0 || res[0].Phase.Completed()), nil
	})
	if err != nil {
		t.Fatalf("no measurement: %v; status %+v", err, run.Status)
	}
}

// lastMeasurement is the run's one metric's last measurement, or, for an
// error found before anything is measured, the metric's phase and message.
func lastMeasurement(t *testing.T, run *v1alpha1.AnalysisRun) argo.Measurement {
	t.Helper()
	if len(run.Status.MetricResults) != 1 {
		t.Fatalf("metric results %+v", run.Status.MetricResults)
	}
	res := run.Status.MetricResults[0]
	if len(res.Measurements) == 0 {
		return argo.Measurement{Phase: res.Phase, Message: res.Message}
	}
	return res.Measurements[len(res.Measurements)-1]
}
