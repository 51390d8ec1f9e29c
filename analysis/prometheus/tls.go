package prometheus

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"

	promconfig "github.com/prometheus/common/config"
	"k8s.io/utils/lru"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

// The keys of a kubernetes.io/tls Secret, as cert-manager writes them.
const (
	secretCA   = "ca.crt"
	secretCert = "tls.crt"
	secretKey  = "tls.key"
)

// tlsFor is the TLS a metric's query to address is made with: the metric's
// own tls, else the controller's for its default address, else the system's
// roots; insecure turns verification off, never for the default address. A client certificate from a Secret
// is a credential and goes where bearer tokens may go; a CA alone may serve
// any address the guard lets through.
func (p *Provider) tlsFor(ctx context.Context, namespace, address string, m *v1alpha1.PrometheusMetric) (promconfig.TLSConfig, error) {
	if address == p.DefaultAddress && (m.Insecure || (m.TLS != nil && p.DefaultTLS != (promconfig.TLSConfig{}))) {
		// Verification of the controller's own Prometheus protects what goes
		// there: Secret arguments and credentials, the controller's client
		// certificate. A template does not get to turn it off, nor to replace
		// the TLS the controller sets.
		return promconfig.TLSConfig{}, errors.New("a template cannot set insecure for the controller's Prometheus, nor tls when the controller sets it (--prometheus-ca-file and others)")
	}
	switch {
	case m.TLS != nil:
		if !strings.HasPrefix(address, "https://") {
			return promconfig.TLSConfig{}, fmt.Errorf("tls is set, but %s is not an https:// address", address)
		}
		c := promconfig.TLSConfig{ServerName: m.TLS.ServerName}
		if m.TLS.SecretName == "" {
			return c, nil
		}
		if p.Credentials == nil {
			return promconfig.TLSConfig{}, errors.New("tls.secretName needs Secret access, which this controller was not given")
		}
		name := namespace + "/" + m.TLS.SecretName
		data, err := p.Credentials(ctx, namespace, m.TLS.SecretName)
		if err != nil {
			return promconfig.TLSConfig{}, fmt.Errorf("tls secret %s: %w", name, err)
		}
		ca, cert, key := data[secretCA], data[secretCert], data[secretKey]
		switch {
		case (len(cert) > 0) != (len(key) > 0):
			return promconfig.TLSConfig{}, fmt.Errorf("tls secret %s holds one of %s and %s without the other", name, secretCert, secretKey)
		case len(ca) == 0 && len(cert) == 0:
			return promconfig.TLSConfig{}, fmt.Errorf("tls secret %s holds neither %s nor %s and %s", name, secretCA, secretCert, secretKey)
		case len(cert) > 0 && !p.credentialsGoTo(address):
			return promconfig.TLSConfig{}, fmt.Errorf("client certificates from Secrets are sent only to the controller's Prometheus or its allowed addresses, not to %s", address)
		}
		c.CA, c.Cert, c.Key = string(ca), string(cert), promconfig.Secret(key)
		return c, nil
	case address == p.DefaultAddress:
		return p.DefaultTLS, nil
	}
	return promconfig.TLSConfig{InsecureSkipVerify: m.Insecure}, nil
}

// CheckDefaultTLS reports what is wrong with the TLS flags given for the
// default address: a client certificate needs its key, and TLS needs https.
func CheckDefaultTLS(address string, c promconfig.TLSConfig) error {
	switch {
	case (c.CertFile == "") != (c.KeyFile == ""):
		return errors.New("prometheus-cert-file and prometheus-key-file go together")
	case c != (promconfig.TLSConfig{}) && !strings.HasPrefix(address, "https://"):
		return fmt.Errorf("the prometheus TLS flags need an https:// address, got %q", address)
	}
	return nil
}

// maxTransports bounds the transports kept, one per distinct TLS setting;
// the least recently used is closed first.
const maxTransports = 64

// transport returns the shared transport for c, so that connections are
// reused, building it the first time, and the key it is kept under.
func (p *Provider) transport(c promconfig.TLSConfig) (http.RoundTripper, string, error) {
	key := tlsKey(c)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.transports == nil {
		p.transports = lru.NewWithEvictionFunc(maxTransports, func(_ lru.Key, v any) {
			if t, ok := v.(interface{ CloseIdleConnections() }); ok {
				t.CloseIdleConnections()
			}
		})
	}
	if t, ok := p.transports.Get(key); ok {
		return t.(http.RoundTripper), key, nil
	}
	g := p.Guard
	g.ResponseHeaderTimeout = p.maxQueryTime()
	t, err := tlsTransport(g, c)
	if err != nil {
		return nil, "", err
	}
	p.transports.Add(key, t)
	return t, key, nil
}

// tlsTransport dials through the guard with the TLS that c describes. Files
// (the controller's) are re-read when they change, as Prometheus does for its
// scrape targets, so that rotated certificates are picked up.
func tlsTransport(g Guard, c promconfig.TLSConfig) (http.RoundTripper, error) {
	cfg, err := promconfig.NewTLSConfig(&c)
	if err != nil {
		// The library's messages name files, never the material.
		return nil, fmt.Errorf("tls: %w", err)
	}
	newRT := func(cfg *tls.Config) (http.RoundTripper, error) { return g.Transport(cfg), nil }
	var files promconfig.TLSRoundTripperSettings
	if c.CAFile != "" {
		files.CA = promconfig.NewFileSecret(c.CAFile)
	}
	if c.CertFile != "" {
		files.Cert = promconfig.NewFileSecret(c.CertFile)
	}
	if c.KeyFile != "" {
		files.Key = promconfig.NewFileSecret(c.KeyFile)
	}
	if files == (promconfig.TLSRoundTripperSettings{}) {
		return newRT(cfg)
	}
	rt, err := promconfig.NewTLSRoundTripper(cfg, files, newRT)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	return rt, nil
}

// tlsKey identifies a TLS setting by a hash, so that Secret material never
// serves as a key or shows up anywhere.
func tlsKey(c promconfig.TLSConfig) string {
	h := sha256.New()
	for _, s := range []string{c.CA, c.Cert, string(c.Key), c.CAFile, c.CertFile, c.KeyFile, c.ServerName, fmt.Sprint(c.InsecureSkipVerify)} {
		fmt.Fprintf(h, "%d:%s;", len(s), s)
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}
