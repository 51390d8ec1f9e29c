package main

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode"

	promconfig "github.com/prometheus/common/config"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/tugboatdev/tugboat/analysis/prometheus"
	"github.com/tugboatdev/tugboat/egress"
)

// Options configure the controller. Each comes, highest precedence first,
// from a flag, a TUGBOAT_* environment variable (TUGBOAT_METRICS_ADDRESS for
// --metrics-address), the --config file (YAML, the flag names as keys), or the
// default.
type Options struct {
	Kubeconfig                string
	MetricsAddress            string
	HealthAddress             string
	LeaderElect               bool
	LeaderElectionNamespace   string
	QPS                       float64
	Burst                     int
	Workers                   int
	LogLevel                  string
	LogFormat                 string
	SyncPeriod                time.Duration
	PrometheusAddress         string
	PrometheusAllowLoopback   bool
	PrometheusAllowedHosts    []string
	PrometheusCAFile          string
	PrometheusCertFile        string
	PrometheusKeyFile         string
	PrometheusServerName      string
	WebAllowLoopback          bool
	WebAllowedHosts           []string
	NotificationAllowLoopback bool
	ReceiverAddress           string
	ReceiverTLSCertFile       string
	ReceiverTLSKeyFile        string
	ReceiverAllowPlainHTTP    bool
	NotificationAllowedHosts  []string
	MeasurementCoalesce       time.Duration
	MeasureTimeout            time.Duration
	MaxMeasuring              int
	ClusterDomain             string
	MeshRootNamespace         string
	PreviewSettle             time.Duration
}

// bindFlags declares the flags with their defaults.
func bindFlags(fs *pflag.FlagSet) {
	fs.String("config", "", "configuration file (YAML; keys are the flag names)")
	fs.String("kubeconfig", "", "kubeconfig file; empty means in-cluster, then $KUBECONFIG")
	fs.String("metrics-address", ":8080", "address the Prometheus metrics are served on; 0 disables them")
	fs.String("health-address", ":8081", "address /healthz and /readyz are served on; 0 disables them")
	fs.Bool("leader-elect", true, "run only while holding the leader lease, so that replicas can stand by")
	fs.String("leader-election-namespace", "", "namespace of the leader lease; empty means the controller's own")
	fs.Float64("qps", 50, "requests per second to the API server (leader election has its own budget)")
	fs.Int("burst", 100, "request burst to the API server")
	fs.Int("workers", 4, "Rollouts reconciled at once")
	fs.String("log-level", "info", "debug, info, warn or error")
	fs.String("log-format", "json", "json or text")
	fs.Duration("sync-period", 10*time.Hour, "how often every object is reconciled even if nothing changed")
	fs.String("prometheus-address", "", "Prometheus for metrics whose template names no address, such as http://prometheus.monitoring:9090")
	fs.Duration("measurement-coalesce", time.Minute, "how long successful measurements that change no verdict may wait before they are written; 0 writes each one")
	fs.Duration("measure-timeout", 2*time.Minute, "the longest one measurement may take, whatever its metric's timeout says; also how long a server may take to begin its answer")
	fs.Int("max-measuring", 64, "measurements in flight at once, for all AnalysisRuns together (one namespace at most a quarter, each run at most 4)")
	fs.String("cluster-domain", "cluster.local", "the cluster's DNS domain, for the names of production's Services a preview's filter recognises copies by")
	fs.String("mesh-root-namespace", "istio-system", "Istio's root namespace, where no Preview may live (an EnvoyFilter there applies to the whole mesh)")
	fs.Duration("preview-settle", 10*time.Second, "how long a preview's header-stripping filter exists before the first copy, and stays after the last (1s to 5m)")
	fs.Bool("prometheus-allow-loopback", false, "let templates reach Prometheus on the controller's own host (the sandbox); never in a cluster")
	fs.StringSlice("prometheus-allowed-hosts", nil, "addresses templates may name as their Prometheus (--prometheus-address is always allowed): host, host:port, *.domain[:port], a CIDR (for addresses written as IPs) or *; empty allows none")
	fs.String("prometheus-ca-file", "", "CA (PEM) that --prometheus-address's certificate must chain to, instead of the system's roots; re-read when it changes")
	fs.String("prometheus-cert-file", "", "client certificate (PEM) presented to --prometheus-address; re-read when it changes")
	fs.String("prometheus-key-file", "", "key (PEM) of --prometheus-cert-file")
	fs.String("prometheus-server-name", "", "name --prometheus-address's certificate must hold, when it is not the address's host")
	fs.StringSlice("web-allowed-hosts", nil, "hosts web metrics may ask: host, host:port, *.domain[:port], a CIDR (for URLs written with IPs) or *; empty allows none")
	fs.Bool("web-allow-loopback", false, "let web metrics ask servers on the controller's own host (the sandbox); never in a cluster")
	fs.StringSlice("notification-allowed-hosts", nil, "hosts NotificationProviders may send to, as for --web-allowed-hosts (hooks.slack.com, say); empty allows none")
	fs.Bool("notification-allow-loopback", false, "let NotificationProviders send to the controller's own host (the sandbox); never in a cluster")
	fs.String("receiver-address", "", "serve the trigger endpoint for Receivers on this address (:9443, say); off when empty")
	fs.String("receiver-tls-cert-file", "", "TLS certificate of the trigger endpoint")
	fs.String("receiver-tls-key-file", "", "TLS key of the trigger endpoint")
	fs.Bool("receiver-allow-plain-http", false, "serve the trigger endpoint without TLS (the sandbox); never in a cluster")
}

// loadOptions resolves the options from flags, environment and file.
func loadOptions(fs *pflag.FlagSet, getenv func(string) string) (Options, error) {
	v := viper.New()
	v.SetEnvPrefix("TUGBOAT")
	v.SetEnvKeyReplacer(strings.NewReplacer("-", "_"))
	v.AutomaticEnv()
	if err := v.BindPFlags(fs); err != nil {
		return Options{}, err
	}
	file := v.GetString("config")
	if file == "" {
		file = getenv("TUGBOAT_CONFIG")
	}
	if file != "" {
		v.SetConfigFile(file)
		if err := v.ReadInConfig(); err != nil {
			return Options{}, fmt.Errorf("read config file %s: %w", file, err)
		}
	}
	o := Options{
		Kubeconfig:                v.GetString("kubeconfig"),
		MetricsAddress:            v.GetString("metrics-address"),
		HealthAddress:             v.GetString("health-address"),
		LeaderElect:               v.GetBool("leader-elect"),
		LeaderElectionNamespace:   v.GetString("leader-election-namespace"),
		QPS:                       v.GetFloat64("qps"),
		Burst:                     v.GetInt("burst"),
		Workers:                   v.GetInt("workers"),
		LogLevel:                  v.GetString("log-level"),
		LogFormat:                 v.GetString("log-format"),
		SyncPeriod:                v.GetDuration("sync-period"),
		PrometheusAddress:         v.GetString("prometheus-address"),
		PrometheusAllowLoopback:   v.GetBool("prometheus-allow-loopback"),
		PrometheusAllowedHosts:    splitList(v.GetStringSlice("prometheus-allowed-hosts")),
		PrometheusCAFile:          v.GetString("prometheus-ca-file"),
		PrometheusCertFile:        v.GetString("prometheus-cert-file"),
		PrometheusKeyFile:         v.GetString("prometheus-key-file"),
		PrometheusServerName:      v.GetString("prometheus-server-name"),
		WebAllowLoopback:          v.GetBool("web-allow-loopback"),
		WebAllowedHosts:           splitList(v.GetStringSlice("web-allowed-hosts")),
		NotificationAllowLoopback: v.GetBool("notification-allow-loopback"),
		ReceiverAddress:           v.GetString("receiver-address"),
		ReceiverTLSCertFile:       v.GetString("receiver-tls-cert-file"),
		ReceiverTLSKeyFile:        v.GetString("receiver-tls-key-file"),
		ReceiverAllowPlainHTTP:    v.GetBool("receiver-allow-plain-http"),
		NotificationAllowedHosts:  splitList(v.GetStringSlice("notification-allowed-hosts")),
		MeasurementCoalesce:       v.GetDuration("measurement-coalesce"),
		MeasureTimeout:            v.GetDuration("measure-timeout"),
		MaxMeasuring:              v.GetInt("max-measuring"),
		ClusterDomain:             v.GetString("cluster-domain"),
		MeshRootNamespace:         v.GetString("mesh-root-namespace"),
		PreviewSettle:             v.GetDuration("preview-settle"),
	}
	return o, o.validate()
}

// splitList splits entries on commas as well: viper splits a list from the
// environment (TUGBOAT_PROMETHEUS_ALLOWED_HOSTS) on spaces only, while
// flags and files give one entry each.
func splitList(entries []string) []string {
	var out []string
	for _, e := range entries {
		out = append(out, strings.FieldsFunc(e, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })...)
	}
	return out
}

func (o Options) validate() error {
	var errs []error
	if o.QPS <= 0 || o.Burst <= 0 {
		errs = append(errs, fmt.Errorf("qps (%v) and burst (%d) must be positive", o.QPS, o.Burst))
	}
	if o.Workers < 1 {
		errs = append(errs, fmt.Errorf("workers must be at least 1, got %d", o.Workers))
	}
	if o.MeasureTimeout < time.Second || o.MeasureTimeout > 10*time.Minute {
		errs = append(errs, fmt.Errorf("measure-timeout must be between 1s and 10m, got %s", o.MeasureTimeout))
	}
	if o.PreviewSettle < time.Second || o.PreviewSettle > 5*time.Minute {
		errs = append(errs, fmt.Errorf("preview-settle must be between 1s and 5m, got %s", o.PreviewSettle))
	}
	if o.MaxMeasuring < 1 || o.MaxMeasuring > 10000 {
		errs = append(errs, fmt.Errorf("max-measuring must be between 1 and 10000, got %d", o.MaxMeasuring))
	}
	if _, err := o.slogLevel(); err != nil {
		errs = append(errs, err)
	}
	if o.LogFormat != "json" && o.LogFormat != "text" {
		errs = append(errs, fmt.Errorf("log-format must be json or text, got %q", o.LogFormat))
	}
	if err := prometheus.CheckDefaultTLS(o.PrometheusAddress, o.prometheusTLS()); err != nil {
		errs = append(errs, err)
	}
	if err := prometheus.CheckAllowedHosts(o.PrometheusAllowedHosts); err != nil {
		errs = append(errs, err)
	}
	if err := egress.CheckAllowedHosts("web-allowed-hosts", o.WebAllowedHosts); err != nil {
		errs = append(errs, err)
	}
	if err := egress.CheckAllowedHosts("notification-allowed-hosts", o.NotificationAllowedHosts); err != nil {
		errs = append(errs, err)
	}
	if o.ReceiverAddress != "" && (o.ReceiverTLSCertFile == "") != (o.ReceiverTLSKeyFile == "") {
		errs = append(errs, errors.New("receiver-tls-cert-file and receiver-tls-key-file go together"))
	}
	if o.ReceiverAddress != "" && o.ReceiverTLSCertFile == "" && !o.ReceiverAllowPlainHTTP {
		errs = append(errs, errors.New("receiver-address needs receiver-tls-cert-file and receiver-tls-key-file (or receiver-allow-plain-http in a sandbox)"))
	}
	return errors.Join(errs...)
}

// prometheusTLS is the TLS of the default Prometheus address, from the files
// the flags name.
func (o Options) prometheusTLS() promconfig.TLSConfig {
	return promconfig.TLSConfig{
		CAFile:     o.PrometheusCAFile,
		CertFile:   o.PrometheusCertFile,
		KeyFile:    o.PrometheusKeyFile,
		ServerName: o.PrometheusServerName,
	}
}

func (o Options) slogLevel() (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(o.LogLevel)); err != nil {
		return 0, fmt.Errorf("log-level must be debug, info, warn or error, got %q", o.LogLevel)
	}
	return l, nil
}
