package convert

import (
	"fmt"
	"strings"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

const canaryPath = "spec.strategy.canary"

// argoReasons explain the Argo Rollout fields Tugboat has no place for.
var argoReasons = map[string]string{
	"spec.strategy.blueGreen":                                     "Tugboat has no blue-green strategy: no Rollout was made, only the Deployment; write canary steps instead (a pause: {} before setWeight: 100 comes closest)",
	"spec.paused":                                                 "a Tugboat Rollout is paused by a request, not by its spec: kubectl tug pause",
	"spec.restartAt":                                              "Tugboat does not restart pods; use kubectl rollout restart on the Deployment",
	"spec.analysis.*":                                             "Tugboat keeps no AnalysisRun history limits: its AnalysisRuns are owned by the Rollout and replaced by each rollout",
	"spec.workloadRef.scaleDown":                                  "Tugboat scales the target Deployment itself (to zero at rest, running the stable version in <name>-primary)",
	canaryPath + ".steps[].experiment":                            "Tugboat has no experiments; the step was left out: compare canary with stable in an analysis step instead (examples/podinfo/analysistemplates.yaml, success-rate-vs-stable)",
	canaryPath + ".steps[].plugin":                                "Tugboat has no step plugins; the step was left out",
	canaryPath + ".trafficRouting.nginx":                          "Tugboat routes through Istio VirtualServices only",
	canaryPath + ".trafficRouting.alb":                            "Tugboat routes through Istio VirtualServices only",
	canaryPath + ".trafficRouting.smi":                            "Tugboat routes through Istio VirtualServices only",
	canaryPath + ".trafficRouting.ambassador":                     "Tugboat routes through Istio VirtualServices only",
	canaryPath + ".trafficRouting.appMesh":                        "Tugboat routes through Istio VirtualServices only",
	canaryPath + ".trafficRouting.traefik":                        "Tugboat routes through Istio VirtualServices only",
	canaryPath + ".trafficRouting.apisix":                         "Tugboat routes through Istio VirtualServices only",
	canaryPath + ".trafficRouting.plugins":                        "Tugboat routes through Istio VirtualServices only",
	canaryPath + ".trafficRouting.istio.virtualServices[]":        "a Tugboat Rollout moves the routes of one VirtualService; only the first was carried over",
	canaryPath + ".trafficRouting.istio.virtualService.tlsRoutes": "Tugboat moves the weights of HTTP routes only",
	canaryPath + ".trafficRouting.istio.virtualService.tcpRoutes": "Tugboat moves the weights of HTTP routes only",
	canaryPath + ".maxSurge":                                      "Tugboat's canary is a Deployment of its own, scaled with the traffic weight or setCanaryScale; set the rolling update of the Deployment itself if need be",
	canaryPath + ".maxUnavailable":                                "Tugboat's canary is a Deployment of its own, scaled with the traffic weight or setCanaryScale; set the rolling update of the Deployment itself if need be",
	canaryPath + ".canaryMetadata":                                "Tugboat adds no labels or annotations to the canary's pods; put them in the Deployment's template",
	canaryPath + ".stableMetadata":                                "Tugboat adds no labels or annotations to the stable pods; put them in the Deployment's template",
	canaryPath + ".scaleDownDelaySeconds":                         "Tugboat scales the canary down at once after a promotion",
	canaryPath + ".scaleDownDelayRevisionLimit":                   "Tugboat scales the canary down at once after a promotion",
	canaryPath + ".abortScaleDownDelaySeconds":                    "Tugboat scales the canary down at once after an abort",
	canaryPath + ".dynamicStableScale":                            "Tugboat keeps stable (<name>-primary) at full scale until promotion",
	canaryPath + ".antiAffinity":                                  "Tugboat adds no anti-affinity between canary and stable; put affinity rules in the Deployment's template",
	canaryPath + ".pingPong":                                      "Tugboat has no ping-pong Services: stable and canary have Services of their own",
	canaryPath + ".minPodsPerReplicaSet":                          "Tugboat has no minimum canary size; use setCanaryScale steps",
	canaryPath + ".replicaProgressThreshold":                      "Tugboat waits for the whole canary to be Ready",
}

// argoRollout converts an Argo Rollout into a Deployment (from its template,
// unless it refers to one with workloadRef) and a Tugboat Rollout.
func (c *converter) argoRollout(d *doc) error {
	var src argo.Rollout
	if err := decode(d.raw, &src); err != nil {
		return err
	}
	d.converted = true
	t := newTracker(d.raw, argoReasons)
	t.use(canaryPath + ".trafficRouting.managedRoutes") // Tugboat adds its routes by the steps' names
	m := meta(t, d.raw)
	name := src.Name

	target := name
	if ref := src.Spec.WorkloadRef; ref != nil {
		t.use("spec.workloadRef.apiVersion", "spec.workloadRef.kind", "spec.workloadRef.name")
		if ref.Kind != "Deployment" {
			c.find(d, "spec.workloadRef", "Tugboat's target is a Deployment, not a %s: no Rollout was made", ref.Kind)
			t.use("spec")
			return nil
		}
		target = ref.Name
		c.workloadReplicas(d, t, ref.Name, src.Spec.Replicas)
	} else {
		dep := map[string]any{
			"apiVersion": "apps/v1",
			"kind":       "Deployment",
			"metadata":   depMeta(m),
			"spec":       map[string]any{},
		}
		spec := dep["spec"].(map[string]any)
		for _, k := range []string{"replicas", "selector", "template", "minReadySeconds"} {
			if v := at(d.raw, "spec", k); v != nil {
				spec[k] = deepCopy(v)
				t.use("spec." + k)
			}
		}
		d.out = append(d.out, &unstructured.Unstructured{Object: dep})
	}

	canary := src.Spec.Strategy.Canary
	if canary == nil {
		if src.Spec.Strategy.BlueGreen == nil {
			c.find(d, "spec.strategy", "the Rollout has no canary strategy: no Rollout was made, only the Deployment")
		}
		// The fields of the Rollout that was not made go with it.
		t.use("spec.revisionHistoryLimit", "spec.progressDeadlineSeconds", "spec.progressDeadlineAbort", "spec.rollbackWindow")
		t.leftovers(c, d)
		return nil
	}
	t.use(canaryPath+".canaryService", canaryPath+".stableService")

	ro := &v1alpha1.Rollout{Spec: v1alpha1.RolloutSpec{
		TargetRef: v1alpha1.TargetRef{APIVersion: "apps/v1", Kind: "Deployment", Name: target},
		Service: v1alpha1.ServiceSpec{
			StableService: canary.StableService,
			CanaryService: canary.CanaryService,
		},
	}}
	ro.APIVersion, ro.Kind = v1alpha1.GroupVersion.String(), "Rollout"
	c.argoPort(d, &src, ro)
	c.argoRouting(d, t, canary, ro)

	for i, s := range canary.Steps {
		if st := c.argoStep(d, t, i, s); st != nil {
			ro.Spec.Steps = append(ro.Spec.Steps, *st)
		}
	}
	if len(ro.Spec.Steps) == 0 {
		ro.Spec.Steps = []v1alpha1.Step{{SetWeight: ptr.To[int32](100)}}
		c.find(d, canaryPath+".steps", "no steps were carried over; the Rollout has one, setWeight: 100, which is what Argo does with none")
	}
	if a := canary.Analysis; a != nil {
		t.use(canaryPath + ".analysis")
		ro.Spec.Analysis = &v1alpha1.BackgroundAnalysis{Analysis: c.argoAnalysis(d, canaryPath+".analysis", a.RolloutAnalysis), StartingStep: a.StartingStep}
	}
	if p := src.Spec.ProgressDeadlineSeconds; p != nil {
		t.use("spec.progressDeadlineSeconds")
		ro.Spec.ProgressDeadlineSeconds = p
	}
	if src.Spec.ProgressDeadlineAbort {
		t.use("spec.progressDeadlineAbort") // Tugboat always aborts past the deadline
	}
	c.argoRollback(d, t, &src, ro)

	out, err := object(ro)
	if err != nil {
		return err
	}
	out.Object["metadata"] = m
	d.out = append(d.out, out)
	t.leftovers(c, d)
	return nil
}

// depMeta is the Deployment's metadata: the Rollout's name, namespace and
// labels.
func depMeta(m map[string]any) map[string]any {
	out := map[string]any{}
	for _, k := range []string{"name", "namespace", "labels"} {
		if v, ok := m[k]; ok {
			out[k] = deepCopy(v)
		}
	}
	return out
}

// workloadReplicas carries a workloadRef Rollout's replicas to the
// Deployment it refers to, which Argo may have scaled to zero.
func (c *converter) workloadReplicas(d *doc, t *tracker, name string, replicas *int32) {
	if replicas == nil {
		return
	}
	t.use("spec.replicas")
	if dep := c.lookup("apps", "Deployment", d.namespace(), name); dep != nil {
		spec, _ := dep.raw["spec"].(map[string]any)
		if spec == nil {
			spec = map[string]any{}
			dep.raw["spec"] = spec
		}
		if r, ok := spec["replicas"].(float64); !ok || int32(r) != *replicas {
			spec["replicas"] = float64(*replicas)
			c.find(d, "spec.replicas", "Deployment %s runs the pods now: its spec.replicas was set to %d, the Rollout's", name, *replicas)
		}
		return
	}
	c.find(d, "spec.replicas", "Deployment %s runs the pods now: set its spec.replicas to %d, the Rollout's (Argo may have scaled it to zero)", name, *replicas)
}

// argoPort finds the port the Services expose: the stable Service's, when
// the stream holds it, else the first container port.
func (c *converter) argoPort(d *doc, src *argo.Rollout, ro *v1alpha1.Rollout) {
	for _, name := range []string{src.Spec.Strategy.Canary.StableService, src.Spec.Strategy.Canary.CanaryService} {
		if name == "" {
			continue
		}
		svc := c.lookup("", "Service", d.namespace(), name)
		if svc == nil {
			continue
		}
		ports, _ := at(svc.raw, "spec", "ports").([]any)
		if len(ports) == 0 {
			continue
		}
		p, _ := ports[0].(map[string]any)
		if n, ok := p["port"].(float64); ok {
			ro.Spec.Service.Port = int32(n)
			switch tp := p["targetPort"].(type) {
			case float64:
				ro.Spec.Service.TargetPort = ptr.To(intstr.FromInt32(int32(tp)))
			case string:
				ro.Spec.Service.TargetPort = ptr.To(intstr.FromString(tp))
			}
			return
		}
	}
	for _, ctr := range src.Spec.Template.Spec.Containers {
		if len(ctr.Ports) > 0 {
			ro.Spec.Service.Port = ctr.Ports[0].ContainerPort
			c.find(d, "spec.template", "spec.service.port is %d, container %s's first port: check it is the port the stable and canary Services should expose", ro.Spec.Service.Port, ctr.Name)
			return
		}
	}
	ro.Spec.Service.Port = 80
	c.find(d, "spec.template", "no Service in the input and no container port: spec.service.port was set to 80; set the port the stable and canary Services expose")
}

// argoRouting carries the Istio VirtualService (and DestinationRule).
func (c *converter) argoRouting(d *doc, t *tracker, canary *argo.CanaryStrategy, ro *v1alpha1.Rollout) {
	vsPath := canaryPath + ".trafficRouting.istio.virtualService"
	var vs *argo.IstioVirtualService
	if tr := canary.TrafficRouting; tr != nil && tr.Istio != nil {
		switch {
		case tr.Istio.VirtualService != nil:
			vs = tr.Istio.VirtualService
		case len(tr.Istio.VirtualServices) > 0:
			vs, vsPath = &tr.Istio.VirtualServices[0], canaryPath+".trafficRouting.istio.virtualServices[0]"
		}
		if dr := tr.Istio.DestinationRule; dr != nil {
			t.use(canaryPath + ".trafficRouting.istio.destinationRule")
			ro.Spec.TrafficRouting.Istio.DestinationRule = dr.DeepCopy()
		}
	}
	if vs == nil {
		name := ro.Spec.TargetRef.Name
		ro.Spec.TrafficRouting.Istio.VirtualService = v1alpha1.IstioVirtualService{Name: name, Routes: []string{"primary"}}
		msg := "Argo splits this canary by replica counts; Tugboat moves the weights of an Istio VirtualService: create VirtualService %s with an HTTP route named primary to Services %s and %s"
		stable, canarySvc := ro.Spec.Service.StableService, ro.Spec.Service.CanaryService
		if stable == "" {
			stable = name + "-stable"
		}
		if canarySvc == "" {
			canarySvc = name + "-canary"
		}
		c.find(d, canaryPath+".trafficRouting", msg, name, stable, canarySvc)
		return
	}
	t.use(vsPath+".name", vsPath+".routes")
	name, routes := vs.Name, vs.Routes
	if base, ns, ok := strings.Cut(name, "."); ok {
		c.find(d, vsPath+".name", "Tugboat's VirtualService is in the Rollout's namespace: %s in namespace %s was carried over as %s; move it", name, ns, base)
		name = base
	}
	if len(routes) == 0 {
		routes = c.onlyRoute(d, name)
		if len(routes) == 0 {
			routes = []string{"primary"}
			c.find(d, vsPath+".routes", "Tugboat needs the route's name: the Rollout names route primary; name the VirtualService's HTTP route so, or change the Rollout")
		}
	}
	ro.Spec.TrafficRouting.Istio.VirtualService = v1alpha1.IstioVirtualService{Name: name, Routes: routes}
}

// onlyRoute is the name of the single HTTP route of a VirtualService in the
// stream, which Argo lets a Rollout leave unnamed.
func (c *converter) onlyRoute(d *doc, name string) []string {
	vs := c.lookup("networking.istio.io", "VirtualService", d.namespace(), name)
	if vs == nil {
		return nil
	}
	http, _ := at(vs.raw, "spec", "http").([]any)
	if len(http) != 1 {
		return nil
	}
	r, _ := http[0].(map[string]any)
	if n, _ := r["name"].(string); n != "" {
		return []string{n}
	}
	return nil
}

// argoStep converts a canary step, or reports it and returns nil.
func (c *converter) argoStep(d *doc, t *tracker, i int, s argo.CanaryStep) *v1alpha1.Step {
	p := fmt.Sprintf("%s.steps[%d]", canaryPath, i)
	switch {
	case s.SetWeight != nil:
		t.use(p + ".setWeight")
		return &v1alpha1.Step{SetWeight: s.SetWeight}
	case s.Pause != nil:
		t.use(p + ".pause")
		return &v1alpha1.Step{Pause: &v1alpha1.Pause{Duration: s.Pause.Duration}}
	case s.Analysis != nil:
		t.use(p + ".analysis")
		a := c.argoAnalysis(d, p+".analysis", *s.Analysis)
		return &v1alpha1.Step{Analysis: &a}
	case s.SetHeaderRoute != nil:
		t.use(p + ".setHeaderRoute")
		h := &v1alpha1.SetHeaderRoute{Name: s.SetHeaderRoute.Name}
		for _, m := range s.SetHeaderRoute.Match {
			hm := v1alpha1.HeaderRoutingMatch{HeaderName: m.HeaderName}
			if v := m.HeaderValue; v != nil {
				hm.HeaderValue = v1alpha1.StringMatch{Exact: v.Exact, Prefix: v.Prefix, Regex: v.Regex}
			}
			h.Match = append(h.Match, hm)
		}
		return &v1alpha1.Step{SetHeaderRoute: h}
	case s.SetCanaryScale != nil:
		t.use(p + ".setCanaryScale")
		return &v1alpha1.Step{SetCanaryScale: s.SetCanaryScale.DeepCopy()}
	case s.SetMirrorRoute != nil:
		t.use(p + ".setMirrorRoute")
		return &v1alpha1.Step{SetMirrorRoute: s.SetMirrorRoute.DeepCopy()}
	}
	return nil // experiment, plugin: the tracker reports it
}

// argoAnalysis carries a step's or the background analysis. Arguments that
// read the Argo Rollout's spec or status are reported: Tugboat's Rollout has
// other fields.
func (c *converter) argoAnalysis(d *doc, path string, a argo.RolloutAnalysis) v1alpha1.Analysis {
	out := v1alpha1.Analysis{
		Args:                 a.Args,
		DryRun:               a.DryRun,
		MeasurementRetention: a.MeasurementRetention,
		AnalysisRunMetadata:  a.AnalysisRunMetadata,
	}
	for _, ref := range a.Templates {
		out.Templates = append(out.Templates, v1alpha1.AnalysisTemplateRef{TemplateName: ref.TemplateName, ClusterScope: ref.ClusterScope})
	}
	for i, arg := range a.Args {
		if arg.ValueFrom == nil || arg.ValueFrom.FieldRef == nil {
			continue
		}
		if f := arg.ValueFrom.FieldRef.FieldPath; !strings.HasPrefix(f, "metadata.") {
			c.find(d, fmt.Sprintf("%s.args[%d].valueFrom.fieldRef", path, i), "%s is a field of the Argo Rollout; Tugboat's Rollout has other fields (status.canaryWorkload names the canary's Deployment): check the argument", f)
		}
	}
	return out
}

// argoRollback carries revisionHistoryLimit and rollbackWindow, Argo's
// counterparts of Tugboat's rollback policy.
func (c *converter) argoRollback(d *doc, t *tracker, src *argo.Rollout, ro *v1alpha1.Rollout) {
	var p v1alpha1.RollbackPolicy
	if l := src.Spec.RevisionHistoryLimit; l != nil {
		t.use("spec.revisionHistoryLimit")
		switch {
		case *l >= 1 && *l <= 1000:
			p.RevisionHistoryLimit = *l
		default:
			c.find(d, "spec.revisionHistoryLimit", "Tugboat keeps 1 to 1000 revisions; %d was not carried over (the default is 10)", *l)
		}
	}
	if w := src.Spec.RollbackWindow; w != nil {
		t.use("spec.rollbackWindow")
		limit := p.RevisionHistoryLimit
		if limit == 0 {
			limit = 10
		}
		if w.Revisions <= limit {
			p.FastTrackRevisions = ptr.To(w.Revisions)
		} else {
			c.find(d, "spec.rollbackWindow.revisions", "Tugboat fast-tracks at most revisionHistoryLimit (%d) revisions; %d was not carried over", limit, w.Revisions)
		}
	}
	if p != (v1alpha1.RollbackPolicy{}) {
		ro.Spec.Rollback = &p
	}
}
