package reconciler

import (
	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/traffic"
)

// meshOf names the mesh objects and backends of a Rollout.
func meshOf(ro *v1alpha1.Rollout, stableLabels, canaryLabels map[string]string) traffic.Mesh {
	is := ro.Spec.TrafficRouting.Istio
	m := traffic.Mesh{
		Namespace:      ro.Namespace,
		Owner:          ro.Name,
		VirtualService: is.VirtualService.Name,
		Routes:         is.VirtualService.Routes,
		StableService:  stableServiceName(ro),
		CanaryService:  canaryServiceName(ro),
	}
	if dr := is.DestinationRule; dr != nil {
		m.DestinationRule = dr.Name
		m.StableSubset, m.CanarySubset = dr.StableSubsetName, dr.CanarySubsetName
		m.StableLabels, m.CanaryLabels = stableLabels, canaryLabels
	}
	return m
}
