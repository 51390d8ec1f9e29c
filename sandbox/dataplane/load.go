package dataplane

import (
	"maps"
	"math/rand/v2"
	"strings"
)

// sensitiveHeaders are the headers the received-headers counter watches:
// the credentials the load sends, and proxy-authorization.
var sensitiveHeaders = []string{"authorization", "cookie", "proxy-authorization", "x-api-key", "x-tenant-token"}

// request is one request of the load to a VirtualService host in ns: most
// GET, some HEAD, some POST; 40% from signed-in users, 20% from API
// clients, the rest anonymous.
func request(rng *rand.Rand, host, ns string) Request {
	req := Request{Host: host, Method: "GET", Path: "/", Headers: map[string]string{
		"accept": "*/*", "user-agent": "tugboat-sandbox-load",
	}}
	switch r := rng.Float64(); {
	case r < 0.10:
		req.Method = "HEAD"
	case r < 0.25:
		req.Method = "POST"
		req.Headers["content-type"] = "application/json"
	}
	switch r := rng.Float64(); {
	case r < 0.40:
		req.Headers["authorization"] = "Bearer sandbox-user-token"
		req.Headers["cookie"] = "session=sandbox-session"
		req.Headers["x-tenant-token"] = "sandbox-tenant"
	case r < 0.60:
		req.Headers["x-api-key"] = "sandbox-api-key"
		req.Headers["x-tenant-token"] = "sandbox-tenant"
	}
	// Clients elsewhere in the cluster call a Service by its full name.
	if !strings.Contains(host, ".") && rng.IntN(2) == 0 {
		req.Host = host + "." + ns + ".svc." + clusterDomain
	}
	return req
}

// envoyHeaders are the request's headers as a sidecar holds them,
// pseudo-headers included. A copy's :authority has "-shadow" appended to
// its host, before any port, as Envoy names copies.
func envoyHeaders(req Request, copied bool) map[string]string {
	h := make(map[string]string, len(req.Headers)+4)
	maps.Copy(h, req.Headers)
	authority := req.Host
	if copied {
		host, port, hasPort := strings.Cut(authority, ":")
		authority = host + "-shadow"
		if hasPort {
			authority += ":" + port
		}
	}
	h[":authority"], h[":method"], h[":path"], h[":scheme"] = authority, req.Method, req.Path, "http"
	return h
}
