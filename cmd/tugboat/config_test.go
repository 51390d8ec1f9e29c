package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"
)

func TestLoadOptions(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "tugboat.yaml")
	if err := os.WriteFile(file, []byte("workers: 8\nqps: 20\nlog-format: text\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	allowFile := filepath.Join(dir, "allow.yaml")
	if err := os.WriteFile(allowFile, []byte("prometheus-allowed-hosts:\n- prometheus.monitoring:9090\n- '*.thanos.svc.cluster.local'\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	defaults := Options{MetricsAddress: ":8080", HealthAddress: ":8081", LeaderElect: true, QPS: 50, Burst: 100,
		Workers: 4, LogLevel: "info", LogFormat: "json", SyncPeriod: 10 * time.Hour, MeasurementCoalesce: time.Minute,
		MeasureTimeout: 2 * time.Minute, MaxMeasuring: 64,
		ClusterDomain: "cluster.local", MeshRootNamespace: "istio-system", PreviewSettle: 10 * time.Second}
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    func(Options) Options
		wantErr string
	}{{
		name: "defaults",
		want: func(o Options) Options { return o },
	}, {
		name: "file, environment and flags, flags winning",
		args: []string{"--config", file, "--workers", "2"},
		env:  map[string]string{"TUGBOAT_QPS": "30", "TUGBOAT_LEADER_ELECT": "false", "TUGBOAT_WORKERS": "16"},
		want: func(o Options) Options {
			o.Workers, o.QPS, o.LeaderElect, o.LogFormat = 2, 30, false, "text"
			return o
		},
	}, {
		name: "config file named in the environment",
		env:  map[string]string{"TUGBOAT_CONFIG": file},
		want: func(o Options) Options { o.Workers, o.QPS, o.LogFormat = 8, 20, "text"; return o },
	}, {
		name:    "invalid values are named",
		args:    []string{"--workers", "0", "--log-format", "xml", "--log-level", "loud"},
		wantErr: "workers must be at least 1",
	}, {
		name:    "measurement bounds are bounded",
		args:    []string{"--measure-timeout", "1h", "--max-measuring", "0"},
		wantErr: "measure-timeout must be between 1s and 10m, got 1h0m0s",
	}, {
		name: "TLS for the default Prometheus",
		args: []string{"--prometheus-address", "https://prometheus.monitoring:9090", "--prometheus-ca-file", "/etc/prometheus-tls/ca.crt"},
		env:  map[string]string{"TUGBOAT_PROMETHEUS_CERT_FILE": "/etc/prometheus-tls/tls.crt", "TUGBOAT_PROMETHEUS_KEY_FILE": "/etc/prometheus-tls/tls.key", "TUGBOAT_PROMETHEUS_SERVER_NAME": "prometheus.internal"},
		want: func(o Options) Options {
			o.PrometheusAddress = "https://prometheus.monitoring:9090"
			o.PrometheusCAFile, o.PrometheusCertFile, o.PrometheusKeyFile = "/etc/prometheus-tls/ca.crt", "/etc/prometheus-tls/tls.crt", "/etc/prometheus-tls/tls.key"
			o.PrometheusServerName = "prometheus.internal"
			return o
		},
	}, {
		name:    "a client certificate without its key",
		args:    []string{"--prometheus-address", "https://prometheus.monitoring:9090", "--prometheus-cert-file", "tls.crt"},
		wantErr: "prometheus-cert-file and prometheus-key-file go together",
	}, {
		name:    "TLS for a plain HTTP address",
		args:    []string{"--prometheus-address", "http://prometheus.monitoring:9090", "--prometheus-ca-file", "ca.crt"},
		wantErr: "the prometheus TLS flags need an https:// address",
	}, {
		name: "addresses templates may name, by flag",
		args: []string{"--prometheus-allowed-hosts", "prometheus.monitoring:9090,10.8.0.0/16", "--prometheus-allowed-hosts", "*.thanos.svc"},
		want: func(o Options) Options {
			o.PrometheusAllowedHosts = []string{"prometheus.monitoring:9090", "10.8.0.0/16", "*.thanos.svc"}
			return o
		},
	}, {
		name: "addresses templates may name, from the environment",
		env:  map[string]string{"TUGBOAT_PROMETHEUS_ALLOWED_HOSTS": "prometheus.monitoring:9090, 10.8.0.0/16"},
		want: func(o Options) Options {
			o.PrometheusAllowedHosts = []string{"prometheus.monitoring:9090", "10.8.0.0/16"}
			return o
		},
	}, {
		name: "addresses templates may name, from the file",
		args: []string{"--config", allowFile},
		want: func(o Options) Options {
			o.PrometheusAllowedHosts = []string{"prometheus.monitoring:9090", "*.thanos.svc.cluster.local"}
			return o
		},
	}, {
		name:    "an allow-list entry that is not a pattern",
		args:    []string{"--prometheus-allowed-hosts", "http://prometheus.monitoring:9090"},
		wantErr: `prometheus-allowed-hosts entry "http://prometheus.monitoring:9090": want a host, host:port, *.domain or a CIDR, not a URL`,
	}, {
		name:    "missing config file",
		args:    []string{"--config", filepath.Join(dir, "nope.yaml")},
		wantErr: "read config file",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			fs := pflag.NewFlagSet("tugboat", pflag.ContinueOnError)
			bindFlags(fs)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			got, err := loadOptions(fs, os.Getenv)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want(defaults), got); diff != "" {
				t.Errorf("options (-want +got):\n%s", diff)
			}
		})
	}
}
