package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

// givenPreview creates a Preview of prod's VirtualService web in p's
// namespace, changed by change, and writes its status as the controller
// would, for the generation it is at.
func (p *plugin) givenPreview(name string, change func(*v1alpha1.Preview), status v1alpha1.PreviewStatus) *v1alpha1.Preview {
	p.t.Helper()
	pv := &v1alpha1.Preview{
		ObjectMeta: metav1.ObjectMeta{Namespace: p.ns, Name: name},
		Spec: v1alpha1.PreviewSpec{
			Source:  v1alpha1.PreviewSource{Namespace: "prod", VirtualService: &v1alpha1.PreviewRouteRef{Name: "web", Route: "primary"}},
			Service: v1alpha1.PreviewService{Name: "web", Port: 8080},
		},
	}
	if change != nil {
		change(pv)
	}
	if err := p.env.Client.Create(p.t.Context(), pv); err != nil {
		p.t.Fatal(err)
	}
	if status.ObservedGeneration == 0 {
		status.ObservedGeneration = pv.Generation
	}
	pv.Status = status
	if err := p.env.Client.Status().Update(p.t.Context(), pv); err != nil {
		p.t.Fatal(err)
	}
	return pv
}

// failedAnalysis is the controller's explanation of a preview whose
// success rate fell short.
func failedAnalysis(run string) *v1alpha1.RolloutAnalysis {
	since := metav1.NewTime(time.Date(2026, 11, 24, 10, 30, 0, 0, time.UTC))
	return &v1alpha1.RolloutAnalysis{Run: run, Phase: argo.AnalysisPhaseFailed, Message: "metric success-rate Failed", Metrics: []v1alpha1.MetricExplanation{
		{Name: "success-rate", Phase: argo.AnalysisPhaseFailed, Since: &since, Query: `sum(rate(istio_requests_total{destination_workload="web"}[1m]))`,
			Value: "[0.8]", SuccessCondition: "result[0] >= 0.99", Message: "did not meet result[0] >= 0.99",
			Counters: v1alpha1.MetricCounters{Successful: 2, Failed: 1}, Limits: &v1alpha1.MetricLimits{ConsecutiveErrorLimit: 4}},
		{Name: "latency", Phase: argo.AnalysisPhaseSuccessful, Since: &since, Query: "histogram_quantile(0.99, x)", Value: "[120]"},
	}}
}

func TestPreviewGetAndList(t *testing.T) {
	p := newPlugin(t).inNamespace("pr-42")
	now := time.Now().Truncate(time.Second)
	expires, since := metav1.NewTime(now.Add(23*time.Hour)), metav1.NewTime(now.Add(-5*time.Minute))
	p.givenPreview("web", func(pv *v1alpha1.Preview) {
		pv.Spec.Analysis = &v1alpha1.Analysis{Templates: []v1alpha1.AnalysisTemplateRef{{TemplateName: "success-rate"}},
			Args: []argo.AnalysisRunArgument{{Name: "workload", ValueFrom: &argo.ArgumentValueFrom{FieldRef: &argo.FieldRef{FieldPath: "status.sourceWorkload"}}}}}
		pv.Spec.Match = []v1alpha1.PreviewMatch{{Path: &v1alpha1.StringMatch{Prefix: "/api"}}}
	}, v1alpha1.PreviewStatus{
		Phase: "Failed", Message: "analysis Failed: metric success-rate Failed; the mirror is gone",
		Source: "prod/web/primary", Rule: "previews/pull-requests", RemovedHeaders: []string{"authorization", "cookie"},
		ExpiresAt: &expires, MirroringSince: &since, Analysis: failedAnalysis("web-preview-x"),
		Conditions: []metav1.Condition{{Type: "Stalled", Status: metav1.ConditionTrue, Reason: "Failed", Message: "m", LastTransitionTime: since}},
	})
	// The AnalysisRun, live, has measured once more than status explains.
	run := &v1alpha1.AnalysisRun{
		ObjectMeta: metav1.ObjectMeta{Namespace: p.ns, Name: "web-preview-x"},
		Spec:       v1alpha1.AnalysisRunSpec{Metrics: []v1alpha1.Metric{{Name: "success-rate", Provider: v1alpha1.MetricProvider{Prometheus: &v1alpha1.PrometheusMetric{Query: "up"}}}}},
	}
	if err := p.env.Client.Create(t.Context(), run); err != nil {
		t.Fatal(err)
	}
	run.Status = v1alpha1.AnalysisRunStatus{Phase: "Failed", MetricResults: []argo.MetricResult{{Name: "success-rate", Phase: "Failed", Successful: 3, Failed: 1,
		Measurements: []argo.Measurement{{Phase: "Failed", Value: "[0.81]"}}, Message: "did not meet result[0] >= 0.99"}}}
	if err := p.env.Client.Status().Update(t.Context(), run); err != nil {
		t.Fatal(err)
	}
	staging := p.inNamespace("pr-7")
	staging.givenPreview("api", func(pv *v1alpha1.Preview) {
		pv.Spec.Source = v1alpha1.PreviewSource{Namespace: "prod", Rollout: "api"}
		pv.Spec.Percentage = 5
	}, v1alpha1.PreviewStatus{Phase: "Mirroring", Message: "receiving copies", Rule: "previews/staging", ExpiresAt: &expires})

	code, out := p.run("preview", "get", "web")
	for _, want := range []string{
		"Phase:            Failed\n", "Message:          analysis Failed: metric success-rate Failed; the mirror is gone",
		"Source:           prod/web/primary", "Rule:             previews/pull-requests", "Service:          web:8080",
		"Percentage:       10% of matching requests", "Methods:          GET, HEAD", "Match:            path starts with /api",
		"Removed headers:  authorization, cookie", "TTL:              24h0m0s",
		"Expires:          " + expires.UTC().Format(time.RFC3339) + " (in ", "Mirroring since:  " + since.UTC().Format(time.RFC3339) + " (5m",
		"Templates:        success-rate; args workload=from status.sourceWorkload",
		// The analysis, as get prints a Rollout's: the run live, then why.
		"web-preview-x  success-rate  Failed", "3/1/0/0", "[0.81]",
		"success-rate Failed since 2026-11-24T10:30:00Z: did not meet result[0] >= 0.99",
		`query: sum(rate(istio_requests_total{destination_workload="web"}[1m]))`, "failed 1 (limit 0), inconclusive 0 (limit 0), errors in a row 0 (limit 4)",
		"Stalled  True    Failed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("get: missing %q in:\n%s", want, out)
		}
	}
	if code != 0 || strings.Contains(out, "histogram_quantile") {
		t.Errorf("get: exit %d, or explains a metric that passed:\n%s", code, out)
	}

	for _, format := range []string{"json", "yaml"} {
		code, out := p.run("preview", "get", "web", "-o", format)
		var got v1alpha1.Preview
		if err := decodeStrict(format, out, &got); code != 0 || err != nil || got.Kind != "Preview" || got.Status.Phase != "Failed" || got.ManagedFields != nil {
			t.Errorf("get -o %s: exit %d (%v)\n%s", format, code, err, out)
		}
	}
	if code, out := p.run("preview", "get", "web", "-o", "name"); code != 0 || out != "preview.tugboat.dev/web\n" {
		t.Errorf("get -o name: exit %d\n%s", code, out)
	}
	code, out = p.run("preview", "get", "web", "-o", "wide")
	if rows := table(out); code != 0 || len(rows) != 2 || !slices.Equal(rows[0], []string{"NAME", "SOURCE", "PERCENT", "PHASE", "EXPIRES", "AGE", "RULE", "MESSAGE"}) ||
		!hasFields(out, "web", "prod/web/primary", "10%", "Failed", "in", "22h") || !hasFields(out, "previews/pull-requests", "analysis", "Failed:") {
		t.Errorf("get -o wide: exit %d\n%s", code, out)
	}
	if code, out := p.run("preview", "get", "missing"); code != exitTrouble || !strings.Contains(out, "preview pr-42/missing") || !strings.Contains(out, "not found") {
		t.Errorf("get of a missing preview: exit %d\n%s", code, out)
	}

	// Status explains the analysis when the run is gone.
	if err := p.env.Client.Delete(t.Context(), run); err != nil {
		t.Fatal(err)
	}
	if code, out := p.run("preview", "get", "web"); code != 0 || !hasFields(out, "web-preview-x", "success-rate", "Failed", "10:30:00", "2/1/0/0", "[0.8]") {
		t.Errorf("get without the run: exit %d\n%s", code, out)
	}

	code, out = p.run("preview", "list")
	if rows := table(out); code != 0 || len(rows) != 2 || !slices.Equal(rows[0], []string{"NAME", "SOURCE", "PERCENT", "PHASE", "EXPIRES", "AGE"}) ||
		!slices.Equal(rows[1][:5], []string{"web", "prod/web/primary", "10%", "Failed", "in"}) {
		t.Errorf("list: exit %d\n%s", code, out)
	}
	code, out = p.run("preview", "list", "-A", "-o", "wide")
	rows := table(out)
	if code != 0 || len(rows) != 3 || rows[0][0] != "NAMESPACE" || rows[0][len(rows[0])-1] != "MESSAGE" {
		t.Fatalf("list -A -o wide: exit %d\n%s", code, out)
	}
	if !slices.Equal(rows[1][:5], []string{"pr-42", "web", "prod/web/primary", "10%", "Failed"}) ||
		!slices.Equal(rows[2][:6], []string{"pr-7", "api", "rollout", "prod/api", "5%", "Mirroring"}) || !hasFields(out, "previews/staging", "receiving", "copies") {
		t.Errorf("list -A -o wide:\n%s", out)
	}
	code, out = p.run("preview", "list", "--all-namespaces", "-o", "json")
	var list struct {
		Kind  string
		Items []v1alpha1.Preview
	}
	if err := json.Unmarshal([]byte(out), &list); code != 0 || err != nil || list.Kind != "List" || len(list.Items) != 2 || list.Items[1].Kind != "Preview" {
		t.Errorf("list -A -o json: exit %d (%v)\n%s", code, err, out)
	}
	if code, out := p.run("preview", "list", "-A", "-o", "name"); code != 0 || out != "preview.tugboat.dev/web\npreview.tugboat.dev/api\n" {
		t.Errorf("list -A -o name: exit %d\n%s", code, out)
	}
	empty := p.inNamespace("pr-0")
	if code, out, errOut := empty.runApart("preview", "list"); code != 0 || out != "" || errOut != "no previews in namespace pr-0\n" {
		t.Errorf("list of none: exit %d\n%s%s", code, out, errOut)
	}
}

// hasFields reports whether a line of out holds want as consecutive fields.
func hasFields(out string, want ...string) bool {
	for _, row := range table(out) {
		for i := 0; i+len(want) <= len(row); i++ {
			if slices.Equal(row[i:i+len(want)], want) {
				return true
			}
		}
	}
	return false
}

// table splits a printed table into rows of fields.
func table(out string) [][]string {
	var rows [][]string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		rows = append(rows, strings.Fields(line))
	}
	return rows
}

// TestPreviewVerbs: preview says which verbs it has.
func TestPreviewVerbs(t *testing.T) {
	var c cli
	if code := c.run(t, "preview", "promote"); code != exitTrouble || !strings.Contains(c.errOut.String(), `no verb "promote"; there are create, get, list, wait and delete`) {
		t.Errorf("preview promote: exit %d\n%s", code, c.errOut.String())
	}
	if code := c.run(t, "preview", "create", "--help"); code != 0 || !strings.Contains(c.out.String(), "kubectl tug preview create NAME") {
		t.Errorf("preview create --help: exit %d\n%s", code, c.out.String())
	}
}
