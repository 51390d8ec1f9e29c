package convert

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"
)

// find returns the first output object of a kind, as YAML.
func find(t *testing.T, res Result, kind, name string) string {
	t.Helper()
	for _, o := range res.Objects {
		if o.GetKind() == kind && o.GetName() == name {
			b, err := yaml.Marshal(o.Object["spec"])
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		}
	}
	t.Fatalf("no %s/%s among the objects", kind, name)
	return ""
}

func TestMappings(t *testing.T) {
	const canaryWithTemplate = `
apiVersion: flagger.app/v1beta1
kind: MetricTemplate
metadata: {name: latency, namespace: flagger}
spec:
  provider: {type: prometheus, address: "http://prometheus:9090"}
  query: histogram_quantile(0.99, sum(rate(lat_bucket{ns="{{ namespace }}", app=~"{{ target }}", dir="{{ variables.direction }}"}[{{ interval }}])) by (le))
---
apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: web, namespace: prod}
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  service: {port: 80}
  analysis:
    interval: 30s
    threshold: 3
    stepWeights: [5, 25, 75]
    metrics:
    - name: "p99 latency"
      templateRef: {name: latency, namespace: flagger}
      templateVariables: {direction: inbound}
      thresholdRange: {min: 1, max: 250.5}
      interval: 2m
`
	for _, tc := range []struct {
		name     string
		in       string
		kind     string
		object   string
		contains []string // in the object's spec, as YAML
		findings []string // each a substring of one finding
	}{{
		name: "argo steps, background analysis and rollback window",
		in: `
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: web}
spec:
  revisionHistoryLimit: 5
  rollbackWindow: {revisions: 2}
  progressDeadlineSeconds: 90
  template: {spec: {containers: [{name: app, image: app:1, ports: [{containerPort: 8080}]}]}}
  strategy:
    canary:
      canaryService: web-canary
      stableService: web-stable
      trafficRouting: {istio: {virtualService: {name: web, routes: [primary]}}}
      analysis: {templates: [{templateName: rate}], startingStep: 1}
      steps:
      - setWeight: 20
      - pause: {duration: 1h}
      - setHeaderRoute: {name: beta, match: [{headerName: x-beta, headerValue: {exact: "yes"}}]}
      - experiment: {templates: [{name: baseline, specRef: stable}]}
      scaleDownDelaySeconds: 30
`,
		kind: "Rollout", object: "web",
		contains: []string{"revisionHistoryLimit: 5", "fastTrackRevisions: 2", "progressDeadlineSeconds: 90", "startingStep: 1",
			"duration: 1h", "headerName: x-beta", "stableService: web-stable", "port: 8080"},
		findings: []string{
			"Rollout/web: spec.strategy.canary.steps[3].experiment: Tugboat has no experiments",
			"Rollout/web: spec.strategy.canary.scaleDownDelaySeconds: Tugboat scales the canary down at once",
			"Rollout/web: spec.template: spec.service.port is 8080",
		},
	}, {
		name: "argo traffic routing Tugboat lacks",
		in: `
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: podinfo}
spec:
  template: {spec: {containers: [{name: app, image: app:1}]}}
  strategy: {canary: {trafficRouting: {nginx: {stableIngress: podinfo}}, steps: [{setWeight: 10}]}}
`,
		kind: "Rollout", object: "podinfo",
		contains: []string{"name: podinfo", "- primary", "port: 80"},
		findings: []string{
			"Rollout/podinfo: spec.strategy.canary.trafficRouting.nginx: Tugboat routes through Istio VirtualServices only",
			"spec.service.port was set to 80",
		},
	}, {
		name: "argo template with a field Tugboat lacks and a provider it lacks",
		in: `
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: t}
spec:
  metrics:
  - name: p
    provider: {prometheus: {query: up, authentication: {sigv4: {region: eu-west-1}}}}
  - name: nr
    provider: {newRelic: {query: SELECT 1}}
`,
		kind: "AnalysisTemplate", object: "t",
		contains: []string{"query: up"},
		findings: []string{
			"AnalysisTemplate/t: spec.metrics[0].provider.prometheus.authentication.sigv4: Tugboat has no SigV4",
			"AnalysisTemplate/t: spec.metrics[1].provider: metric nr measures with [newRelic]",
		},
	}, {
		name: "flagger canary inlines its MetricTemplate with thresholds and variables",
		in:   canaryWithTemplate,
		kind: "AnalysisTemplate", object: "web-p99-latency",
		contains: []string{`successCondition: result[0] >= 1 && result[0] <= 250.5`, "failureLimit: 2", "interval: 30s",
			`dir="{{args.direction}}"`, `[{{args.interval}}]`, "value: inbound", "value: 2m", "address: http://prometheus:9090"},
	}, {
		name: "flagger step weights",
		in:   canaryWithTemplate,
		kind: "Rollout", object: "web",
		contains: []string{"setWeight: 5", "setWeight: 75", "duration: 30s", "templateName: web-p99-latency", "fieldPath: status.canaryWorkload"},
	}, {
		name: "flagger MetricTemplate alone",
		in:   canaryWithTemplate,
		kind: "AnalysisTemplate", object: "latency",
		contains: []string{"asFloat(args.min)", "value: -Inf", "name: direction"},
		findings: []string{"MetricTemplate/latency: spec: a MetricTemplate's thresholds"},
	}, {
		name: "flagger canary without its MetricTemplate",
		in: `
apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: web}
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  service: {port: 80, portDiscovery: true}
  analysis: {stepWeight: 50, metrics: [{name: errors, templateRef: {name: missing}}]}
`,
		kind: "Rollout", object: "web",
		contains: []string{"setWeight: 50", "setWeight: 100", "duration: 1m"},
		findings: []string{
			"Canary/web: spec.analysis.metrics[0].templateRef: MetricTemplate missing is not in the input",
			"Canary/web: spec.service.portDiscovery:",
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Convert([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			spec := find(t, res, tc.kind, tc.object)
			for _, s := range tc.contains {
				if !strings.Contains(spec, s) {
					t.Errorf("%s/%s lacks %q:\n%s", tc.kind, tc.object, s, spec)
				}
			}
			var got []string
			for _, f := range res.Findings {
				got = append(got, f.String())
			}
			for _, want := range tc.findings {
				if !slices.ContainsFunc(got, func(g string) bool { return strings.Contains(g, want) }) {
					t.Errorf("no finding %q among:\n%s", want, strings.Join(got, "\n"))
				}
			}
		})
	}
}

func TestBadInput(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"not YAML", "a: [", "document 1"},
		{"no kind", "apiVersion: v1\nmetadata: {name: x}\n", "document 1: apiVersion and kind are required"},
		{"wrong type", "---\n# c\n---\napiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {name: web}\nspec: {replicas: many}\n", "(Rollout/web): json: cannot unmarshal string into Go struct field RolloutSpec.spec.replicas"},
		{"bad interval", "apiVersion: flagger.app/v1beta1\nkind: Canary\nmetadata: {name: web}\nspec: {targetRef: {kind: Deployment, name: web}, analysis: {interval: soon}}\n", `spec.analysis.interval: "soon" is not a positive duration`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Convert([]byte(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Convert() error = %v, want one with %q", err, tc.want)
			}
		})
	}
}

func TestUnknownKindsPassThrough(t *testing.T) {
	in := "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {ports: [{port: 80}]}\n"
	res, err := Convert([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Findings) != 0 || len(res.Objects) != 1 {
		t.Fatalf("got %d objects and findings %v, want the Service alone", len(res.Objects), res.Findings)
	}
	var want map[string]any
	if err := yaml.Unmarshal([]byte(in), &want); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, res.Objects[0].Object); diff != "" {
		t.Errorf("the Service changed (-want +got):\n%s", diff)
	}
}
