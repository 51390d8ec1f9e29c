package prometheus

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	promconfig "github.com/prometheus/common/config"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/sandbox/promserver"
)

// TestTLSAgainstPrometheus queries real Prometheus servers that serve HTTPS,
// one of them requiring client certificates, with CAs and certificates made
// for the test.
func TestTLSAgainstPrometheus(t *testing.T) {
	dir := t.TempDir()
	ca, other := promserver.NewCA(t, "tugboat test CA"), promserver.NewCA(t, "someone else's CA")
	serverCert, serverKey := ca.Issue(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "prometheus.test"},
		DNSNames:    []string{"prometheus.test"}, // not 127.0.0.1: the server name must be given
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	clientCert, clientKey := ca.Issue(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "tugboat"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	files := map[string][]byte{"ca.crt": ca.PEM, "server.crt": serverCert, "server.key": serverKey, "client.crt": clientCert, "client.key": clientKey}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	path := func(name string) string { return filepath.Join(dir, name) }
	pair, err := tls.X509KeyPair(clientCert, clientKey)
	if err != nil {
		t.Fatal(err)
	}
	trust := &tls.Config{RootCAs: ca.Pool(), ServerName: "prometheus.test"}
	withCert := trust.Clone()
	withCert.Certificates = []tls.Certificate{pair}
	plain := promserver.Start(t, promserver.Options{HTTPS: &promserver.HTTPS{
		CertFile: path("server.crt"), KeyFile: path("server.key"), Client: trust,
	}})
	mutual := promserver.Start(t, promserver.Options{HTTPS: &promserver.HTTPS{
		CertFile: path("server.crt"), KeyFile: path("server.key"), ClientCAFile: path("ca.crt"), Client: withCert,
	}})

	secrets := map[string]map[string][]byte{
		"prom-ca":     {"ca.crt": ca.PEM},
		"other-ca":    {"ca.crt": other.PEM},
		"prom-client": {"ca.crt": ca.PEM, "tls.crt": clientCert, "tls.key": clientKey},
		"half":        {"ca.crt": ca.PEM, "tls.crt": clientCert},
		"empty":       {"unrelated": []byte("x")},
		"garbage":     {"ca.crt": []byte("not a certificate")},
	}
	credentials := func(_ context.Context, ns, name string) (map[string][]byte, error) {
		if data, ok := secrets[name]; ok && ns == "prod" {
			return data, nil
		}
		return nil, fmt.Errorf("secret %s/%s not found", ns, name)
	}
	tlsFrom := func(secret, serverName string) *v1alpha1.PrometheusTLS {
		return &v1alpha1.PrometheusTLS{SecretName: secret, ServerName: serverName}
	}
	for _, tt := range []struct {
		name       string
		address    string // the metric's
		defaultTo  string // the controller's
		defaultTLS promconfig.TLSConfig
		insecure   bool
		tls        *v1alpha1.PrometheusTLS
		wantErr    string
	}{{
		name:    "a CA from a Secret serves any address",
		address: plain.URL,
		tls:     tlsFrom("prom-ca", "prometheus.test"),
	}, {
		name:    "an unknown CA",
		address: plain.URL,
		tls:     tlsFrom("other-ca", "prometheus.test"),
		wantErr: "x509: certificate signed by unknown authority",
	}, {
		name:    "without serverName the address's host must be in the certificate",
		address: plain.URL,
		tls:     tlsFrom("prom-ca", ""),
		wantErr: "x509: cannot validate certificate for 127.0.0.1 because it doesn't contain any IP SANs",
	}, {
		name:    "serverName alone: the system's roots know no private CA",
		address: plain.URL,
		tls:     tlsFrom("", "prometheus.test"),
		wantErr: "x509: certificate signed by unknown authority",
	}, {
		name:     "insecure skips verification, as in Argo Rollouts",
		address:  plain.URL,
		insecure: true,
	}, {
		name:       "the controller's CA file and server name for its default address",
		defaultTo:  plain.URL,
		defaultTLS: promconfig.TLSConfig{CAFile: path("ca.crt"), ServerName: "prometheus.test"},
	}, {
		name:       "the controller's TLS is for its default address only",
		address:    plain.URL,
		defaultTo:  mutual.URL,
		defaultTLS: promconfig.TLSConfig{CAFile: path("ca.crt"), ServerName: "prometheus.test"},
		wantErr:    "tls: failed to verify certificate",
	}, {
		name:       "a template cannot turn off the controller's TLS for its Prometheus",
		defaultTo:  plain.URL,
		defaultTLS: promconfig.TLSConfig{CAFile: path("ca.crt"), ServerName: "prometheus.test"},
		insecure:   true,
		wantErr:    "a template cannot set insecure for the controller's Prometheus",
	}, {
		name:       "nor replace it",
		defaultTo:  mutual.URL,
		defaultTLS: promconfig.TLSConfig{CAFile: path("ca.crt"), CertFile: path("client.crt"), KeyFile: path("client.key"), ServerName: "prometheus.test"},
		tls:        tlsFrom("prom-ca", "prometheus.test"),
		wantErr:    "nor tls when the controller sets it",
	}, {
		name:      "nor turn off the system's verification of it",
		defaultTo: plain.URL,
		insecure:  true,
		wantErr:   "a template cannot set insecure for the controller's Prometheus",
	}, {
		name:      "a client certificate from a Secret",
		defaultTo: mutual.URL,
		tls:       tlsFrom("prom-client", "prometheus.test"),
	}, {
		name:      "no client certificate where one is required",
		defaultTo: mutual.URL,
		tls:       tlsFrom("prom-ca", "prometheus.test"),
		wantErr:   "tls: certificate required",
	}, {
		name:       "the controller's client certificate files",
		defaultTo:  mutual.URL,
		defaultTLS: promconfig.TLSConfig{CAFile: path("ca.crt"), CertFile: path("client.crt"), KeyFile: path("client.key"), ServerName: "prometheus.test"},
	}, {
		name:    "a client certificate goes only to the controller's Prometheus",
		address: mutual.URL,
		tls:     tlsFrom("prom-client", "prometheus.test"),
		wantErr: "client certificates from Secrets are sent only to the controller's Prometheus or its allowed addresses, not to " + mutual.URL,
	}, {
		name:      "a Secret with a certificate and no key",
		defaultTo: mutual.URL,
		tls:       tlsFrom("half", "prometheus.test"),
		wantErr:   "tls secret prod/half holds one of tls.crt and tls.key without the other",
	}, {
		name:      "a Secret with nothing to use",
		defaultTo: mutual.URL,
		tls:       tlsFrom("empty", ""),
		wantErr:   "tls secret prod/empty holds neither ca.crt nor tls.crt and tls.key",
	}, {
		name:    "a CA that is not PEM",
		address: plain.URL,
		tls:     tlsFrom("garbage", ""),
		wantErr: "tls secret prod/garbage: tls: unable to use specified CA cert",
	}, {
		name:    "a missing Secret",
		address: plain.URL,
		tls:     tlsFrom("missing", ""),
		wantErr: "tls secret prod/missing: secret prod/missing not found",
	}, {
		name:    "tls on a plain HTTP address",
		address: "http://127.0.0.1:9",
		tls:     tlsFrom("prom-ca", ""),
		wantErr: "tls is set, but http://127.0.0.1:9 is not an https:// address",
	}} {
		t.Run(tt.name, func(t *testing.T) {
			p := &Provider{DefaultAddress: tt.defaultTo, DefaultTLS: tt.defaultTLS, Guard: Guard{AllowLoopback: true}, Credentials: credentials}
			m := &v1alpha1.PrometheusMetric{Address: tt.address, Insecure: tt.insecure, TLS: tt.tls}
			s := p.Measure(t.Context(), "prod", m, "vector(1)", time.Now())
			if tt.wantErr == "" {
				if s.Err != nil || !sameValues(s.Values, []float64{1}) {
					t.Fatalf("got %v, %v; want [1]", s.Values, s.Err)
				}
				return
			}
			if s.Err == nil || !strings.Contains(s.Err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want one containing %q", s.Err, tt.wantErr)
			}
			for _, secret := range []string{"BEGIN", "PRIVATE KEY", "not a certificate"} {
				if strings.Contains(s.Err.Error(), secret) {
					t.Errorf("error shows Secret material (%q): %v", secret, s.Err)
				}
			}
		})
	}

	t.Run("the controller's files are re-read when they change", func(t *testing.T) {
		rotating := filepath.Join(dir, "rotating-ca.crt")
		if err := os.WriteFile(rotating, other.PEM, 0o600); err != nil {
			t.Fatal(err)
		}
		p := &Provider{DefaultAddress: plain.URL, DefaultTLS: promconfig.TLSConfig{CAFile: rotating, ServerName: "prometheus.test"}, Guard: Guard{AllowLoopback: true}}
		ts := time.Now()
		if s := p.Measure(t.Context(), "prod", &v1alpha1.PrometheusMetric{}, "vector(1)", ts); s.Err == nil || !strings.Contains(s.Err.Error(), "unknown authority") {
			t.Fatalf("with the wrong CA: %v", s.Err)
		}
		if err := os.WriteFile(rotating, ca.PEM, 0o600); err != nil {
			t.Fatal(err)
		}
		if s := p.Measure(t.Context(), "prod", &v1alpha1.PrometheusMetric{}, "vector(1)", ts.Add(time.Minute)); s.Err != nil {
			t.Fatalf("after the CA file changed: %v", s.Err)
		}
	})
}

// TestTransportsAreSharedAndBounded: one transport per TLS setting, reused
// by every query with that setting, and no more than maxTransports kept.
func TestTransportsAreSharedAndBounded(t *testing.T) {
	p := &Provider{}
	a, keyA, err := p.transport(promconfig.TLSConfig{ServerName: "a"})
	if err != nil {
		t.Fatal(err)
	}
	again, keyAgain, _ := p.transport(promconfig.TLSConfig{ServerName: "a"})
	if a != again || keyA != keyAgain {
		t.Error("the same TLS setting got a new transport")
	}
	insecure, keyInsecure, _ := p.transport(promconfig.TLSConfig{ServerName: "a", InsecureSkipVerify: true})
	if insecure == a || keyInsecure == keyA {
		t.Error("another TLS setting shares a transport")
	}
	for i := range 2 * maxTransports {
		if _, _, err := p.transport(promconfig.TLSConfig{ServerName: fmt.Sprintf("s%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if n := p.transports.Len(); n != maxTransports {
		t.Errorf("%d transports kept, want at most %d", n, maxTransports)
	}
	if strings.Contains(tlsKey(promconfig.TLSConfig{Key: "s3cret"}), "s3cret") {
		t.Error("a transport's key shows the material")
	}
}
