package prometheus

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"time"
)

// Guard decides which addresses a template may make the controller dial.
// Addresses come from users' templates, so the check is made on the IP
// actually dialled (after DNS, so rebinding does not slip past it): link-local
// addresses (cloud metadata services among them) and unspecified or multicast
// ones are always refused, loopback unless allowed. Redirects are not followed.
type Guard struct {
	// AllowLoopback lets templates reach servers on the controller's own
	// host, as in the sandbox; never in a cluster.
	AllowLoopback bool
}

func (g Guard) check(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	ip := net.ParseIP(host)
	switch {
	case ip == nil:
		return fmt.Errorf("refusing to dial %s: not an IP address", address)
	case ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsInterfaceLocalMulticast():
		return fmt.Errorf("refusing to dial link-local address %s", address)
	case ip.IsUnspecified() || ip.IsMulticast():
		return fmt.Errorf("refusing to dial %s", address)
	case ip.IsLoopback() && !g.AllowLoopback:
		return fmt.Errorf("refusing to dial loopback address %s", address)
	case metadata[ip.String()]:
		return fmt.Errorf("refusing to dial cloud metadata address %s", address)
	}
	return nil
}

// metadata are cloud metadata services outside the link-local range.
var metadata = map[string]bool{
	"fd00:ec2::254":   true, // AWS, IPv6
	"100.100.100.200": true, // Alibaba Cloud
}

// maxResponse bounds what a server chosen by a template can make the
// controller read.
const maxResponse = 16 << 20

// transport dials only what the guard allows, with TLS from cfg.
func (g Guard) transport(cfg *tls.Config) http.RoundTripper {
	dialer := &net.Dialer{Timeout: 10 * time.Second, Control: g.check}
	return &noRedirects{next: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, addr)
		},
		TLSClientConfig:     cfg,
		TLSHandshakeTimeout: 10 * time.Second,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     90 * time.Second,
	}}
}

// noRedirects refuses redirects: a redirect would take the query, and its
// credentials, to an address the guard never saw.
type noRedirects struct{ next http.RoundTripper }

func (t *noRedirects) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		resp.Body.Close()
		return nil, fmt.Errorf("refusing to follow a redirect from %s (status %s)", r.URL.Host, resp.Status)
	}
	resp.Body = &limitedBody{r: io.LimitReader(resp.Body, maxResponse+1), c: resp.Body}
	return resp, nil
}

// CloseIdleConnections lets a replaced or evicted transport let go of its
// connections at once.
func (t *noRedirects) CloseIdleConnections() {
	if c, ok := t.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// limitedBody fails a response larger than maxResponse rather than reading it all.
type limitedBody struct {
	r io.Reader
	c io.Closer
	n int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.n += int64(n)
	if b.n > maxResponse {
		return n, fmt.Errorf("response larger than %d bytes", maxResponse)
	}
	return n, err
}

func (b *limitedBody) Close() error { return b.c.Close() }
