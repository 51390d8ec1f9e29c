package dataplane

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
	istiov1alpha3 "istio.io/client-go/pkg/apis/networking/v1alpha3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// newLuaEnvoyFilter is the EnvoyFilter Tugboat writes for a preview: src
// inserted before the router of the inbound listener of the workloads
// selector selects.
func newLuaEnvoyFilter(ns, preview string, selector map[string]string, src string) *istiov1alpha3.EnvoyFilter {
	value, err := structpb.NewStruct(map[string]any{
		"name": "envoy.filters.http.lua",
		"typed_config": map[string]any{
			"@type":               "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
			"default_source_code": map[string]any{"inline_string": src},
		},
	})
	if err != nil {
		panic(err)
	}
	return &istiov1alpha3.EnvoyFilter{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "tugboat-preview-" + preview,
			Labels: map[string]string{"app.kubernetes.io/managed-by": "tugboat", "tugboat.dev/preview": preview}},
		Spec: networkingv1alpha3.EnvoyFilter{
			WorkloadSelector: &networkingv1alpha3.WorkloadSelector{Labels: selector},
			ConfigPatches: []*networkingv1alpha3.EnvoyFilter_EnvoyConfigObjectPatch{{
				ApplyTo: networkingv1alpha3.EnvoyFilter_HTTP_FILTER,
				Match: &networkingv1alpha3.EnvoyFilter_EnvoyConfigObjectMatch{
					Context: networkingv1alpha3.EnvoyFilter_SIDECAR_INBOUND,
					ObjectTypes: &networkingv1alpha3.EnvoyFilter_EnvoyConfigObjectMatch_Listener{Listener: &networkingv1alpha3.EnvoyFilter_ListenerMatch{
						FilterChain: &networkingv1alpha3.EnvoyFilter_ListenerMatch_FilterChainMatch{
							Filter: &networkingv1alpha3.EnvoyFilter_ListenerMatch_FilterMatch{
								Name:      "envoy.filters.network.http_connection_manager",
								SubFilter: &networkingv1alpha3.EnvoyFilter_ListenerMatch_SubFilterMatch{Name: "envoy.filters.http.router"},
							}}}},
				},
				Patch: &networkingv1alpha3.EnvoyFilter_Patch{Operation: networkingv1alpha3.EnvoyFilter_Patch_INSERT_BEFORE, Value: value},
			}},
		},
	}
}

// TestInboundLuaShape: only the exact patch Tugboat writes is emulated.
func TestInboundLuaShape(t *testing.T) {
	const src = `function envoy_on_request(handle) end`
	patch := func(change func(p *networkingv1alpha3.EnvoyFilter_EnvoyConfigObjectPatch)) *networkingv1alpha3.EnvoyFilter_EnvoyConfigObjectPatch {
		p := proto.Clone(newLuaEnvoyFilter("ns", "f", nil, src).Spec.ConfigPatches[0]).(*networkingv1alpha3.EnvoyFilter_EnvoyConfigObjectPatch)
		change(p)
		return p
	}
	listener := func(p *networkingv1alpha3.EnvoyFilter_EnvoyConfigObjectPatch) *networkingv1alpha3.EnvoyFilter_ListenerMatch {
		return p.GetMatch().GetListener()
	}
	typedConfig := func(p *networkingv1alpha3.EnvoyFilter_EnvoyConfigObjectPatch) map[string]*structpb.Value {
		return p.Patch.Value.Fields["typed_config"].GetStructValue().Fields
	}
	if got, ok := inboundLua(patch(func(*networkingv1alpha3.EnvoyFilter_EnvoyConfigObjectPatch) {})); !ok || got != src {
		t.Fatalf("Tugboat's own patch: %q, %v", got, ok)
	}
	for _, tt := range []struct {
		name   string
		change func(p *networkingv1alpha3.EnvoyFilter_EnvoyConfigObjectPatch)
	}{
		{"another object", func(p *networkingv1alpha3.EnvoyFilter_EnvoyConfigObjectPatch) {
			p.ApplyTo = networkingv1alpha3.EnvoyFilter_NETWORK_FILTER
		}},
		{"the outbound side", func(p *networkingv1alpha3.EnvoyFilter_EnvoyConfigObjectPatch) {
			p.Match.Context = networkingv1alpha3.EnvoyFilter_SIDECAR_OUTBOUND
		}},
		{"any context", func(p *networkingv1alpha3.EnvoyFilter_EnvoyConfigObjectPatch) {
			p.Match.Context = networkingv1alpha3.EnvoyFilter_ANY
		}},
		{"one port only", func(p *networkingv1alpha3.EnvoyFilter_EnvoyConfigObjectPatch) { listener(p).PortNumber = 8080 }},
		{"after the router", func(p *networkingv1alpha3.EnvoyFilter_EnvoyConfigObjectPatch) {
			p.Patch.Operation = networkingv1alpha3.EnvoyFilter_Patch_INSERT_AFTER
		}},
		{"before another filter", func(p *networkingv1alpha3.EnvoyFilter_EnvoyConfigObjectPatch) {
			listener(p).FilterChain.Filter.SubFilter.Name = "envoy.filters.http.cors"
		}},
		{"no sub-filter", func(p *networkingv1alpha3.EnvoyFilter_EnvoyConfigObjectPatch) {
			listener(p).FilterChain.Filter.SubFilter = nil
		}},
		{"another filter", func(p *networkingv1alpha3.EnvoyFilter_EnvoyConfigObjectPatch) {
			p.Patch.Value.Fields["name"] = structpb.NewStringValue("envoy.filters.http.wasm")
		}},
		{"another type", func(p *networkingv1alpha3.EnvoyFilter_EnvoyConfigObjectPatch) {
			typedConfig(p)["@type"] = structpb.NewStringValue("type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm")
		}},
		{"named sources as well", func(p *networkingv1alpha3.EnvoyFilter_EnvoyConfigObjectPatch) {
			typedConfig(p)["source_codes"] = structpb.NewStructValue(&structpb.Struct{})
		}},
		{"source from a file", func(p *networkingv1alpha3.EnvoyFilter_EnvoyConfigObjectPatch) {
			typedConfig(p)["default_source_code"] = structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{"filename": structpb.NewStringValue("/f.lua")}})
		}},
		{"source that is not a string", func(p *networkingv1alpha3.EnvoyFilter_EnvoyConfigObjectPatch) {
			typedConfig(p)["default_source_code"] = structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{"inline_string": structpb.NewNumberValue(1)}})
		}},
		{"no value", func(p *networkingv1alpha3.EnvoyFilter_EnvoyConfigObjectPatch) { p.Patch.Value = nil }},
		{"no match", func(p *networkingv1alpha3.EnvoyFilter_EnvoyConfigObjectPatch) { p.Match = nil }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got, ok := inboundLua(patch(tt.change)); ok {
				t.Errorf("emulated: %q", got)
			}
		})
	}
}

// TestInboundChain: a pod's sidecar runs the filters of its own namespace
// that select it, by the EnvoyFilters' names; the first to answer stops
// the request; a filter that does not load is left out and reported.
func TestInboundChain(t *testing.T) {
	appendHeader := func(v string) string {
		return `function envoy_on_request(handle)
  local h = handle:headers()
  h:replace("x-chain", (h:get("x-chain") or "") .. "` + v + `")
end`
	}
	web := map[string]string{"app": "web"}
	in := loadInbound([]*istiov1alpha3.EnvoyFilter{
		newLuaEnvoyFilter("pr-1", "b", web, appendHeader("b")),
		newLuaEnvoyFilter("pr-1", "a", web, appendHeader("a")),
		newLuaEnvoyFilter("pr-1", "c-everyone", nil, appendHeader("c")),
		newLuaEnvoyFilter("pr-1", "d-others", map[string]string{"app": "other"}, appendHeader("d")),
		newLuaEnvoyFilter("pr-2", "a", web, appendHeader("x")),
		newLuaEnvoyFilter("pr-1", "e-broken", web, `function envoy_on_request(handle)`),
	})
	defer in.close()
	if in.rejected == nil || !strings.Contains(in.rejected.Error(), "envoyfilter pr-1/tugboat-preview-e-broken") {
		t.Errorf("rejected: %v", in.rejected)
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "pr-1", Name: "web-1", Labels: map[string]string{"app": "web", "version": "v2"}}}
	got, status := in.receive(pod, map[string]string{":authority": "web"})
	if status != 0 || got["x-chain"] != "abc" {
		t.Errorf("received %v (status %d), want x-chain abc", got, status)
	}

	refuse := loadInbound([]*istiov1alpha3.EnvoyFilter{
		newLuaEnvoyFilter("pr-1", "a", web, `function envoy_on_request(handle) handle:respond({[":status"] = "403"}) end`),
		newLuaEnvoyFilter("pr-1", "b", web, `function envoy_on_request(handle) error("never runs") end`),
	})
	defer refuse.close()
	if got, status := refuse.receive(pod, map[string]string{}); status != 403 || got != nil {
		t.Errorf("received %v (status %d), want 403 and nothing", got, status)
	}
	if refuse.rejected != nil {
		t.Errorf("rejected: %v", refuse.rejected)
	}
}
