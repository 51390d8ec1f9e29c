// Package dataplane emulates the part of an Istio mesh that Tugboat's
// sandbox lacks. It is an adapter: each tick it reads the mesh from the API
// server and sends load through it; nothing else.
//
// # Load
//
// The load goes to the hosts of the VirtualServices in Options.Namespace,
// at Options.Rate requests per second each, drawn from Options.Seed: most
// requests GET, some HEAD, some POST; some carry a signed-in user's
// credentials (authorization, cookie, x-tenant-token) and some an API
// client's (x-api-key, x-tenant-token). Each request's :authority is the
// VirtualService's host, or for a short name sometimes the Service's full
// name.
//
// # Routing
//
// Requests take the first HTTP route whose match holds (uri, method and
// headers, as Istio matches them), then a destination by weight, and are
// copied to the route's mirror and to each entry of its mirrors, each at
// its own percentage. A destination host names a Service: a short name in
// the VirtualService's namespace, or "name.namespace" and
// "name.namespace.svc.cluster.local" in any namespace. It reaches a Ready
// pod the Service selects, within a DestinationRule subset if the route
// names one (a DestinationRule in the load's own namespace is preferred
// to one in the Service's, as Istio prefers the client's). Services, pods,
// DestinationRules and EnvoyFilters are read in all namespaces, once per
// tick.
//
// # Copies
//
// A copy carries the production request's method and headers, with
// "-shadow" appended to the host in :authority (as Envoy does unless
// istiod's DISABLE_SHADOW_HOST_SUFFIX is on). Its answer is dropped: it
// never changes the production request's answer or metrics. It is
// reported only by the receiving side (reporter="destination") and not at
// all when no Ready pod receives it, as Istio reports copies
// (istio/istio#23496).
//
// # Inbound Lua filters
//
// Before any request, copy or not, reaches a pod, the pod's sidecar runs
// the Lua filters that EnvoyFilters in the pod's namespace insert for it,
// in the order of the EnvoyFilters' names, through package envoylua. An
// EnvoyFilter counts when its workloadSelector labels (none: every
// workload) are among the pod's, and for each config patch of exactly this
// shape, which is the one Tugboat writes; any other patch is not emulated:
//
//	applyTo: HTTP_FILTER
//	match:
//	  context: SIDECAR_INBOUND
//	  listener:
//	    filterChain:
//	      filter:
//	        name: envoy.filters.network.http_connection_manager
//	        subFilter: {name: envoy.filters.http.router}
//	patch:
//	  operation: INSERT_BEFORE
//	  value:
//	    name: envoy.filters.http.lua
//	    typed_config:
//	      "@type": type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua
//	      default_source_code: {inline_string: <the Lua>}
//
// A filter that answers the request itself keeps it from the pod, and the
// answer is what the mesh reports: by both sidecars for a production
// request, by the receiving one for a copy. A script that does not load is left out
// (Envoy rejects the configuration and keeps what it had) and Tick reports
// it. Scripts are loaded once per tick.
//
// # Metrics
//
// Registered with the Registerer given to New:
//
//   - istio_requests_total and istio_request_duration_milliseconds, with
//     Istio's label names (reporter, source_workload,
//     source_workload_namespace, destination_workload,
//     destination_workload_namespace, destination_service,
//     destination_service_name, destination_service_namespace,
//     request_protocol, response_code, response_flags); the destination
//     labels name the Service's own namespace. A request that reaches a
//     pod is reported by both ends, reporter="source" and
//     reporter="destination", as Istio's sidecars do; one that reaches no
//     pod (503, UH) only at the source. Each pod answers with the
//     behaviour its template asks for: the first container's env
//     DEMO_ERROR_RATE (0 to 1) and DEMO_LATENCY_MS.
//   - tugboat_sandbox_received_requests_total{namespace, workload,
//     mirrored, method}: requests that reached a pod, after its inbound
//     filters; mirrored is "true" for copies, "false" otherwise.
//   - tugboat_sandbox_received_headers_total{namespace, workload, mirrored,
//     header}: of those, the ones that still carried each of the headers
//     authorization, cookie, proxy-authorization, x-api-key and
//     x-tenant-token.
package dataplane
