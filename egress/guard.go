// Package egress guards the controller's outbound HTTP to addresses users
// choose (a template's Prometheus, a web metric's URL): an allow-list that
// is empty by default, checked on the address named and again on the IP
// dialled, no redirects, and bounded answers.
package egress

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Guard decides which addresses a template may make the controller dial.
//
// Two checks apply. The address a template names must be on the allow-list
// (AllowedHosts; a caller may let addresses of its own through, such as the
// controller's own --prometheus-address),
// which is empty by default: a template may not name an address of its own
// at all unless the controller's operator allowed it. That keeps queries, a
// template's headers and insecure away from whatever else the cluster
// serves (the API server's ClusterIP among them), and keeps connection
// errors, which would map the cluster, out of status. Then the IP actually
// dialled, for every address, is checked after DNS (so rebinding does not
// slip past): link-local addresses (cloud metadata services among them) and
// unspecified or multicast ones are always refused, loopback unless
// allowed. Redirects are not followed.
type Guard struct {
	// AllowLoopback lets templates reach servers on the controller's own
	// host, as in the sandbox: loopback IPs may be dialled, and addresses
	// that name them (127.0.0.1, [::1], localhost) are allowed as if listed.
	// Never in a cluster.
	AllowLoopback bool
	// LoopbackFlag names the setting that allows loopback, for messages.
	LoopbackFlag string
	// AllowedHosts are the addresses templates may name, as patterns: a
	// host (any port), host:port, *.domain (any name ending in .domain, on
	// any port) or *.domain:port, a CIDR (addresses written as an IP inside
	// it; names are matched by name only) and * (any address). Empty allows
	// none. See CheckAllowedHosts.
	AllowedHosts []string
	// ResponseHeaderTimeout is how long a server may take to begin its
	// answer; none when zero.
	ResponseHeaderTimeout time.Duration
	// MaxResponse bounds what a server can make the controller read
	// (DefaultMaxResponse when zero).
	MaxResponse int64
}

// DefaultMaxResponse is the largest answer read unless the guard says.
const DefaultMaxResponse = 16 << 20

// Refused is a query the controller's policy does not let go out. Its
// message names neither the address nor what it resolves to, so that status
// does not map what a template may not reach.
type Refused struct{ Reason string }

func (e *Refused) Error() string { return "refused by policy: " + e.Reason }

// RefusedByPolicy marks the error for callers that keep other errors' text
// out of status: this one quotes nothing of the query or the address.
func (e *Refused) RefusedByPolicy() {}

func (g Guard) errNotDialled() *Refused {
	return &Refused{Reason: "the address resolves to one the controller never dials (link-local, cloud metadata, unspecified, multicast, and loopback unless " + cmp.Or(g.LoopbackFlag, "allowed") + ")"}
}

func (g Guard) check(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return g.errNotDialled()
	}
	ip := net.ParseIP(host)
	switch {
	case ip == nil,
		ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsInterfaceLocalMulticast(),
		ip.IsUnspecified() || ip.IsMulticast(),
		ip.IsLoopback() && !g.AllowLoopback,
		metadata[ip.String()]:
		return g.errNotDialled()
	}
	return nil
}

// metadata are cloud metadata services outside the link-local range.
var metadata = map[string]bool{
	"fd00:ec2::254":   true, // AWS, IPv6
	"100.100.100.200": true, // Alibaba Cloud
}

// Allows reports whether a template may name u (an http or https URL).
func (g Guard) Allows(u *url.URL) bool {
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	ip := net.ParseIP(host)
	if g.AllowLoopback && (host == "localhost" || ip != nil && ip.IsLoopback()) {
		return true
	}
	for _, s := range g.AllowedHosts {
		p, err := parseHostPattern(s)
		if err == nil && p.matches(host, ip, port) {
			return true
		}
	}
	return false
}

// hostPattern is one entry of the allow-list.
type hostPattern struct {
	any    bool
	cidr   *net.IPNet
	host   string // lower case, without a trailing dot; the domain of a *. pattern
	suffix bool   // *.host
	port   string // empty: any
}

// CheckAllowedHosts reports the entries of an allow-list (the setting flag
// names) that are not patterns Guard.AllowedHosts understands.
func CheckAllowedHosts(flag string, patterns []string) error {
	var errs []error
	for _, s := range patterns {
		if _, err := parseHostPattern(s); err != nil {
			errs = append(errs, fmt.Errorf("%s entry %q: %w", flag, s, err))
		}
	}
	return errors.Join(errs...)
}

func parseHostPattern(s string) (hostPattern, error) {
	bad := func(why string) (hostPattern, error) {
		return hostPattern{}, errors.New(why)
	}
	switch {
	case s == "*":
		return hostPattern{any: true}, nil
	case strings.Contains(s, "://"):
		return bad("want a host, host:port, *.domain or a CIDR, not a URL")
	case strings.Contains(s, "/"):
		_, n, err := net.ParseCIDR(s)
		if err != nil {
			return bad("not a CIDR")
		}
		return hostPattern{cidr: n}, nil
	}
	host, port := s, ""
	if h, p, err := net.SplitHostPort(s); err == nil {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return bad("the port must be a number from 1 to 65535")
		}
		host, port = h, p
	} else if strings.HasPrefix(s, "[") {
		return bad("an IPv6 address in brackets needs a port; without one, leave out the brackets")
	}
	p := hostPattern{port: port}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if rest, ok := strings.CutPrefix(host, "*."); ok {
		p.suffix, host = true, rest
	}
	if ip := net.ParseIP(host); ip != nil && !p.suffix {
		p.host = ip.String()
		return p, nil
	}
	if host == "" || strings.ContainsAny(host, "*[]:/@?# ") {
		return bad("want a host, host:port, *.domain or a CIDR")
	}
	p.host = host
	return p, nil
}

// matches reports whether host (lower case, ip when it is one) and port fit.
func (p hostPattern) matches(host string, ip net.IP, port string) bool {
	switch {
	case p.any:
		return true
	case p.cidr != nil:
		return ip != nil && p.cidr.Contains(ip)
	case p.port != "" && p.port != port:
		return false
	case p.suffix:
		return ip == nil && strings.HasSuffix(host, "."+p.host)
	case ip != nil:
		want := net.ParseIP(p.host)
		return want != nil && want.Equal(ip)
	}
	return host == p.host
}

// Transport dials only what the guard allows, with TLS from cfg, follows no
// redirect and fails an answer larger than MaxResponse.
func (g Guard) Transport(cfg *tls.Config) http.RoundTripper {
	dialer := &net.Dialer{Timeout: 10 * time.Second, Control: g.check}
	limit := g.MaxResponse
	if limit <= 0 {
		limit = DefaultMaxResponse
	}
	return &noRedirects{limit: limit, next: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, addr)
		},
		TLSClientConfig:     cfg,
		TLSHandshakeTimeout: 10 * time.Second,
		// A server that takes the query and never begins to answer lets go
		// of the connection after this, whatever the caller's deadline.
		ResponseHeaderTimeout: g.ResponseHeaderTimeout,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
	}}
}

// noRedirects refuses redirects: a redirect would take the query, and its
// credentials, to an address the guard never saw.
type noRedirects struct {
	next  http.RoundTripper
	limit int64
}

func (t *noRedirects) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		resp.Body.Close()
		return nil, fmt.Errorf("refusing to follow a redirect from %s (status %s)", r.URL.Host, resp.Status)
	}
	resp.Body = &limitedBody{r: io.LimitReader(resp.Body, t.limit+1), c: resp.Body, limit: t.limit}
	return resp, nil
}

// CloseIdleConnections lets a replaced or evicted transport let go of its
// connections at once.
func (t *noRedirects) CloseIdleConnections() {
	if c, ok := t.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// limitedBody fails a response larger than its limit rather than reading it all.
type limitedBody struct {
	r        io.Reader
	c        io.Closer
	n, limit int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.n += int64(n)
	if b.n > b.limit {
		return n, fmt.Errorf("response larger than %d bytes", b.limit)
	}
	return n, err
}

func (b *limitedBody) Close() error { return b.c.Close() }
