package prometheus

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	"k8s.io/utils/ptr"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

// TestTemplateAddressesAreRefusedUnlessAllowed: with nothing allowed, a
// template cannot make the controller send anything to an address of its
// choosing, the cluster's own services among them, and what status shows
// says it was refused, without the address or what it resolves to.
func TestTemplateAddressesAreRefusedUnlessAllowed(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		calls.Add(1)
		fmt.Fprint(w, `{"status":"success","data":{"resultType":"vector","result":[]}}`)
	}))
	defer srv.Close()
	p := &Provider{DefaultAddress: "http://prometheus.monitoring:9090"}
	for _, m := range []*v1alpha1.PrometheusMetric{
		{Address: "https://10.96.0.1:443", Insecure: true}, // the API server's ClusterIP
		{Address: "https://kubernetes.default.svc", Headers: []argo.WebMetricHeader{{Key: "Authorization", Value: "Bearer x"}}},
		{Address: "http://prometheus.other-tenant.svc.cluster.local:9090"},
		{Address: srv.URL}, // loopback: refused before it is dialled
	} {
		m.Timeout = ptr.To[int64](2)
		s := p.Measure(t.Context(), "prod", m, "up", time.Now())
		u, _ := url.Parse(m.Address)
		if s.Err == nil || !strings.Contains(s.Err.Error(), "refused by policy") || strings.Contains(s.Err.Error(), u.Hostname()) {
			t.Errorf("%s: want a refusal by policy that does not name the address, got %v", m.Address, s.Err)
		}
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("a refused address was sent %d queries", n)
	}
}

// TestAllowedTemplateAddresses reaches a server on this host's own
// (non-loopback) address, allowed by CIDR, and sees the dial-time check
// still refuse an allowed name that resolves to loopback.
func TestAllowedTemplateAddresses(t *testing.T) {
	ip := nonLoopbackIPv4(t)
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Skipf("listen on %s: %v", ip, err)
	}
	var mu sync.Mutex
	var got http.Header
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = r.Header.Clone()
		mu.Unlock()
		fmt.Fprint(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"1"]}]}}`)
	}))
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	defer srv.Close()
	m := &v1alpha1.PrometheusMetric{Address: srv.URL, Headers: []argo.WebMetricHeader{{Key: "X-Scope-OrgID", Value: "tenant-a"}}, Timeout: ptr.To[int64](2)}
	for _, tt := range []struct {
		allowed []string
		want    bool
	}{
		{nil, false},
		{[]string{ip + "/32"}, true},
		{[]string{"198.51.100.0/24"}, false},
		{[]string{ip}, true},
		{[]string{"*"}, true},
	} {
		p := &Provider{Guard: Guard{AllowedHosts: tt.allowed}}
		s := p.Measure(t.Context(), "prod", m, "up", time.Now())
		if ok := s.Err == nil; ok != tt.want {
			t.Errorf("allowed %v: %v, want it measured: %v", tt.allowed, s.Err, tt.want)
		}
	}
	mu.Lock()
	if got.Get("X-Scope-OrgID") != "tenant-a" {
		t.Errorf("a template's headers did not reach its own allowed address: %v", got)
	}
	mu.Unlock()

	_, port, _ := net.SplitHostPort(l.Addr().String())
	p := &Provider{Guard: Guard{AllowedHosts: []string{"localhost"}}}
	s := p.Measure(t.Context(), "prod", &v1alpha1.PrometheusMetric{Address: "http://localhost:" + port, Timeout: ptr.To[int64](2)}, "up", time.Now())
	var refused *Refused
	if !errors.As(s.Err, &refused) || strings.Contains(s.Err.Error(), "127.0.0.1") || strings.Contains(s.Err.Error(), "::1") || strings.Contains(s.Err.Error(), port) {
		t.Errorf("an allowed name that resolves to loopback: %v, want a refusal by policy without the resolution", s.Err)
	}
}

func nonLoopbackIPv4(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Skip(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() {
			return n.IP.String()
		}
	}
	t.Skip("this host has no non-loopback IPv4 address")
	return ""
}

// TestTemplateHeadersNeverGoToTheControllersPrometheus: the controller's
// Prometheus serves every namespace with the controller's credentials, so
// a template's headers (a tenant's X-Scope-OrgID) are refused there, and go
// only to an address the template names.
func TestTemplateHeadersNeverGoToTheControllersPrometheus(t *testing.T) {
	var calls atomic.Int32
	var mu sync.Mutex
	var got []http.Header
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		mu.Lock()
		got = append(got, r.Header.Clone())
		mu.Unlock()
		fmt.Fprint(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"1"]}]}}`)
	})
	own, other := httptest.NewServer(handler), httptest.NewServer(handler)
	defer own.Close()
	defer other.Close()
	p := &Provider{DefaultAddress: own.URL, Guard: Guard{AllowLoopback: true}}
	headers := []argo.WebMetricHeader{{Key: "X-Scope-OrgID", Value: "tenant-b"}}
	for _, address := range []string{"", own.URL} {
		s := p.Measure(t.Context(), "prod", &v1alpha1.PrometheusMetric{Address: address, Headers: headers}, "up", time.Now())
		if s.Err == nil || !strings.Contains(s.Err.Error(), "headers go only to an address the metric names") {
			t.Errorf("headers for the controller's Prometheus (address %q): %v, want them refused", address, s.Err)
		}
	}
	if n := calls.Load(); n != 0 {
		t.Fatalf("the controller's Prometheus got %d queries with a template's headers: %v", n, got)
	}
	if s := p.Measure(t.Context(), "prod", &v1alpha1.PrometheusMetric{Address: other.URL, Headers: headers}, "up", time.Now()); s.Err != nil {
		t.Fatalf("headers for the template's own address: %v", s.Err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0].Get("X-Scope-OrgID") != "tenant-b" {
		t.Errorf("headers sent to the template's own address: %v", got)
	}
}

// TestSecretQueryIsNeverSentByGET: the client library falls back to GET,
// which puts the query in the URL, when a server answers POST with 405; a
// query holding Secret values is not sent again that way.
func TestSecretQueryIsNeverSentByGET(t *testing.T) {
	var mu sync.Mutex
	var gets []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			http.Error(w, "use GET", http.StatusMethodNotAllowed)
			return
		}
		mu.Lock()
		gets = append(gets, r.URL.String())
		mu.Unlock()
		fmt.Fprint(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"1"]}]}}`)
	}))
	defer srv.Close()
	p := &Provider{DefaultAddress: srv.URL, Guard: Guard{AllowLoopback: true}}
	ts := time.Now()
	s := p.MeasureSecret(t.Context(), "prod", &v1alpha1.PrometheusMetric{}, `up{token="s3cret"}`, ts)
	var refused *Refused
	if !errors.As(s.Err, &refused) || !strings.Contains(s.Err.Error(), "never sent by GET") || strings.Contains(s.Err.Error(), "s3cret") {
		t.Errorf("a Secret query answered 405: %v, want a refusal to send it by GET", s.Err)
	}
	mu.Lock()
	if len(gets) != 0 {
		t.Errorf("a query holding a Secret's value was sent by GET: %v", gets)
	}
	mu.Unlock()
	// Other queries keep the library's fallback, for servers that take GET only.
	if s := p.Measure(t.Context(), "prod", &v1alpha1.PrometheusMetric{}, `up{token="s3cret"}`, ts); s.Err != nil || len(s.Values) != 1 {
		t.Errorf("a plain query answered 405: %+v, want it sent again by GET", s)
	}
}
