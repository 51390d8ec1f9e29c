package convert

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

// The fields of Flagger's Canary (flagger.app/v1beta1) that Tugboat has a
// place for. Flagger's own module brings a large tree of dependencies, so
// these are local; every other field is reported by the tracker.
type flaggerCanary struct {
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Provider  string `json:"provider"`
		TargetRef struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Name       string `json:"name"`
		} `json:"targetRef"`
		ProgressDeadlineSeconds *int32 `json:"progressDeadlineSeconds"`
		Service                 struct {
			Name       string              `json:"name"`
			Port       int32               `json:"port"`
			TargetPort *intstr.IntOrString `json:"targetPort"`
			Gateways   []string            `json:"gateways"`
			Hosts      []string            `json:"hosts"`
		} `json:"service"`
		Analysis struct {
			Interval    string  `json:"interval"`
			Iterations  int32   `json:"iterations"`
			Threshold   int32   `json:"threshold"`
			MaxWeight   int32   `json:"maxWeight"`
			StepWeight  int32   `json:"stepWeight"`
			StepWeights []int32 `json:"stepWeights"`
			Match       []struct {
				Headers map[string]struct {
					Exact  string `json:"exact"`
					Prefix string `json:"prefix"`
					Regex  string `json:"regex"`
				} `json:"headers"`
			} `json:"match"`
			Metrics  []flaggerMetric  `json:"metrics"`
			Webhooks []flaggerWebhook `json:"webhooks"`
		} `json:"analysis"`
	} `json:"spec"`
}

type flaggerMetric struct {
	Name           string `json:"name"`
	Interval       string `json:"interval"`
	ThresholdRange *struct {
		Min *float64 `json:"min"`
		Max *float64 `json:"max"`
	} `json:"thresholdRange"`
	TemplateRef *struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"templateRef"`
	TemplateVariables map[string]string `json:"templateVariables"`
	Query             string            `json:"query"`
}

type flaggerWebhook struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// Routed fields of spec.service that Flagger put on the route of the
// VirtualService it generated, and the generated one here keeps.
var flaggerRouteFields = []string{"retries", "timeout", "headers", "corsPolicy", "rewrite", "match"}

var flaggerReasons = map[string]string{
	"spec.autoscalerRef":                  "Tugboat does not copy autoscalers: Flagger's copy for <target>-primary goes away with the Canary; point a HorizontalPodAutoscaler of your own at Deployment <target>-primary",
	"spec.ingressRef":                     "Tugboat routes through Istio VirtualServices only",
	"spec.routeRef":                       "Tugboat routes through Istio VirtualServices only",
	"spec.upstreamRef":                    "Tugboat routes through Istio VirtualServices only",
	"spec.metricsServer":                  "Tugboat's metrics name their Prometheus in each template (spec.metrics[].provider.prometheus.address), or use the controller's default",
	"spec.skipAnalysis":                   "Tugboat always runs the steps' analysis; to skip a rollout's steps use kubectl tug promote --full",
	"spec.suspend":                        "a Tugboat Rollout is paused by a request, not by its spec: kubectl tug pause",
	"spec.revertOnDeletion":               "Tugboat always hands the app back to the target Deployment when the Rollout is deleted",
	"spec.service.trafficPolicy":          "Tugboat writes no traffic policy: put it in a DestinationRule of your own for the hosts <name>-stable and <name>-canary",
	"spec.service.portName":               "Tugboat names the Services' port http",
	"spec.service.portDiscovery":          "Tugboat's Services expose spec.service.port only",
	"spec.service.appProtocol":            "Tugboat's Services set no appProtocol",
	"spec.service.apex":                   "Tugboat does not create the apex Service: keep a Service named after spec.service.name (or the target) in your manifests",
	"spec.service.primary":                "Tugboat labels its Services itself",
	"spec.service.canary":                 "Tugboat labels its Services itself",
	"spec.service.delegation":             "Tugboat moves the weights of a VirtualService of its own (the one made here), not a delegate",
	"spec.service.mirror":                 "Tugboat mirrors with setMirrorRoute steps",
	"spec.service.gatewayRefs":            "Tugboat routes through Istio VirtualServices, not Gateway API routes",
	"spec.service.backends":               "Tugboat routes through Istio VirtualServices only",
	"spec.analysis.mirror":                "Flagger mirrors to the canary instead of shifting weight: add a setMirrorRoute step (argo's shape: name, percentage, match) in place of the setWeight steps",
	"spec.analysis.mirrorWeight":          "Flagger mirrors to the canary instead of shifting weight: add a setMirrorRoute step with this percentage",
	"spec.analysis.stepWeightPromotion":   "Tugboat promotes at once at the end of the steps",
	"spec.analysis.primaryReadyThreshold": "Tugboat waits for the whole of primary to be Ready",
	"spec.analysis.canaryReadyThreshold":  "Tugboat waits for the whole canary to be Ready",
	"spec.analysis.alerts":                "send the Rollout's events with a NotificationProvider and spec.notifications (examples/notifications)",
	"spec.analysis.sessionAffinity":       "Tugboat has no session affinity between versions",
	"spec.analysis.match[]":               "only header matches carry over into setHeaderRoute steps",
}

// flaggerCanary converts a Canary into a Tugboat Rollout, one
// AnalysisTemplate per metric (with the query inline) and the VirtualService
// Flagger generated, which Tugboat expects its user to own.
func (c *converter) flaggerCanary(d *doc) error {
	var src flaggerCanary
	if err := decode(d.raw, &src); err != nil {
		return err
	}
	d.converted = true
	reasons := make(map[string]string, len(flaggerReasons))
	for k, v := range flaggerReasons {
		reasons[k] = strings.NewReplacer("<target>", src.Spec.TargetRef.Name, "<name>", src.Name).Replace(v)
	}
	t := newTracker(d.raw, reasons)
	if v, ok := at(d.raw, "spec", "revertOnDeletion").(bool); ok && v {
		t.use("spec.revertOnDeletion") // Tugboat always hands the app back on deletion
	}
	m := meta(t, d.raw)
	s := &src.Spec
	t.use("spec.targetRef")
	if s.TargetRef.Kind != "Deployment" {
		c.find(d, "spec.targetRef", "Tugboat's target is a Deployment, not a %s: no Rollout was made", s.TargetRef.Kind)
		t.use("spec")
		return nil
	}
	if s.Provider != "" && !strings.HasPrefix(s.Provider, "istio") {
		c.find(d, "spec.provider", "Tugboat routes through Istio VirtualServices only; the Rollout assumes Istio")
	}
	t.use("spec.provider")
	c.find(d, "spec.targetRef", "Deployment %s is already a Deployment: no Deployment was made; keep it as it is", s.TargetRef.Name)

	svcName := s.Service.Name
	if svcName == "" {
		svcName = s.TargetRef.Name
	}
	t.use("spec.service.name", "spec.service.port", "spec.service.targetPort", "spec.service.gateways", "spec.service.hosts")
	ro := &v1alpha1.Rollout{Spec: v1alpha1.RolloutSpec{
		TargetRef: v1alpha1.TargetRef{APIVersion: "apps/v1", Kind: "Deployment", Name: s.TargetRef.Name},
		Service:   v1alpha1.ServiceSpec{Port: s.Service.Port, TargetPort: s.Service.TargetPort},
		TrafficRouting: v1alpha1.TrafficRouting{Istio: v1alpha1.IstioTrafficRouting{
			VirtualService: v1alpha1.IstioVirtualService{Name: svcName, Routes: []string{"primary"}}}},
		ProgressDeadlineSeconds: s.ProgressDeadlineSeconds,
	}}
	ro.APIVersion, ro.Kind = v1alpha1.GroupVersion.String(), "Rollout"
	if s.ProgressDeadlineSeconds != nil {
		t.use("spec.progressDeadlineSeconds")
	}
	if s.Service.Port == 0 {
		ro.Spec.Service.Port = 80
		c.find(d, "spec.service.port", "no port: spec.service.port was set to 80; set the port the stable and canary Services expose")
	}

	interval := s.Analysis.Interval
	if interval == "" {
		interval = "1m" // Flagger's default
	}
	t.use("spec.analysis.interval", "spec.analysis.threshold")
	steps, err := c.flaggerSteps(d, t, &src, interval)
	if err != nil {
		return err
	}
	ro.Spec.Steps = steps

	templates, err := c.flaggerMetrics(d, t, &src, interval)
	if err != nil {
		return err
	}
	if len(templates) > 0 {
		bg := &v1alpha1.BackgroundAnalysis{Analysis: v1alpha1.Analysis{Args: []argo.AnalysisRunArgument{
			{Name: "namespace", ValueFrom: &argo.ArgumentValueFrom{FieldRef: &argo.FieldRef{FieldPath: "metadata.namespace"}}},
			{Name: "target", ValueFrom: &argo.ArgumentValueFrom{FieldRef: &argo.FieldRef{FieldPath: "status.canaryWorkload"}}},
		}}}
		for _, tpl := range templates {
			bg.Templates = append(bg.Templates, v1alpha1.AnalysisTemplateRef{TemplateName: tpl.GetName()})
		}
		ro.Spec.Analysis = bg
	}
	c.flaggerWebhooks(d, t, s.Analysis.Webhooks)

	out, err := object(ro)
	if err != nil {
		return err
	}
	out.Object["metadata"] = m
	d.out = append(d.out, out)
	d.out = append(d.out, templates...)
	d.out = append(d.out, c.flaggerVirtualService(d, t, &src, svcName, src.Name))
	c.find(d, "spec.service", "Flagger made Services %[1]s, %[2]s-primary and %[2]s-canary and deletes them with the Canary; Tugboat makes %[3]s-stable and %[3]s-canary: keep a Service %[1]s (the host clients call) in your manifests", svcName, s.TargetRef.Name, src.Name)
	t.leftovers(c, d)
	return nil
}

// flaggerSteps turns the analysis schedule into steps: a setWeight and a
// pause of one interval per weight up to maxWeight, or for A/B testing
// header routes held for iterations × interval.
func (c *converter) flaggerSteps(d *doc, t *tracker, src *flaggerCanary, interval string) ([]v1alpha1.Step, error) {
	a := &src.Spec.Analysis
	iv, err := time.ParseDuration(interval)
	if err != nil || iv <= 0 {
		return nil, fmt.Errorf("spec.analysis.interval: %q is not a positive duration", interval)
	}
	pause := func(d time.Duration) v1alpha1.Step {
		return v1alpha1.Step{Pause: &v1alpha1.Pause{Duration: ptr.To(intstr.FromString(shortDuration(d)))}}
	}
	var steps []v1alpha1.Step
	switch {
	case a.Iterations > 0:
		t.use("spec.analysis.iterations")
		for i, m := range a.Match {
			if len(m.Headers) == 0 {
				continue
			}
			t.use(fmt.Sprintf("spec.analysis.match[%d].headers", i))
			names := make([]string, 0, len(m.Headers))
			for k := range m.Headers {
				names = append(names, k)
			}
			sort.Strings(names)
			h := &v1alpha1.SetHeaderRoute{Name: fmt.Sprintf("ab-test-%d", i)}
			for _, n := range names {
				v := m.Headers[n]
				h.Match = append(h.Match, v1alpha1.HeaderRoutingMatch{HeaderName: n, HeaderValue: v1alpha1.StringMatch{Exact: v.Exact, Prefix: v.Prefix, Regex: v.Regex}})
			}
			steps = append(steps, v1alpha1.Step{SetHeaderRoute: h})
		}
		steps = append(steps, pause(iv*time.Duration(a.Iterations)))
	case len(a.StepWeights) > 0:
		t.use("spec.analysis.stepWeights")
		for _, w := range a.StepWeights {
			steps = append(steps, v1alpha1.Step{SetWeight: ptr.To(w)}, pause(iv))
		}
	case a.StepWeight > 0:
		t.use("spec.analysis.stepWeight", "spec.analysis.maxWeight")
		maxWeight := a.MaxWeight
		if maxWeight == 0 {
			maxWeight = 100
		}
		for w := a.StepWeight; w <= maxWeight && len(steps) < 100; w += a.StepWeight {
			steps = append(steps, v1alpha1.Step{SetWeight: ptr.To(w)}, pause(iv))
		}
		if len(steps) >= 100 {
			return nil, fmt.Errorf("spec.analysis: stepWeight %d up to maxWeight %d makes more than 50 steps, the most a Rollout holds", a.StepWeight, maxWeight)
		}
	default:
		steps = append(steps, pause(iv))
		c.find(d, "spec.analysis", "no stepWeight, stepWeights or iterations: the Rollout holds one interval and then promotes")
	}
	return steps, nil
}

// shortDuration writes d as 1m rather than 1m0s.
func shortDuration(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	case d%time.Second == 0:
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return d.String()
}

// flaggerWebhooks reports each webhook with what Tugboat offers instead.
func (c *converter) flaggerWebhooks(d *doc, t *tracker, hooks []flaggerWebhook) {
	for i, h := range hooks {
		p := fmt.Sprintf("spec.analysis.webhooks[%d]", i)
		t.use(p)
		var msg string
		switch h.Type {
		case "", "rollout":
			msg = "Tugboat runs no load tester or rollout webhooks: generate load or run checks with a job metric (examples/load-test, examples/smoke-test) in an analysis step or the background analysis"
		case "pre-rollout":
			msg = "Tugboat calls no webhooks: run the check as an analysis step before the first setWeight (a job or web metric, examples/smoke-test)"
		case "confirm-rollout", "confirm-traffic-increase", "confirm-promotion":
			msg = "Tugboat calls no webhooks: hold with a pause: {} step until kubectl tug promote, or gate with a web metric (examples/approval-gate)"
		case "post-rollout", "rollback", "event":
			msg = "Tugboat calls no webhooks: send the Rollout's events with a NotificationProvider and spec.notifications (examples/notifications)"
		default:
			msg = "Tugboat calls no webhooks; it was not carried over"
		}
		c.find(d, p, "webhook %s (%s): %s", h.Name, orDefault(h.Type, "rollout"), msg)
	}
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// flaggerVirtualService is the VirtualService Flagger generated for the
// Canary, with one route named primary that Tugboat moves, from the
// Services Tugboat makes.
func (c *converter) flaggerVirtualService(d *doc, t *tracker, src *flaggerCanary, svcName, rolloutName string) *unstructured.Unstructured {
	s := &src.Spec.Service
	hosts := slices.Clone(s.Hosts)
	if !slices.Contains(hosts, svcName) && !slices.Contains(hosts, "*") {
		hosts = append(hosts, svcName)
	}
	gateways := slices.Clone(s.Gateways)
	if len(gateways) == 0 {
		gateways = []string{"mesh"}
	}
	port := int64(src.Spec.Service.Port)
	if port == 0 {
		port = 80
	}
	dest := func(host string, weight int64) any {
		return map[string]any{"destination": map[string]any{"host": host, "port": map[string]any{"number": port}}, "weight": weight}
	}
	route := map[string]any{
		"name":  "primary",
		"route": []any{dest(rolloutName+"-stable", 100), dest(rolloutName+"-canary", 0)},
	}
	for _, k := range flaggerRouteFields {
		if v := at(d.raw, "spec", "service", k); v != nil {
			route[k] = deepCopy(v)
			t.use("spec.service." + k)
		}
	}
	metadata := map[string]any{"name": svcName}
	if ns := src.Namespace; ns != "" {
		metadata["namespace"] = ns
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "networking.istio.io/v1",
		"kind":       "VirtualService",
		"metadata":   metadata,
		"spec": map[string]any{
			"hosts":    toAny(hosts),
			"gateways": toAny(gateways),
			"http":     []any{route},
		},
	}}
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}
