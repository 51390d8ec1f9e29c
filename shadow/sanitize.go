package shadow

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Copies of production requests lose their credentials on the preview's
// side: Istio's mirror policy has no header fields, and a route's
// headers.request.remove would strip production's requests too (Envoy
// applies it before it clones the copy). So the preview's sidecar runs a
// Lua HTTP filter, inserted before the router on its inbound listener by an
// EnvoyFilter, that removes the headers from every request that is a copy.
//
// A copy is known by its host, whatever the Istio version: it keeps the
// production request's :authority (the preview's own clients use the
// preview's), with "-shadow" appended to the host by Envoy unless istiod
// turns that off (the default from Istio 1.28, DISABLE_SHADOW_HOST_SUFFIX).
// The filter strips a request whose host, without its port and any -shadow
// suffix, is one of production's, or that carries the suffix at all. A
// client-sent MirroredHeader is always removed, and set on copies; a
// script error answers 503 rather than letting a request through unstripped.

// MirroredHeader marks, on the preview's side, a request that is a copy.
const MirroredHeader = "x-tugboat-mirrored"

// Host is a host a production VirtualService names, with the namespace the
// VirtualService is in (Istio takes a short name in that namespace), or an
// IP address: the cluster IP of a Service it names.
type Host struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
}

// HostsOf are the hosts of a VirtualService in namespace.
func HostsOf(namespace string, names []string) []Host {
	out := make([]Host, len(names))
	for i, n := range names {
		out[i] = Host{Name: n, Namespace: namespace}
	}
	return out
}

// Sanitizer is what the preview-side filter needs.
type Sanitizer struct {
	// Hosts are production's hosts, as its VirtualServices name them.
	// "*.example.com" covers its subdomains; "*.prod.svc.cluster.local"
	// every name of a Service in prod (the short ones too, from prod); "*"
	// every request, so that all the preview receives is stripped.
	Hosts []Host
	// ClusterDomain is the cluster's DNS domain; cluster.local when empty.
	ClusterDomain string
	// Remove are the headers to strip (Decision.RemoveHeaders).
	Remove []string
}

var (
	token   = regexp.MustCompile(`^[!#$%&'*+.^_` + "`" + `|~0-9a-z-]+$`) // RFC 9110 token, lower case
	dnsName = regexp.MustCompile(`^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$`)
)

// Lua is the filter's source. Header and host names are checked before
// they are written into it, so that no value can change the script.
func (s Sanitizer) Lua() (string, error) {
	if len(s.Remove) == 0 {
		return "", fmt.Errorf("no headers to remove")
	}
	for _, h := range s.Remove {
		if !token.MatchString(h) {
			return "", fmt.Errorf("header %q: not a lower-case HTTP header name", h)
		}
	}
	m, err := s.hosts()
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString("-- Tugboat: copies of production requests lose these headers.\n")
	fmt.Fprintf(&b, "local REMOVE = {%s}\n", luaList(s.Remove))
	fmt.Fprintf(&b, "local ALL = %t\n", m.all)
	fmt.Fprintf(&b, "local SHORT = %t\n", m.short)
	fmt.Fprintf(&b, "local HOSTS = {%s}\n", luaSet(m.exact))
	fmt.Fprintf(&b, "local SUFFIXES = {%s}\n", luaList(m.suffixes))
	fmt.Fprintf(&b, "local MARK = %s\n", strconv.Quote(MirroredHeader))
	b.WriteString(`local function is_copy(authority)
  if authority == nil then return false end
  local host = string.lower(authority)
  host = string.gsub(host, ":%d+$", "")
  local shadow = false
  if string.sub(host, -7) == "-shadow" then
    host, shadow = string.sub(host, 1, -8), true
  end
  if ALL or shadow or HOSTS[host] then return true end
  if SHORT and not string.find(host, ".", 1, true) then return true end
  for _, suffix in ipairs(SUFFIXES) do
    if #host > #suffix and string.sub(host, -#suffix) == suffix then return true end
  end
  return false
end
function envoy_on_request(handle)
  local ok = pcall(function()
    local headers = handle:headers()
    headers:remove(MARK)
    if is_copy(headers:get(":authority")) then
      for _, name in ipairs(REMOVE) do headers:remove(name) end
      headers:replace(MARK, "true")
    end
  end)
  if not ok then
    handle:respond({[":status"] = "503"}, "tugboat: the mirror sanitizer failed")
  end
end
`)
	return b.String(), nil
}

// matcher is how the filter knows production's hosts: exact names,
// suffixes of wildcard ones, any short name (a wildcard over the Services of
// a namespace, seen from it), or all.
type matcher struct {
	exact, suffixes []string
	short, all      bool
}

// hosts is the matcher for the hosts production answers to.
func (s Sanitizer) hosts() (m matcher, _ error) {
	domain := s.ClusterDomain
	if domain == "" {
		domain = "cluster.local"
	}
	if len(s.Hosts) == 0 {
		return m, fmt.Errorf("no production hosts")
	}
	if !dnsName.MatchString(domain) {
		return m, fmt.Errorf("cluster domain %q: not a DNS name", domain)
	}
	for _, host := range s.Hosts {
		h, ns := strings.ToLower(host.Name), host.Namespace
		if ip, err := netip.ParseAddr(h); err == nil && ip.Zone() == "" {
			// A Service's cluster IP: a client that calls by it keeps it as
			// the copy's host.
			if ip.Is6() {
				h = "[" + ip.String() + "]"
			}
			m.exact = append(m.exact, h)
			continue
		}
		switch {
		case ns != "" && !dnsName.MatchString(ns):
			return m, fmt.Errorf("host %q: namespace %q is not a DNS name", h, ns)
		case h == "*":
			m.all = true
		case !dnsName.MatchString(h):
			return m, fmt.Errorf("host %q: not a DNS name", h)
		case strings.HasPrefix(h, "*."):
			suffixes, short, all := wildcardNames(h[2:], ns, domain)
			m.suffixes = append(m.suffixes, suffixes...)
			m.short = m.short || short
			m.all = m.all || all
		default:
			m.exact = append(m.exact, serviceNames(h, ns, domain)...)
		}
	}
	slices.Sort(m.exact)
	slices.Sort(m.suffixes)
	m.exact, m.suffixes = slices.Compact(m.exact), slices.Compact(m.suffixes)
	return m, nil
}

// wildcardNames are the suffixes that "*."+d covers, and whether it covers
// short names too, or every name: over a namespace's Services
// (prod.svc.cluster.local, prod.svc), every name a client reaches one of
// them by, short ones included (any client in the namespace may use them);
// over every Service (svc.cluster.local, cluster.local, svc), every host.
// Any other domain is its subdomains.
func wildcardNames(d, namespace, domain string) (suffixes []string, short, all bool) {
	if d == domain || d == "svc."+domain || d == "svc" {
		return nil, false, true
	}
	ns, ok := strings.CutSuffix(strings.TrimSuffix(d, "."+domain), ".svc")
	if !ok || strings.Contains(ns, ".") {
		return []string{"." + d}, false, false
	}
	return []string{"." + ns, "." + ns + ".svc", "." + ns + ".svc." + domain}, true, false
}

// serviceNames are the names clients reach a Kubernetes Service by, whichever
// of them the VirtualService names it by (web, web.prod, web.prod.svc or
// web.prod.svc.cluster.local): a copy keeps the name its client used, and
// a client in the Service's namespace may use the short one, wherever the
// VirtualService is. A host that is not a Service's name (shop.example.com)
// is itself alone.
func serviceNames(h, namespace, domain string) []string {
	svc, ns, ok := ServiceOf(h, namespace, domain)
	if !ok {
		return []string{h}
	}
	return []string{svc, svc + "." + ns, svc + "." + ns + ".svc", svc + "." + ns + ".svc." + domain}
}

// ServiceOf is the Kubernetes Service a VirtualService in namespace names by
// host h, if h is a Service's name (web, web.prod, web.prod.svc or
// web.prod.svc.cluster.local, with domain the cluster's DNS domain).
func ServiceOf(h, namespace, domain string) (svc, ns string, ok bool) {
	if domain == "" {
		domain = "cluster.local"
	}
	h = strings.ToLower(h)
	switch parts := strings.Split(strings.TrimSuffix(strings.TrimSuffix(h, "."+domain), ".svc"), "."); {
	case len(parts) == 1 && namespace != "" && !strings.Contains(h, ".") && h != "*":
		return h, namespace, true
	case len(parts) == 2 && (len(strings.Split(h, ".")) == 2 || strings.HasSuffix(h, ".svc") || strings.HasSuffix(h, ".svc."+domain)):
		return parts[0], parts[1], true
	}
	return "", "", false
}

func luaList(vs []string) string {
	q := make([]string, len(vs))
	for i, v := range vs {
		q[i] = strconv.Quote(v)
	}
	return strings.Join(q, ", ")
}

func luaSet(vs []string) string {
	q := make([]string, len(vs))
	for i, v := range vs {
		q[i] = "[" + strconv.Quote(v) + "] = true"
	}
	return strings.Join(q, ", ")
}
