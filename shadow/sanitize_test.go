package shadow

import (
	"maps"
	"strings"
	"testing"

	"github.com/tugboatdev/tugboat/sandbox/envoylua"
)

// runFilter runs the filter's envoy_on_request on one request's headers, as
// Envoy's Lua filter would, and returns the headers the preview receives
// and the status the filter answered with itself (0: it let the request
// through).
func runFilter(t *testing.T, src string, in map[string]string) (map[string]string, int) {
	t.Helper()
	got, err := envoylua.Run(src, in)
	if err != nil {
		t.Fatalf("the filter does not load: %v\n%s", err, src)
	}
	if got.Err != nil {
		t.Fatalf("envoy_on_request: %v", got.Err)
	}
	return got.Headers, got.Status
}

func TestSanitizer(t *testing.T) {
	s := Sanitizer{Hosts: append(HostsOf("prod", []string{"web", "shop.example.com", "*.api.example.com"}), Host{Name: "cart", Namespace: "shop"}, Host{Name: "10.96.4.7"}, Host{Name: "fd00:10:96::4:7"}),
		Remove: []string{"authorization", "cookie", "x-api-key", "x-tenant-token"}}
	src, err := s.Lua()
	if err != nil {
		t.Fatal(err)
	}
	creds := map[string]string{"authorization": "Bearer s3cret", "cookie": "session=1", "x-api-key": "k", "x-tenant-token": "t", "accept": "text/html"}
	with := func(authority string) map[string]string {
		h := maps.Clone(creds)
		h[":authority"] = authority
		return h
	}
	for _, tt := range []struct {
		name      string
		authority string
		copied    bool
	}{
		{"a copy with Envoy's -shadow suffix, before the port", "web.prod.svc.cluster.local-shadow:9898", true},
		{"a copy without the suffix (Istio 1.28 and later), by production's short name", "web", true},
		{"by the namespace-qualified name and a port", "web.prod:80", true},
		{"by the full name", "WEB.prod.svc.cluster.local", true},
		{"production's external host", "shop.example.com-shadow", true},
		{"a subdomain of a wildcard host", "eu.api.example.com", true},
		{"any -shadow host at all", "other.ns.svc.cluster.local-shadow", true},
		{"the preview's own clients keep their headers", "web.pr-42.svc.cluster.local", false},
		{"the wildcard's own domain is not its subdomain", "api.example.com", false},
		{"a name that merely ends like production's", "notweb", false},
		{"a host of another namespace's VirtualService, by its namespace-qualified name", "cart.shop", true},
		{"and by its short name, which its own namespace's clients use", "cart", true},
		{"a Service's cluster IP, with a port", "10.96.4.7:80", true},
		{"a Service's IPv6 cluster IP", "[fd00:10:96::4:7]:80", true},
		{"another IP", "10.96.4.8", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, status := runFilter(t, src, with(tt.authority))
			if status != 0 {
				t.Fatalf("answered %d", status)
			}
			for _, h := range s.Remove {
				if _, kept := got[h]; kept == tt.copied {
					t.Errorf("header %s kept %v", h, kept)
				}
			}
			if got["accept"] != "text/html" {
				t.Errorf("other headers changed: %v", got)
			}
			if (got[MirroredHeader] == "true") != tt.copied {
				t.Errorf("%s: %q", MirroredHeader, got[MirroredHeader])
			}
		})
	}

	// A client cannot pass for a copy, nor hide one.
	h := with("web.pr-42.svc.cluster.local")
	h[MirroredHeader] = "true"
	if got, _ := runFilter(t, src, h); got[MirroredHeader] != "" {
		t.Errorf("a client-sent %s reached the preview", MirroredHeader)
	}
}

// Broken, the filter answers 503 instead of letting a copy through with its
// credentials.
func TestSanitizerFailsClosed(t *testing.T) {
	src, err := Sanitizer{Hosts: HostsOf("prod", []string{"web"}), Remove: []string{"cookie"}}.Lua()
	if err != nil {
		t.Fatal(err)
	}
	src = strings.Replace(src, `headers:remove(MARK)`, `headers:nosuch(MARK)`, 1)
	got, status := runFilter(t, src, map[string]string{":authority": "web", "cookie": "session=1"})
	if status != 503 {
		t.Errorf("answered %d, headers %v; want 503", status, got)
	}
}

// Names are checked before they are written into the script.
func TestSanitizerRefusesWhatCouldChangeTheScript(t *testing.T) {
	for _, s := range []Sanitizer{
		{Hosts: HostsOf("", []string{"web"}), Remove: []string{`cookie"} os.exit() --`}},
		{Hosts: HostsOf("", []string{"web"}), Remove: []string{"Cookie"}},
		{Hosts: HostsOf("", []string{`web"]=true} os.exit() --`}), Remove: []string{"cookie"}},
		{Hosts: HostsOf("prod\"", []string{"web"}), Remove: []string{"cookie"}},
		{Hosts: HostsOf("", []string{"web"}), ClusterDomain: "cluster.local\"", Remove: []string{"cookie"}},
		{Hosts: HostsOf("", []string{"web"})},
		{Remove: []string{"cookie"}},
	} {
		if src, err := s.Lua(); err == nil {
			t.Errorf("%+v rendered:\n%s", s, src)
		}
	}
}

// A wildcard host covers every name its copies may carry.
func TestSanitizerWildcards(t *testing.T) {
	for _, tt := range []struct {
		name, host, authority string
		copied                bool
	}{
		{"a namespace's Services, by the full name", "*.prod.svc.cluster.local", "web.prod.svc.cluster.local", true},
		{"a namespace's Services, by the qualified name", "*.prod.svc.cluster.local", "web.prod", true},
		{"a namespace's Services, by the short name from it", "*.prod.svc.cluster.local", "web", true},
		{"the short form of the wildcard", "*.prod.svc", "web.prod.svc", true},
		{"another namespace's Services stay", "*.prod.svc.cluster.local", "web.pr-42.svc.cluster.local", false},
		{"another namespace's wildcard, by the short name its clients use", "*.shop.svc.cluster.local", "web", true},
		{"a wildcard over every Service", "*.svc.cluster.local", "web.pr-42", true},
		{"a wildcard over the cluster domain", "*.cluster.local", "web", true},
		{"a domain's subdomains", "*.example.com", "eu.example.com", true},
		{"every host", "*", "web.pr-42.svc.cluster.local", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			src, err := Sanitizer{Hosts: HostsOf("prod", []string{tt.host}), Remove: []string{"cookie"}}.Lua()
			if err != nil {
				t.Fatal(err)
			}
			got, _ := runFilter(t, src, map[string]string{":authority": tt.authority, "cookie": "session=1"})
			if _, kept := got["cookie"]; kept == tt.copied {
				t.Errorf("%s under %s: cookie kept %v", tt.authority, tt.host, kept)
			}
		})
	}
}
