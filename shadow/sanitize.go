package shadow

import (
	"fmt"
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

// Sanitizer is what the preview-side filter needs.
type Sanitizer struct {
	// Hosts are production's hosts, as its VirtualService names them
	// (short names are taken in Namespace, as Istio does); "*.example.com"
	// covers its subdomains.
	Hosts     []string
	Namespace string
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
	exact, suffixes, err := s.hosts()
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString("-- Tugboat: copies of production requests lose these headers.\n")
	fmt.Fprintf(&b, "local REMOVE = {%s}\n", luaList(s.Remove))
	fmt.Fprintf(&b, "local HOSTS = {%s}\n", luaSet(exact))
	fmt.Fprintf(&b, "local SUFFIXES = {%s}\n", luaList(suffixes))
	fmt.Fprintf(&b, "local MARK = %s\n", strconv.Quote(MirroredHeader))
	b.WriteString(`local function is_copy(authority)
  if authority == nil then return false end
  local host = string.lower(authority)
  host = string.gsub(host, ":%d+$", "")
  local shadow = false
  if string.sub(host, -7) == "-shadow" then
    host, shadow = string.sub(host, 1, -8), true
  end
  if shadow or HOSTS[host] then return true end
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

// hosts are the exact hosts production answers to, and the suffixes of its
// wildcard ones.
func (s Sanitizer) hosts() (exact, suffixes []string, _ error) {
	domain := s.ClusterDomain
	if domain == "" {
		domain = "cluster.local"
	}
	if len(s.Hosts) == 0 {
		return nil, nil, fmt.Errorf("no production hosts")
	}
	for _, h := range s.Hosts {
		h = strings.ToLower(h)
		switch {
		case !dnsName.MatchString(h) || !dnsName.MatchString(domain) || (s.Namespace != "" && !dnsName.MatchString(s.Namespace)):
			return nil, nil, fmt.Errorf("host %q: not a DNS name", h)
		case strings.HasPrefix(h, "*."):
			suffixes = append(suffixes, h[1:])
		default:
			exact = append(exact, serviceNames(h, s.Namespace, domain)...)
		}
	}
	slices.Sort(exact)
	slices.Sort(suffixes)
	return slices.Compact(exact), slices.Compact(suffixes), nil
}

// serviceNames are the names clients reach a Kubernetes Service by, whichever
// of them the VirtualService names it by (web, web.prod, web.prod.svc or
// web.prod.svc.cluster.local): a copy keeps the name its client used. The
// short name counts only in the VirtualService's namespace. A host that is
// not a Service's name (shop.example.com) is itself alone.
func serviceNames(h, namespace, domain string) []string {
	svc, ns := h, namespace
	switch parts := strings.Split(strings.TrimSuffix(strings.TrimSuffix(h, "."+domain), ".svc"), "."); {
	case len(parts) == 1 && namespace != "" && !strings.Contains(h, "."):
	case len(parts) == 2 && (len(strings.Split(h, ".")) == 2 || strings.HasSuffix(h, ".svc") || strings.HasSuffix(h, ".svc."+domain)):
		svc, ns = parts[0], parts[1]
	default:
		return []string{h}
	}
	names := []string{svc + "." + ns, svc + "." + ns + ".svc", svc + "." + ns + ".svc." + domain}
	if ns == namespace {
		names = append(names, svc)
	}
	return names
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
