package reconciler

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	networkingv1 "istio.io/api/networking/v1"
	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
	istiov1alpha3 "istio.io/client-go/pkg/apis/networking/v1alpha3"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tugboatdev/tugboat/analysis"
	analysisreconciler "github.com/tugboatdev/tugboat/analysis/reconciler"
	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/shadow"
	"github.com/tugboatdev/tugboat/traffic/istio"
)

// source is the production route a preview copies, as resolved now.
type source struct {
	namespace, vs, route string
	// workload is the production Deployment behind it (a Rollout's primary).
	workload string
	// hosts are the VirtualService's hosts.
	hosts []string
	// mirroring are the previews recorded as mirroring the route.
	mirroring []string
	// unknown: the VirtualService carries mirroring routes under a record
	// that cannot be read, which may be this preview's.
	unknown bool
}

// world is what one reconcile saw.
type world struct {
	observed shadow.Observed
	request  shadow.Request
	source   source
	// selector is the preview Service's: the sanitizer runs on its pods.
	selector map[string]string
	// sanitizer is the filter's Lua, for hosts; empty when the preview is
	// not allowed.
	sanitizer string
	hosts     []shadow.Host
	// filter is the sanitizer's name's EnvoyFilter as the cache has it, nil
	// when there is none; ownFilter says it is this preview's.
	filter    *istiov1alpha3.EnvoyFilter
	ownFilter bool
	// covered are the hosts whose copies may flow while a changed filter
	// settles; retry, when set, is when act wants to look again.
	covered []shadow.Host
	retry   time.Duration
	// retiring are the hosts kept for copies in flight, and since when;
	// retireAt, when set, is when the first of them goes.
	retiring  map[string]time.Time
	retireAt  time.Time
	run       *v1alpha1.AnalysisRun
	createRun bool
	// placed are the VirtualServices that record a mirror of this preview.
	placed []placement
}

// mirroringFromSource reports whether the preview's mirror is recorded on
// the route it copies from now.
func (w *world) mirroringFromSource() bool {
	return w.source.vs != "" && slices.ContainsFunc(w.placed, func(pl placement) bool {
		return pl.namespace == w.source.namespace && pl.vs == w.source.vs && !pl.unknown
	})
}

// placement is a VirtualService that records a mirror of a preview.
type placement struct {
	namespace, vs string
	hosts         []string
	// unknown: its record cannot be read, so it may hold the mirror.
	unknown bool
}

// clusterIPs are the cluster IPs of the Services hosts name: a client that
// calls a Service by its IP keeps that as the copy's host.
func (r *Reconciler) clusterIPs(ctx context.Context, hosts []shadow.Host) ([]shadow.Host, error) {
	var out []shadow.Host
	for _, h := range hosts {
		name, ns, ok := shadow.ServiceOf(h.Name, h.Namespace, r.ClusterDomain)
		if !ok {
			continue
		}
		var svc corev1.Service
		switch err := r.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &svc); {
		case apierrors.IsNotFound(err):
			continue
		case err != nil:
			return nil, fmt.Errorf("get service %s/%s: %w", ns, name, err)
		}
		for _, ip := range svc.Spec.ClusterIPs {
			if ip != "" && ip != corev1.ClusterIPNone {
				out = append(out, shadow.Host{Name: ip})
			}
		}
	}
	return out, nil
}

// placements are the VirtualServices, in any namespace, whose record names
// owner: where its mirrors are, whatever the Preview says now, and even once
// it is gone. With unknown, those whose record cannot be read count too
// (taking a mirror off one takes every preview's): for a preview that is
// going, not for one that decides where to mirror.
func (r *Reconciler) placements(ctx context.Context, owner string, unknown bool) ([]placement, error) {
	keys := []string{owner}
	if unknown {
		keys = append(keys, istio.UnknownPreviews)
	}
	var out []placement
	for _, key := range keys {
		var list istiov1.VirtualServiceList
		if err := r.Client.List(ctx, &list, client.MatchingFields{indexPreviewOwner: key}); err != nil {
			return nil, fmt.Errorf("list virtualservices recording %s: %w", key, err)
		}
		for _, vs := range list.Items {
			out = append(out, placement{namespace: vs.Namespace, vs: vs.Name, hosts: vs.Spec.GetHosts()})
		}
	}
	return out, nil
}

// livePlacements are placements (with unknown ones) as the API server has
// them, past the cache, which may not have seen a mirror written just now:
// asked only right before the sanitizer goes.
func (r *Reconciler) livePlacements(ctx context.Context, owner string) ([]placement, error) {
	if r.APIReader == nil {
		return nil, nil
	}
	var out []placement
	for cont := ""; ; {
		// A new list for each page: decoding into the last one would keep
		// its continue token, and its items' fields, where a page has none.
		var list istiov1.VirtualServiceList
		if err := r.APIReader.List(ctx, &list, client.Limit(500), client.Continue(cont)); err != nil {
			return nil, fmt.Errorf("list virtualservices: %w", err)
		}
		for _, vs := range list.Items {
			owners := istio.PreviewOwners(vs)
			if slices.Contains(owners, owner) || slices.Contains(owners, istio.UnknownPreviews) {
				out = append(out, placement{namespace: vs.Namespace, vs: vs.Name, hosts: vs.Spec.GetHosts()})
			}
		}
		if cont = list.Continue; cont == "" {
			return out, nil
		}
	}
}

// observe reads, from the cache, what deciding on p needs. What stands in
// the way of mirroring (a missing source, Service or template) is a
// problem in the observation, not an error: the preview waits as Pending.
func (r *Reconciler) observe(ctx context.Context, p *v1alpha1.Preview) (*world, error) {
	w := &world{observed: shadow.Observed{Now: r.Now(), Generation: p.Generation, Expires: shadow.Expiry(p)}}
	problem := func(format string, args ...any) {
		if w.observed.Problem == "" {
			w.observed.Problem = fmt.Sprintf(format, args...)
		}
	}
	placed, err := r.placements(ctx, shadow.OwnerOf(p.Namespace, p.Name), false)
	if err != nil {
		return nil, err
	}
	w.placed = placed
	switch src := p.Spec.Source.Namespace; {
	case src == p.Namespace:
		// The sanitizer would run on production's own pods if the Service
		// selected them, stripping real users' credentials.
		problem("a Preview cannot copy from its own namespace %s: it belongs in the preview's namespace", src)
	case p.Namespace == r.meshRoot():
		problem("a Preview cannot live in %s, Istio's root namespace, where its filter would apply to every workload in the mesh", p.Namespace)
	}
	for i, m := range p.Spec.Match {
		if why := regexProblem(i, m); why != "" {
			problem("%s", why)
		}
	}
	src, why, err := r.resolve(ctx, p)
	switch {
	case err != nil:
		return nil, err
	case why != "":
		problem("%s", why)
	default:
		w.source = src
		if src.unknown && !w.mirroringFromSource() {
			w.placed = append(w.placed, placement{namespace: src.namespace, vs: src.vs, hosts: src.hosts, unknown: true})
		}
	}

	var ns corev1.Namespace
	if err := r.Client.Get(ctx, client.ObjectKey{Name: p.Namespace}, &ns); err != nil && !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("get namespace %s: %w", p.Namespace, err)
	}
	w.request = shadow.RequestOf(p, ns.Labels)
	// The previews ahead of this one in the record: lowering maxPreviews
	// keeps the first ones mirroring rather than denying them all in turn.
	w.request.Others = len(w.source.mirroring)
	if i := slices.Index(w.source.mirroring, shadow.OwnerOf(p.Namespace, p.Name)); i >= 0 {
		w.request.Others = i
	}
	var policies v1alpha1.MirrorPolicyList
	if err := r.Client.List(ctx, &policies, client.InNamespace(p.Spec.Source.Namespace)); err != nil {
		return nil, fmt.Errorf("list mirror policies in %s: %w", p.Spec.Source.Namespace, err)
	}
	w.observed.Decision = shadow.Evaluate(shadow.RulesOf(policies.Items), w.request)

	if why, err := r.observeService(ctx, p, w); err != nil {
		return nil, err
	} else if why != "" {
		problem("%s", why)
	}
	var ef istiov1alpha3.EnvoyFilter
	switch err := r.Client.Get(ctx, client.ObjectKey{Namespace: p.Namespace, Name: filterName(p.Name)}, &ef); {
	case err == nil:
		w.filter = &ef
		w.ownFilter = ownedBy(&ef, p.Name)
	case !apierrors.IsNotFound(err):
		return nil, fmt.Errorf("get envoyfilter %s/%s: %w", p.Namespace, filterName(p.Name), err)
	}
	if w.observed.Decision.Allowed && w.source.vs != "" {
		// So that no copy in flight from a route the preview copied from
		// before (its source changed) arrives unstripped.
		var have history
		if w.ownFilter {
			have = historyOf(w.filter)
		}
		now := shadow.HostsOf(w.source.namespace, w.source.hosts)
		for _, pl := range w.placed {
			now = append(now, shadow.HostsOf(pl.namespace, pl.hosts)...)
		}
		ips, err := r.clusterIPs(ctx, now)
		if err != nil {
			return nil, err
		}
		w.hosts, w.retiring, w.retireAt = wantHosts(append(now, ips...), have, w.observed.Now, r.settle())
		lua, err := shadow.Sanitizer{
			Hosts: w.hosts, ClusterDomain: r.ClusterDomain, Remove: w.observed.Decision.RemoveHeaders,
		}.Lua()
		if err != nil {
			problem("the filter that strips the copies' headers cannot be built for %s: %v", shadow.SourceText(w.source.namespace, w.source.vs, w.source.route), err)
		}
		w.sanitizer = lua
	}
	if p.Spec.Analysis != nil {
		w.observed.HasAnalysis = true
		if why, err := r.observeRun(ctx, p, w); err != nil {
			return nil, err
		} else if why != "" {
			problem("%s", why)
		}
	}
	return w, nil
}

// regexProblem checks a match's regular expressions as Envoy reads them
// (RE2, which Go's regexp is): one that does not compile would be refused by
// Istio, or break production's whole route table in Envoy.
func regexProblem(i int, m v1alpha1.PreviewMatch) string {
	check := func(field string, sm *v1alpha1.StringMatch) string {
		if sm == nil || sm.Regex == "" {
			return ""
		}
		if _, err := regexp.Compile(sm.Regex); err != nil {
			return fmt.Sprintf("spec.match[%d].%s.regex: %v", i, field, err)
		}
		return ""
	}
	if why := check("path", m.Path); why != "" {
		return why
	}
	for j, h := range m.Headers {
		if why := check(fmt.Sprintf("headers[%d].headerValue", j), &h.HeaderValue); why != "" {
			return why
		}
	}
	return ""
}

// resolve finds the production route p copies: a Rollout's first managed
// route, or the VirtualService route it names. why says what is missing.
func (r *Reconciler) resolve(ctx context.Context, p *v1alpha1.Preview) (s source, why string, _ error) {
	s.namespace = p.Spec.Source.Namespace
	if name := p.Spec.Source.Rollout; name != "" {
		var ro v1alpha1.Rollout
		switch err := r.Client.Get(ctx, client.ObjectKey{Namespace: s.namespace, Name: name}, &ro); {
		case apierrors.IsNotFound(err):
			return s, fmt.Sprintf("source rollout %s/%s not found", s.namespace, name), nil
		case err != nil:
			return s, "", fmt.Errorf("get rollout %s/%s: %w", s.namespace, name, err)
		}
		vs := ro.Spec.TrafficRouting.Istio.VirtualService
		if len(vs.Routes) == 0 {
			return s, fmt.Sprintf("source rollout %s/%s manages no route", s.namespace, name), nil
		}
		s.vs, s.route, s.workload = vs.Name, vs.Routes[0], ro.Name+"-primary"
	} else if ref := p.Spec.Source.VirtualService; ref != nil {
		s.vs, s.route = ref.Name, ref.Route
	}
	var vs istiov1.VirtualService
	switch err := r.Client.Get(ctx, client.ObjectKey{Namespace: s.namespace, Name: s.vs}, &vs); {
	case apierrors.IsNotFound(err):
		return s, fmt.Sprintf("source virtualservice %s/%s not found", s.namespace, s.vs), nil
	case err != nil:
		return s, "", fmt.Errorf("get virtualservice %s/%s: %w", s.namespace, s.vs, err)
	}
	if !slices.ContainsFunc(vs.Spec.GetHttp(), func(h *networkingv1.HTTPRoute) bool { return h.GetName() == s.route }) {
		return s, fmt.Sprintf("source virtualservice %s/%s has no http route named %q", s.namespace, s.vs, s.route), nil
	}
	s.hosts = vs.Spec.GetHosts()
	s.mirroring = istio.MirroringPreviews(&vs, s.route)
	s.unknown = slices.Contains(istio.PreviewOwners(&vs), istio.UnknownPreviews)
	return s, "", nil
}

// observeService reads the preview's Service: the copies' destination, and
// the pods the sanitizer must run on.
func (r *Reconciler) observeService(ctx context.Context, p *v1alpha1.Preview, w *world) (string, error) {
	var svc corev1.Service
	switch err := r.Client.Get(ctx, client.ObjectKey{Namespace: p.Namespace, Name: p.Spec.Service.Name}, &svc); {
	case apierrors.IsNotFound(err):
		return fmt.Sprintf("service %s/%s not found", p.Namespace, p.Spec.Service.Name), nil
	case err != nil:
		return "", fmt.Errorf("get service %s/%s: %w", p.Namespace, p.Spec.Service.Name, err)
	}
	if len(svc.Spec.Selector) == 0 {
		return fmt.Sprintf("service %s/%s has no selector, so the filter that strips the copies' headers could not be put on its pods", p.Namespace, svc.Name), nil
	}
	i := slices.IndexFunc(svc.Spec.Ports, func(sp corev1.ServicePort) bool { return sp.Port == p.Spec.Service.Port })
	if i < 0 {
		return fmt.Sprintf("service %s/%s has no port %d", p.Namespace, svc.Name, p.Spec.Service.Port), nil
	}
	if opaque(svc.Spec.Ports[i]) {
		return fmt.Sprintf("service %s/%s port %d is declared TCP or TLS (its name or appProtocol): Istio runs no HTTP filter on it, so the copies' headers could not be stripped", p.Namespace, svc.Name, p.Spec.Service.Port), nil
	}
	w.selector = svc.Spec.Selector
	return "", nil
}

// opaque reports whether Istio treats the port as plain TCP, by the
// protocol its appProtocol or name prefix declares.
func opaque(sp corev1.ServicePort) bool {
	proto := strings.ToLower(ptr.Deref(sp.AppProtocol, ""))
	if proto == "" {
		proto, _, _ = strings.Cut(strings.ToLower(sp.Name), "-")
	}
	switch proto {
	case "tcp", "tls", "https", "mongo", "mysql", "redis":
		return true
	}
	return false
}

// runName names the analysis of one spec generation: a new spec is judged
// afresh, and a restart finds the same run.
func runName(p *v1alpha1.Preview) string { return fmt.Sprintf("%s-preview-%d", p.Name, p.Generation) }

// observeRun reads the preview's AnalysisRun for this generation, or builds
// it from the templates, for act to create.
func (r *Reconciler) observeRun(ctx context.Context, p *v1alpha1.Preview, w *world) (string, error) {
	name := runName(p)
	var run v1alpha1.AnalysisRun
	switch err := r.Client.Get(ctx, client.ObjectKey{Namespace: p.Namespace, Name: name}, &run); {
	case err == nil && !metav1.IsControlledBy(&run, p):
		return fmt.Sprintf("analysisrun %s/%s exists and is not this Preview's", p.Namespace, name), nil
	case err == nil:
		w.run = &run
		w.observed.Analysis, w.observed.AnalysisMessage = run.Status.Phase, run.Status.Message
		return "", nil
	case !apierrors.IsNotFound(err):
		return "", fmt.Errorf("get analysisrun %s/%s: %w", p.Namespace, name, err)
	}
	a := p.Spec.Analysis
	var templates []v1alpha1.AnalysisTemplateSpec
	for _, ref := range a.Templates {
		spec, err := analysisreconciler.Template(ctx, r.Client, p.Namespace, ref)
		if errors.Is(err, analysisreconciler.ErrTemplateNotFound) {
			return err.Error(), nil
		}
		if err != nil {
			return "", err
		}
		templates = append(templates, spec)
	}
	args, err := previewArgs(p, w.source, a.Args)
	if err != nil {
		return fmt.Sprintf("analysis: %v", err), nil
	}
	spec, err := analysis.RunSpec(templates, args)
	if err != nil {
		return fmt.Sprintf("analysis: %v", err), nil
	}
	spec.DryRun = append(spec.DryRun, a.DryRun...)
	spec.MeasurementRetention = append(spec.MeasurementRetention, a.MeasurementRetention...)
	run = v1alpha1.AnalysisRun{
		ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: name, Labels: map[string]string{}},
		Spec:       spec,
	}
	if md := a.AnalysisRunMetadata; md != nil {
		maps.Copy(run.Labels, md.Labels)
		run.Annotations = md.Annotations
	}
	maps.Copy(run.Labels, ownedLabels(p)) // ours win: they find the run again
	w.run, w.createRun = &run, true
	return "", nil
}

// previewArgs resolves the analysis arguments: values, or fields of the
// Preview; status.sourceWorkload and status.source come from what this
// reconcile resolved, which status may not show yet.
func previewArgs(p *v1alpha1.Preview, src source, given []argo.AnalysisRunArgument) ([]argo.Argument, error) {
	out := make([]argo.Argument, 0, len(given))
	for _, a := range given {
		var v string
		switch {
		case a.ValueFrom == nil:
			v = a.Value
		case a.ValueFrom.FieldRef != nil && a.ValueFrom.FieldRef.FieldPath == "status.sourceWorkload":
			if src.workload == "" {
				return nil, fmt.Errorf("argument %q: status.sourceWorkload is only known for a Rollout source", a.Name)
			}
			v = src.workload
		case a.ValueFrom.FieldRef != nil && a.ValueFrom.FieldRef.FieldPath == "status.source":
			v = shadow.SourceText(src.namespace, src.vs, src.route)
		case a.ValueFrom.FieldRef != nil:
			var err error
			if v, err = analysis.FieldOf(p, "Preview", a.ValueFrom.FieldRef.FieldPath); err != nil {
				return nil, fmt.Errorf("argument %q: %w", a.Name, err)
			}
		default:
			return nil, fmt.Errorf("argument %q: a Preview's arguments take a value or valueFrom.fieldRef", a.Name)
		}
		out = append(out, argo.Argument{Name: a.Name, Value: ptr.To(v)})
	}
	return out, nil
}
