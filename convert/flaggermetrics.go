package convert

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

// flaggerIstioQueries are Flagger's builtin metrics on Istio (from
// pkg/metrics/observers/istio.go), in Flagger's units: percent and
// milliseconds, which the thresholds are written in.
var flaggerIstioQueries = map[string]string{
	"request-success-rate": `sum(rate(istio_requests_total{reporter="destination", destination_workload_namespace="{{ namespace }}", destination_workload=~"{{ target }}", response_code!~"5.*"}[{{ interval }}]))
/
sum(rate(istio_requests_total{reporter="destination", destination_workload_namespace="{{ namespace }}", destination_workload=~"{{ target }}"}[{{ interval }}]))
* 100
`,
	"request-duration": `histogram_quantile(0.99, sum(rate(istio_request_duration_milliseconds_bucket{reporter="destination", destination_workload_namespace="{{ namespace }}", destination_workload=~"{{ target }}"}[{{ interval }}])) by (le))
`,
}

// flaggerMetricTemplate is the part of a MetricTemplate Tugboat reads.
type flaggerMetricTemplate struct {
	Spec struct {
		Provider struct {
			Type               string `json:"type"`
			Address            string `json:"address"`
			InsecureSkipVerify bool   `json:"insecureSkipVerify"`
		} `json:"provider"`
		Query string `json:"query"`
	} `json:"spec"`
}

var (
	flaggerVar      = regexp.MustCompile(`\{\{\s*(name|namespace|target|service|ingress|interval)\s*\}\}`)
	flaggerVariable = regexp.MustCompile(`\{\{\s*variables\.([A-Za-z0-9_-]+)\s*\}\}`)
)

// flaggerQuery rewrites Flagger's query templating ({{ namespace }},
// {{ variables.x }}) into Tugboat's arguments ({{args.namespace}},
// {{args.x}}) and returns the arguments it uses, in order. ok is false when
// templating Tugboat cannot express is left.
func flaggerQuery(q string) (out string, args []string, ok bool) {
	seen := map[string]bool{}
	add := func(re *regexp.Regexp, s string) string {
		return re.ReplaceAllStringFunc(s, func(m string) string {
			n := re.FindStringSubmatch(m)[1]
			if !seen[n] {
				seen[n] = true
				args = append(args, n)
			}
			return "{{args." + n + "}}"
		})
	}
	out = add(flaggerVariable, add(flaggerVar, q))
	rest := strings.ReplaceAll(out, "{{args.", "")
	return out, args, !strings.Contains(rest, "{{")
}

// condition is a thresholdRange as a success condition.
func condition(min, max *float64) string {
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	var parts []string
	if min != nil {
		parts = append(parts, "result[0] >= "+f(*min))
	}
	if max != nil {
		parts = append(parts, "result[0] <= "+f(*max))
	}
	return strings.Join(parts, " && ")
}

var notDNS = regexp.MustCompile(`[^a-z0-9-]+`)

// dnsName makes a metric's name fit an object name.
func dnsName(s string) string {
	return strings.Trim(notDNS.ReplaceAllString(strings.ToLower(s), "-"), "-")
}

// flaggerMetrics makes one AnalysisTemplate per metric of the Canary, the
// query inline (a MetricTemplate's is read from the input), judged by its
// thresholdRange, measured every analysis interval, and failing after
// threshold failed checks, as Flagger's analysis does.
func (c *converter) flaggerMetrics(d *doc, t *tracker, src *flaggerCanary, interval string) ([]*unstructured.Unstructured, error) {
	threshold := src.Spec.Analysis.Threshold
	if threshold < 1 {
		threshold = 1 // Flagger's default
	}
	var out []*unstructured.Unstructured
	for i, fm := range src.Spec.Analysis.Metrics {
		p := fmt.Sprintf("spec.analysis.metrics[%d]", i)
		t.use(p)
		window := fm.Interval
		if window == "" {
			window = "1m"
		}
		prom := &v1alpha1.PrometheusMetric{}
		switch {
		case fm.TemplateRef != nil:
			ns := fm.TemplateRef.Namespace
			if ns == "" {
				ns = src.Namespace
			}
			md := c.lookup("flagger.app", "MetricTemplate", ns, fm.TemplateRef.Name)
			if md == nil {
				c.find(d, p+".templateRef", "MetricTemplate %s is not in the input: convert it together with the Canary (kubectl tug convert -f canary.yaml -f metrictemplate.yaml); metric %s was left out", fm.TemplateRef.Name, fm.Name)
				continue
			}
			var mt flaggerMetricTemplate
			if err := decode(md.raw, &mt); err != nil {
				return nil, fmt.Errorf("MetricTemplate %s: %w", fm.TemplateRef.Name, err)
			}
			if ty := mt.Spec.Provider.Type; ty != "" && ty != "prometheus" {
				c.find(d, p+".templateRef", "MetricTemplate %s queries %s; Tugboat measures with Prometheus, web and job only: metric %s was left out", fm.TemplateRef.Name, ty, fm.Name)
				continue
			}
			prom.Query, prom.Address, prom.Insecure = mt.Spec.Query, mt.Spec.Provider.Address, mt.Spec.Provider.InsecureSkipVerify
		case fm.Query != "":
			prom.Query = fm.Query
		case flaggerIstioQueries[fm.Name] != "":
			prom.Query = flaggerIstioQueries[fm.Name]
		default:
			c.find(d, p, "metric %s is neither a builtin (request-success-rate, request-duration) nor a templateRef: it was left out", fm.Name)
			continue
		}
		q, used, ok := flaggerQuery(prom.Query)
		if !ok {
			c.find(d, p, "the query of metric %s uses templating Tugboat has no arguments for: it was left out", fm.Name)
			continue
		}
		prom.Query = q
		values := map[string]string{"interval": window, "name": src.Name, "service": orDefault(src.Spec.Service.Name, src.Spec.TargetRef.Name), "ingress": ""}
		var args []argo.Argument
		missing := false
		for _, a := range used {
			switch a {
			case "namespace", "target":
				args = append(args, argo.Argument{Name: a}) // given by the Rollout
			default:
				v, ok := values[a]
				if !ok {
					v, ok = fm.TemplateVariables[a]
				}
				if !ok || (a == "ingress") {
					c.find(d, p, "the query of metric %s uses %s, which has no value here: metric %s was left out", fm.Name, a, fm.Name)
					missing = true
				}
				args = append(args, argo.Argument{Name: a, Value: ptr.To(v)})
			}
		}
		if missing {
			continue
		}
		metric := v1alpha1.Metric{
			Name:         fm.Name,
			Interval:     argo.DurationString(interval),
			FailureLimit: ptr.To(intstr.FromInt32(threshold - 1)),
			Provider:     v1alpha1.MetricProvider{Prometheus: prom},
		}
		if r := fm.ThresholdRange; r != nil {
			metric.SuccessCondition = condition(r.Min, r.Max)
		}
		tpl := &v1alpha1.AnalysisTemplate{Spec: v1alpha1.AnalysisTemplateSpec{Args: args, Metrics: []v1alpha1.Metric{metric}}}
		tpl.APIVersion, tpl.Kind = v1alpha1.GroupVersion.String(), "AnalysisTemplate"
		tpl.Name, tpl.Namespace = src.Name+"-"+dnsName(fm.Name), src.Namespace
		u, err := object(tpl)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, nil
}

var metricTemplateReasons = map[string]string{
	"spec.provider.secretRef": "Tugboat reads Prometheus credentials from a Secret in the analysed object's namespace: set spec.metrics[].provider.prometheus.authentication (basicAuth with keys username and password, or bearerToken)",
	"spec.provider.region":    "Tugboat measures with Prometheus, web and job only",
}

// flaggerMetricTemplate converts a MetricTemplate on its own into an
// AnalysisTemplate of the same name, for Rollouts written by hand: its
// thresholds, which Flagger keeps in each Canary, become the arguments min
// and max.
func (c *converter) flaggerMetricTemplate(d *doc) error {
	var src flaggerMetricTemplate
	if err := decode(d.raw, &src); err != nil {
		return err
	}
	d.converted = true
	t := newTracker(d.raw, metricTemplateReasons)
	m := meta(t, d.raw)
	t.use("spec.provider.type")
	if ty := src.Spec.Provider.Type; ty != "" && ty != "prometheus" {
		c.find(d, "spec.provider.type", "Tugboat measures with Prometheus, web and job only, not %s: no template was made", ty)
		t.use("spec")
		return nil
	}
	t.use("spec.query", "spec.provider.address", "spec.provider.insecureSkipVerify")
	q, used, ok := flaggerQuery(src.Spec.Query)
	if !ok {
		c.find(d, "spec.query", "the query uses templating Tugboat has no arguments for: no template was made")
		return nil
	}
	var args []argo.Argument
	for _, a := range used {
		arg := argo.Argument{Name: a}
		if a == "interval" {
			arg.Value = ptr.To("1m")
		}
		args = append(args, arg)
	}
	args = append(args, argo.Argument{Name: "min", Value: ptr.To("-Inf")}, argo.Argument{Name: "max", Value: ptr.To("+Inf")})
	tpl := &v1alpha1.AnalysisTemplate{Spec: v1alpha1.AnalysisTemplateSpec{Args: args, Metrics: []v1alpha1.Metric{{
		Name:             d.name(),
		SuccessCondition: "result[0] >= asFloat(args.min) && result[0] <= asFloat(args.max)",
		Provider: v1alpha1.MetricProvider{Prometheus: &v1alpha1.PrometheusMetric{
			Query: q, Address: src.Spec.Provider.Address, Insecure: src.Spec.Provider.InsecureSkipVerify,
		}},
	}}}}
	tpl.APIVersion, tpl.Kind = v1alpha1.GroupVersion.String(), "AnalysisTemplate"
	u, err := object(tpl)
	if err != nil {
		return err
	}
	u.Object["metadata"] = m
	d.out = append(d.out, u)
	c.find(d, "spec", "a MetricTemplate's thresholds and schedule are in the Canaries that use it: this template measures once, between the arguments min and max (default -Inf and +Inf); a Canary converted with it gets a template of its own with its thresholds")
	t.leftovers(c, d)
	return nil
}
