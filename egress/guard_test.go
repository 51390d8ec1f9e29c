package egress

import (
	"net/url"
	"testing"
)

func TestAllowedHosts(t *testing.T) {
	for _, tt := range []struct {
		name     string
		guard    Guard
		address  string
		want     bool
		patterns []string
	}{
		{name: "an empty list allows nothing", address: "http://prometheus.monitoring:9090"},
		{name: "a host on any port", patterns: []string{"prometheus.monitoring"}, address: "http://prometheus.monitoring:9090", want: true},
		{name: "a host in another case, with a trailing dot", patterns: []string{"Prometheus.Monitoring"}, address: "http://prometheus.monitoring.:9090", want: true},
		{name: "host:port", patterns: []string{"prometheus.monitoring:9090"}, address: "http://prometheus.monitoring:9090", want: true},
		{name: "host:port, another port", patterns: []string{"prometheus.monitoring:9090"}, address: "http://prometheus.monitoring:9091"},
		{name: "host:port, the scheme's port", patterns: []string{"prometheus.monitoring:443"}, address: "https://prometheus.monitoring", want: true},
		{name: "a host is not its subdomains", patterns: []string{"monitoring.svc"}, address: "http://prometheus.monitoring.svc:9090"},
		{name: "nor a name that ends the same", patterns: []string{"*.monitoring.svc"}, address: "http://prometheus.evilmonitoring.svc:9090"},
		{name: "*.domain", patterns: []string{"*.monitoring.svc.cluster.local"}, address: "http://thanos.query.monitoring.svc.cluster.local:9090", want: true},
		{name: "*.domain is not the domain", patterns: []string{"*.monitoring.svc"}, address: "http://monitoring.svc:9090"},
		{name: "*.domain:port", patterns: []string{"*.monitoring.svc:9090"}, address: "http://prometheus.monitoring.svc:80"},
		{name: "a CIDR holds an IP address", patterns: []string{"10.8.0.0/16"}, address: "http://10.8.3.4:9090", want: true},
		{name: "a CIDR, outside it", patterns: []string{"10.8.0.0/16"}, address: "https://10.96.0.1:443"},
		{name: "a CIDR says nothing of names", patterns: []string{"0.0.0.0/0"}, address: "https://kubernetes.default.svc"},
		{name: "an IP", patterns: []string{"10.8.3.4"}, address: "http://10.8.3.4:9090", want: true},
		{name: "an IPv6 address and port", patterns: []string{"[fd00::9]:9090"}, address: "http://[fd00::9]:9090", want: true},
		{name: "an IPv6 address written otherwise", patterns: []string{"fd00:0::9"}, address: "http://[fd00::9]:9090", want: true},
		{name: "any", patterns: []string{"*"}, address: "https://kubernetes.default.svc", want: true},
		{name: "the second entry", patterns: []string{"a.example", "b.example"}, address: "http://b.example", want: true},
		{name: "loopback is not allowed by default", address: "http://127.0.0.1:9090"},
		{name: "loopback, when allowed", guard: Guard{AllowLoopback: true}, address: "http://127.0.0.1:9090", want: true},
		{name: "localhost, when loopback is allowed", guard: Guard{AllowLoopback: true}, address: "http://localhost:9090", want: true},
		{name: "another name, when loopback is allowed", guard: Guard{AllowLoopback: true}, address: "http://prometheus.monitoring:9090"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := CheckAllowedHosts("allowed-hosts", tt.patterns); err != nil {
				t.Fatal(err)
			}
			g := tt.guard
			g.AllowedHosts = tt.patterns
			u, err := url.Parse(tt.address)
			if err != nil {
				t.Fatal(err)
			}
			if got := g.Allows(u); got != tt.want {
				t.Errorf("%v allows %s: %v, want %v", tt.patterns, tt.address, got, tt.want)
			}
		})
	}
	for _, bad := range []string{"http://prometheus.monitoring:9090", "10.0.0.0/33", "prometheus:http", "prometheus:0", "pro*metheus", "[fd00::9]", ""} {
		if err := CheckAllowedHosts("allowed-hosts", []string{bad}); err == nil {
			t.Errorf("CheckAllowedHosts(%q) = nil, want an error", bad)
		}
	}
}
