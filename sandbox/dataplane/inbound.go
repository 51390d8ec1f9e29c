package dataplane

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"

	"google.golang.org/protobuf/types/known/structpb"
	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
	istiov1alpha3 "istio.io/client-go/pkg/apis/networking/v1alpha3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/tugboatdev/tugboat/sandbox/envoylua"
)

// luaFilter is one inbound Lua filter an EnvoyFilter inserts, loaded.
type luaFilter struct {
	selector labels.Selector
	script   *envoylua.Script
}

// inbound are the loaded inbound Lua filters of one tick.
type inbound struct {
	byNamespace map[string][]luaFilter // in the order the sidecar runs them
	chains      map[*corev1.Pod][]*envoylua.Script
	// rejected names the filters whose Lua did not load; they are left
	// out, as Envoy rejects them.
	rejected error
}

// loadInbound loads the Lua of every EnvoyFilter patch of the emulated
// shape, in the order of the EnvoyFilters' names and of their patches.
func loadInbound(efs []*istiov1alpha3.EnvoyFilter) *inbound {
	in := &inbound{byNamespace: map[string][]luaFilter{}, chains: map[*corev1.Pod][]*envoylua.Script{}}
	efs = slices.Clone(efs)
	slices.SortFunc(efs, func(a, b *istiov1alpha3.EnvoyFilter) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	var rejected []error
	for _, ef := range efs {
		if len(ef.Spec.GetTargetRefs()) > 0 {
			continue // selects by policy target, not emulated
		}
		selector := labels.SelectorFromSet(ef.Spec.GetWorkloadSelector().GetLabels())
		for i, p := range ef.Spec.GetConfigPatches() {
			src, ok := inboundLua(p)
			if !ok {
				continue
			}
			script, err := envoylua.Load(src)
			if err != nil {
				rejected = append(rejected, fmt.Errorf("envoyfilter %s/%s patch %d: %w", ef.Namespace, ef.Name, i, err))
				continue
			}
			in.byNamespace[ef.Namespace] = append(in.byNamespace[ef.Namespace], luaFilter{selector: selector, script: script})
		}
	}
	in.rejected = errors.Join(rejected...)
	return in
}

// chain is the filters a pod's sidecar runs on inbound requests.
func (in *inbound) chain(p *corev1.Pod) []*envoylua.Script {
	if c, ok := in.chains[p]; ok {
		return c
	}
	var c []*envoylua.Script
	for _, f := range in.byNamespace[p.Namespace] {
		if f.selector.Matches(labels.Set(p.Labels)) {
			c = append(c, f.script)
		}
	}
	in.chains[p] = c
	return c
}

// receive runs a pod's inbound filters on a request's headers: the
// headers the pod receives, or the status a filter answered with itself.
func (in *inbound) receive(p *corev1.Pod, headers map[string]string) (map[string]string, int) {
	for _, s := range in.chain(p) {
		r := s.OnRequest(headers)
		if r.Status != 0 {
			return nil, r.Status
		}
		headers = r.Headers
	}
	return headers, 0
}

func (in *inbound) close() {
	for _, fs := range in.byNamespace {
		for _, f := range fs {
			f.script.Close()
		}
	}
}

// inboundLua is the Lua of a patch that inserts a Lua filter before the
// router of a sidecar's inbound HTTP listener, in exactly the shape
// Tugboat writes; ok is false for any other patch.
func inboundLua(p *networkingv1alpha3.EnvoyFilter_EnvoyConfigObjectPatch) (src string, ok bool) {
	m := p.GetMatch()
	l := m.GetListener()
	fc := l.GetFilterChain()
	if p.GetApplyTo() != networkingv1alpha3.EnvoyFilter_HTTP_FILTER ||
		m.GetContext() != networkingv1alpha3.EnvoyFilter_SIDECAR_INBOUND || m.GetProxy() != nil ||
		l == nil || l.GetPortNumber() != 0 || l.GetPortName() != "" || l.GetName() != "" || l.GetListenerFilter() != "" ||
		fc.GetName() != "" || fc.GetSni() != "" || fc.GetTransportProtocol() != "" || fc.GetApplicationProtocols() != "" || fc.GetDestinationPort() != 0 ||
		fc.GetFilter().GetName() != "envoy.filters.network.http_connection_manager" ||
		fc.GetFilter().GetSubFilter().GetName() != "envoy.filters.http.router" ||
		p.GetPatch().GetOperation() != networkingv1alpha3.EnvoyFilter_Patch_INSERT_BEFORE ||
		p.GetPatch().GetFilterClass() != networkingv1alpha3.EnvoyFilter_Patch_UNSPECIFIED {
		return "", false
	}
	value := only(p.GetPatch().GetValue().GetFields(), "name", "typed_config")
	config := only(value["typed_config"].GetStructValue().GetFields(), "@type", "default_source_code")
	source := only(config["default_source_code"].GetStructValue().GetFields(), "inline_string")
	if value == nil || config == nil || source == nil ||
		value["name"].GetStringValue() != "envoy.filters.http.lua" ||
		config["@type"].GetStringValue() != "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua" {
		return "", false
	}
	inline, ok := source["inline_string"].GetKind().(*structpb.Value_StringValue)
	if !ok {
		return "", false
	}
	return inline.StringValue, true
}

// only is fields if it has exactly the keys named, else nil.
func only(fields map[string]*structpb.Value, keys ...string) map[string]*structpb.Value {
	if !slices.Equal(slices.Sorted(maps.Keys(fields)), slices.Sorted(slices.Values(keys))) {
		return nil
	}
	return fields
}
