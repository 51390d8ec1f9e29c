package dataplane

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"strings"

	networkingv1 "istio.io/api/networking/v1"
	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
	istiov1alpha3 "istio.io/client-go/pkg/apis/networking/v1alpha3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

const clusterDomain = "cluster.local"

// service names a Service.
type service struct{ namespace, name string }

// fqdn is the name Istio reports a Service by.
func (s service) fqdn() string { return s.name + "." + s.namespace + ".svc." + clusterDomain }

// subsets are a DestinationRule's subsets: name -> labels.
type subsets map[string]map[string]string

// mesh is the state requests are routed through, read once per tick.
type mesh struct {
	ns       string // the load's namespace, where its VirtualServices are
	services []*networkingv1.VirtualService
	rules    map[service]map[string]subsets // by the DestinationRule's namespace
	svcs     map[service]*corev1.Service
	pods     map[string][]*corev1.Pod // by namespace
	inbound  *inbound
}

// read lists the load's VirtualServices, and Services, pods,
// DestinationRules and EnvoyFilters in every namespace. The caller must
// close the mesh.
func read(ctx context.Context, r client.Reader, ns string) (*mesh, error) {
	var vss istiov1.VirtualServiceList
	if err := r.List(ctx, &vss, client.InNamespace(ns)); err != nil {
		return nil, fmt.Errorf("emulator: list virtualservices in %s: %w", ns, err)
	}
	var drs istiov1.DestinationRuleList
	var svcs corev1.ServiceList
	var pods corev1.PodList
	var efs istiov1alpha3.EnvoyFilterList
	for _, l := range []client.ObjectList{&drs, &svcs, &pods, &efs} {
		if err := r.List(ctx, l); err != nil {
			return nil, fmt.Errorf("emulator: list: %w", err)
		}
	}
	m := &mesh{ns: ns, rules: map[service]map[string]subsets{}, svcs: map[service]*corev1.Service{}, pods: map[string][]*corev1.Pod{}}
	for _, vs := range vss.Items {
		m.services = append(m.services, &vs.Spec)
	}
	for _, dr := range drs.Items {
		s, ok := resolve(dr.Spec.GetHost(), dr.Namespace)
		if !ok {
			continue
		}
		if m.rules[s] == nil {
			m.rules[s] = map[string]subsets{}
		}
		byName := subsets{}
		for _, ss := range dr.Spec.GetSubsets() {
			byName[ss.GetName()] = ss.GetLabels()
		}
		m.rules[s][dr.Namespace] = byName
	}
	for i := range svcs.Items {
		m.svcs[service{svcs.Items[i].Namespace, svcs.Items[i].Name}] = &svcs.Items[i]
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		m.pods[p.Namespace] = append(m.pods[p.Namespace], p)
	}
	m.inbound = loadInbound(efs.Items)
	return m, nil
}

func (m *mesh) close() { m.inbound.close() }

// resolve is the Service a host names, a short name taken in ns, as Istio
// reads hosts; ok is false for a host outside the cluster.
func resolve(host, ns string) (s service, ok bool) {
	parts := strings.Split(strings.ToLower(host), ".")
	switch {
	case len(parts) == 1:
		return service{ns, parts[0]}, true
	case len(parts) == 2, len(parts) == 3 && parts[2] == "svc",
		len(parts) > 3 && parts[2] == "svc" && strings.Join(parts[3:], ".") == clusterDomain:
		return service{parts[1], parts[0]}, true
	}
	return service{}, false
}

// podFor picks a Ready pod behind a Service, within a subset if named.
func (m *mesh) podFor(rng *rand.Rand, s service, subset string) *corev1.Pod {
	svc, ok := m.svcs[s]
	if !ok || len(svc.Spec.Selector) == 0 {
		return nil
	}
	sel := maps.Clone(svc.Spec.Selector)
	if subset != "" {
		ls, ok := m.subsetLabels(s, subset)
		if !ok {
			return nil
		}
		maps.Copy(sel, ls)
	}
	selector := labels.SelectorFromSet(sel)
	var ready []*corev1.Pod
	for _, p := range m.pods[s.namespace] {
		if p.DeletionTimestamp == nil && isReady(p) && selector.Matches(labels.Set(p.Labels)) {
			ready = append(ready, p)
		}
	}
	if len(ready) == 0 {
		return nil
	}
	return ready[rng.IntN(len(ready))]
}

// subsetLabels are a subset's labels from the DestinationRule Istio would
// use: the one in the client's namespace, else the Service's own.
func (m *mesh) subsetLabels(s service, subset string) (map[string]string, bool) {
	for _, ns := range []string{m.ns, s.namespace} {
		if byName, ok := m.rules[s][ns]; ok {
			ls, ok := byName[subset]
			return ls, ok
		}
	}
	return nil, false
}

func isReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
