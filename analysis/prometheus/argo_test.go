package prometheus

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/tugboatdev/tugboat/analysis"
	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/sandbox/promserver"
	"github.com/tugboatdev/tugboat/sandbox/toolchain"
)

// TestArgoTemplateEvaluates takes the Argo Rollouts AnalysisTemplate in
// examples/argo-analysistemplate (Argo's documentation example with only its
// apiVersion changed) and evaluates it against a real Prometheus holding
// Istio request counts.
func TestArgoTemplateEvaluates(t *testing.T) {
	tmpl := argoExample(t, "success-rate")
	ts := time.Now().Add(-20 * time.Minute).Truncate(time.Second)
	at := func(d time.Duration) string { return strconv.FormatInt(ts.Add(d).Unix(), 10) }
	srv := promserver.Start(t, promserver.Options{OpenMetrics: `# TYPE istio_requests counter
istio_requests_total{reporter="source",destination_service="good.prod.svc.cluster.local",response_code="200"} 1000 ` + at(-time.Minute) + `
istio_requests_total{reporter="source",destination_service="good.prod.svc.cluster.local",response_code="200"} 1990 ` + at(0) + `
istio_requests_total{reporter="source",destination_service="good.prod.svc.cluster.local",response_code="500"} 0 ` + at(-time.Minute) + `
istio_requests_total{reporter="source",destination_service="good.prod.svc.cluster.local",response_code="500"} 10 ` + at(0) + `
istio_requests_total{reporter="source",destination_service="bad.prod.svc.cluster.local",response_code="200"} 1000 ` + at(-time.Minute) + `
istio_requests_total{reporter="source",destination_service="bad.prod.svc.cluster.local",response_code="200"} 1800 ` + at(0) + `
istio_requests_total{reporter="source",destination_service="bad.prod.svc.cluster.local",response_code="500"} 0 ` + at(-time.Minute) + `
istio_requests_total{reporter="source",destination_service="bad.prod.svc.cluster.local",response_code="500"} 200 ` + at(0) + `
`})
	for _, tt := range []struct {
		service string
		want    argo.AnalysisPhase
	}{
		{"good.prod.svc.cluster.local", argo.AnalysisPhaseSuccessful},
		{"bad.prod.svc.cluster.local", argo.AnalysisPhaseFailed},
	} {
		t.Run(tt.service, func(t *testing.T) {
			spec, err := analysis.RunSpec([]v1alpha1.AnalysisTemplateSpec{tmpl.Spec}, []argo.Argument{{Name: "service-name", Value: ptr.To(tt.service)}})
			if err != nil {
				t.Fatal(err)
			}
			m := spec.Metrics[0]
			query, err := analysis.Render(m.Provider.Prometheus.Query, map[string]string{"service-name": tt.service})
			if err != nil {
				t.Fatal(err)
			}
			prom := *m.Provider.Prometheus
			prom.Address = srv.URL // the example's address is a placeholder
			s := (&Provider{Guard: Guard{AllowLoopback: true}}).Measure(t.Context(), "prod", &prom, query, ts)
			phase, value, msg := analysis.Judge(m, s, nil)
			if phase != tt.want {
				t.Errorf("phase %s (value %s: %s), want %s", phase, value, msg, tt.want)
			}
			limits, err := analysis.LimitsOf(m, nil)
			if err != nil || limits.Failure != 3 {
				t.Errorf("failureLimit from the Argo template: %+v, %v", limits, err)
			}
		})
	}
}

// TestArgoRangeQueryTemplateEvaluates takes Argo Rollouts' range query
// example (examples/argo-analysistemplate, only its apiVersion changed),
// renders it as the AnalysisRun controller does, and evaluates it against a
// real Prometheus holding five minutes of latencies.
func TestArgoRangeQueryTemplateEvaluates(t *testing.T) {
	tmpl := argoExample(t, "range-query-example")
	ts := time.Now().Add(-20 * time.Minute).Truncate(time.Minute)
	var om strings.Builder
	om.WriteString("# TYPE http_latency_ms gauge\n")
	for _, series := range []struct {
		service string
		values  []int
	}{
		{"good", []int{120, 180, 240, 210, 190, 150}},
		{"bad", []int{120, 180, 1400, 210, 190, 150}}, // one slow minute
	} {
		for i, v := range series.values {
			at := ts.Add(time.Duration(i-5) * time.Minute).Unix()
			fmt.Fprintf(&om, "http_latency_ms{service=%q} %d %d\n", series.service, v, at)
		}
	}
	srv := promserver.Start(t, promserver.Options{OpenMetrics: om.String()})
	for _, tt := range []struct {
		service string
		want    argo.AnalysisPhase
	}{
		{"good", argo.AnalysisPhaseSuccessful},
		{"bad", argo.AnalysisPhaseFailed},
	} {
		t.Run(tt.service, func(t *testing.T) {
			spec, err := analysis.RunSpec([]v1alpha1.AnalysisTemplateSpec{tmpl.Spec}, []argo.Argument{{Name: "service-name", Value: ptr.To(tt.service)}})
			if err != nil {
				t.Fatal(err)
			}
			args := map[string]string{}
			for _, a := range spec.Args {
				args[a.Name] = *a.Value
			}
			m := spec.Metrics[0]
			prom := *m.Provider.Prometheus
			prom.Address = srv.URL // the example's address is a placeholder
			query, err := analysis.Render(prom.Query, args)
			if err != nil {
				t.Fatal(err)
			}
			rq, err := analysis.RenderRange(*prom.RangeQuery, args)
			if err != nil {
				t.Fatal(err)
			}
			prom.RangeQuery = &rq
			s := (&Provider{Guard: Guard{AllowLoopback: true}}).Measure(t.Context(), "prod", &prom, query, ts)
			if len(s.Values) != 6 {
				t.Errorf("values %v (%v), want the six minutes from now() - 5m to now()", s.Values, s.Err)
			}
			if phase, value, msg := analysis.Judge(m, s, args); phase != tt.want {
				t.Errorf("phase %s (value %s: %s), want %s", phase, value, msg, tt.want)
			}
		})
	}
}

// argoExample reads the template called name from
// examples/argo-analysistemplate, strictly, so that a field Tugboat lacks
// fails.
func argoExample(t *testing.T, name string) v1alpha1.AnalysisTemplate {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(toolchain.Root(), "examples", "argo-analysistemplate", "analysistemplate.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range strings.Split(string(raw), "\n---\n") {
		var tmpl v1alpha1.AnalysisTemplate
		if err := yaml.UnmarshalStrict([]byte(doc), &tmpl); err != nil {
			t.Fatal(err)
		}
		if tmpl.Kind == "AnalysisTemplate" && tmpl.Name == name {
			return tmpl
		}
	}
	t.Fatalf("no AnalysisTemplate %s in the example", name)
	return v1alpha1.AnalysisTemplate{}
}
