package reconciler

import (
	"fmt"
	"maps"

	"google.golang.org/protobuf/types/known/structpb"
	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
	istiov1alpha3 "istio.io/client-go/pkg/apis/networking/v1alpha3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

// Labels on what a Preview owns.
const (
	labelManagedBy = "app.kubernetes.io/managed-by"
	managedBy      = "tugboat"
	labelPreview   = "tugboat.dev/preview"
)

func ownedLabels(p *v1alpha1.Preview) map[string]string {
	return map[string]string{labelManagedBy: managedBy, labelPreview: p.Name}
}

// filterName names the EnvoyFilter that strips a preview's copies.
func filterName(preview string) string { return "tugboat-preview-" + preview }

// sanitizerFilter is the EnvoyFilter that runs the sanitizer's Lua on the
// inbound listener of the preview's pods, just before the router: Envoy's
// Lua HTTP filter (envoy.filters.http.lua) with the script inline. It is
// the only place a copy can lose headers without production's requests
// losing them too: Istio's mirror policy has no header fields, and a
// route's headers.request.remove applies to the request before it is
// cloned.
func sanitizerFilter(p *v1alpha1.Preview, selector map[string]string, lua string) (*istiov1alpha3.EnvoyFilter, error) {
	value, err := structpb.NewStruct(map[string]any{
		"name": "envoy.filters.http.lua",
		"typed_config": map[string]any{
			"@type":               "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
			"default_source_code": map[string]any{"inline_string": lua},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("envoyfilter value: %w", err)
	}
	return &istiov1alpha3.EnvoyFilter{
		ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: filterName(p.Name), Labels: ownedLabels(p)},
		Spec: networkingv1alpha3.EnvoyFilter{
			WorkloadSelector: &networkingv1alpha3.WorkloadSelector{Labels: maps.Clone(selector)},
			ConfigPatches: []*networkingv1alpha3.EnvoyFilter_EnvoyConfigObjectPatch{{
				ApplyTo: networkingv1alpha3.EnvoyFilter_HTTP_FILTER,
				Match: &networkingv1alpha3.EnvoyFilter_EnvoyConfigObjectMatch{
					Context: networkingv1alpha3.EnvoyFilter_SIDECAR_INBOUND,
					ObjectTypes: &networkingv1alpha3.EnvoyFilter_EnvoyConfigObjectMatch_Listener{
						Listener: &networkingv1alpha3.EnvoyFilter_ListenerMatch{
							FilterChain: &networkingv1alpha3.EnvoyFilter_ListenerMatch_FilterChainMatch{
								Filter: &networkingv1alpha3.EnvoyFilter_ListenerMatch_FilterMatch{
									Name:      "envoy.filters.network.http_connection_manager",
									SubFilter: &networkingv1alpha3.EnvoyFilter_ListenerMatch_SubFilterMatch{Name: "envoy.filters.http.router"},
								},
							},
						},
					},
				},
				Patch: &networkingv1alpha3.EnvoyFilter_Patch{
					Operation: networkingv1alpha3.EnvoyFilter_Patch_INSERT_BEFORE,
					Value:     value,
				},
			}},
		},
	}, nil
}
