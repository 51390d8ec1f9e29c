package reconciler

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"google.golang.org/protobuf/types/known/structpb"
	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
	istiov1alpha3 "istio.io/client-go/pkg/apis/networking/v1alpha3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/shadow"
)

// Labels on what a Preview owns.
const (
	labelManagedBy = "app.kubernetes.io/managed-by"
	managedBy      = "tugboat"
	labelPreview   = "tugboat.dev/preview"
)

// ownedBy reports whether an EnvoyFilter is the sanitizer of the preview
// named name (and so Tugboat's to change or delete).
func ownedBy(ef *istiov1alpha3.EnvoyFilter, name string) bool {
	return ef.Labels[labelPreview] == name && ef.Labels[labelManagedBy] == managedBy
}

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
func sanitizerFilter(p *v1alpha1.Preview, selector map[string]string, lua string, hosts []shadow.Host) (*istiov1alpha3.EnvoyFilter, error) {
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
	recorded, err := json.Marshal(hosts)
	if err != nil {
		return nil, fmt.Errorf("envoyfilter hosts: %w", err)
	}
	return &istiov1alpha3.EnvoyFilter{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: p.Namespace, Name: filterName(p.Name), Labels: ownedLabels(p),
			Annotations: map[string]string{annotationHosts: string(recorded)},
		},
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

// The sanitizer's history, in annotations on it and on the controller's
// clock alone (never an object's creationTimestamp, which is the API
// server's), so that every wait survives a restart:
//   - annotationChanged: when it last changed in a way that strips more.
//     Copies that need the change wait the settle time from then.
//   - annotationCovered: the hosts whose copies the filter before that
//     change stripped, settled, as the new one does: those may flow
//     meanwhile (empty when the change was to the headers or the pods).
//   - annotationMirrorRemoved: when the preview's mirror last came off a
//     route. The filter stays the settle time from then.
//   - annotationHosts: the hosts it strips for; annotationRetiring: since
//     when each one no longer needed has been so. A host goes the settle
//     time after, for the copies the proxies still send.
const (
	annotationChanged       = "tugboat.dev/sanitizer-changed"
	annotationCovered       = "tugboat.dev/sanitizer-covered"
	annotationMirrorRemoved = "tugboat.dev/mirror-removed"
	annotationHosts         = "tugboat.dev/sanitizer-hosts"
	annotationRetiring      = "tugboat.dev/sanitizer-retiring"
	// annotationDeleted: when the controller first saw the filter's
	// Preview gone or deleted (a mirror, counted as removed then, may have
	// come off unseen).
	annotationDeleted = "tugboat.dev/preview-deleted"
)

// history is what a sanitizer's annotations say. A time that cannot be read
// is zero: never changed means "changed now" to ensureFilter, never removed
// means nothing is in flight.
type history struct {
	changed, removed time.Time
	hosts, covered   []shadow.Host
	retiring         map[string]time.Time
}

func historyOf(ef *istiov1alpha3.EnvoyFilter) history {
	var h history
	if ef == nil {
		return h
	}
	a := ef.Annotations
	h.changed, _ = time.Parse(time.RFC3339Nano, a[annotationChanged])
	h.removed, _ = time.Parse(time.RFC3339Nano, a[annotationMirrorRemoved])
	_ = json.Unmarshal([]byte(a[annotationHosts]), &h.hosts)
	_ = json.Unmarshal([]byte(a[annotationCovered]), &h.covered)
	_ = json.Unmarshal([]byte(a[annotationRetiring]), &h.retiring)
	return h
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func hostKey(h shadow.Host) string { return h.Namespace + "/" + h.Name }

// wantHosts are the hosts the sanitizer strips for now: those of the
// routes it copies from and of every route that still records a mirror of
// the preview (with the cluster IPs of the Services they name, ips), and
// each it stripped for before until the settle time after it was first no
// longer needed (retiring, with next the first time one goes).
func wantHosts(now []shadow.Host, have history, at time.Time, settle time.Duration) (hosts []shadow.Host, retiring map[string]time.Time, next time.Time) {
	hosts = slices.Clone(now)
	for _, h := range have.hosts {
		if slices.Contains(now, h) {
			continue
		}
		since, ok := have.retiring[hostKey(h)]
		if !ok || since.After(at) {
			since = at
		}
		if goes := since.Add(settle); at.Before(goes) {
			hosts = append(hosts, h)
			if retiring == nil {
				retiring = map[string]time.Time{}
			}
			retiring[hostKey(h)] = since
			if next.IsZero() || goes.Before(next) {
				next = goes
			}
		}
	}
	slices.SortFunc(hosts, func(a, b shadow.Host) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Namespace, b.Namespace))
	})
	return slices.Compact(hosts), retiring, next
}

// jsonText is v as an annotation's value; empty for nothing.
func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil || string(b) == "null" || string(b) == "{}" || string(b) == "[]" {
		return ""
	}
	return string(b)
}
