package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/go-logr/logr"
	promclient "github.com/prometheus/client_golang/prometheus"
	promconfig "github.com/prometheus/common/config"
	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/tugboatdev/tugboat/analysis/prometheus"
	analysisreconciler "github.com/tugboatdev/tugboat/analysis/reconciler"
	"github.com/tugboatdev/tugboat/analysis/web"
	"github.com/tugboatdev/tugboat/api/scheme"
	"github.com/tugboatdev/tugboat/egress"
	"github.com/tugboatdev/tugboat/notify/dispatch"
	receiverserver "github.com/tugboatdev/tugboat/receiver/server"
	"github.com/tugboatdev/tugboat/rollout/reconciler"
	previewreconciler "github.com/tugboatdev/tugboat/shadow/reconciler"
	"github.com/tugboatdev/tugboat/traffic/istio"
	"github.com/tugboatdev/tugboat/version"
)

// fieldOwner names the controller in metadata.managedFields for every write
// it makes, whatever the binary is called (client-go would take the name
// from its user agent): docs/gitops.md points GitOps tools at the fields
// "tugboat" owns.
const fieldOwner = "tugboat"

// run wires the adapters into the reconciler and runs the manager until ctx ends.
func run(ctx context.Context, o Options) error {
	logger, err := newLogger(o)
	if err != nil {
		return err
	}
	log.SetLogger(logger)
	// Unreadable or invalid TLS files stop the controller here rather than
	// fail every measurement.
	promTLS := o.prometheusTLS()
	if _, err := promconfig.NewTLSConfig(&promTLS); err != nil {
		return fmt.Errorf("prometheus TLS: %w", err)
	}
	cfg, err := restConfig(o.Kubeconfig)
	if err != nil {
		return err
	}
	// Leader election gets a client of its own, so that lease renewals never
	// queue behind reconcile traffic and lose the lease under load.
	leCfg := rest.CopyConfig(cfg)
	leCfg.QPS, leCfg.Burst = 5, 10
	cfg.QPS, cfg.Burst = float32(o.QPS), o.Burst

	sch, err := scheme.New()
	if err != nil {
		return err
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                        sch,
		Client:                        client.Options{FieldOwner: fieldOwner},
		Logger:                        logger,
		Metrics:                       metricsserver.Options{BindAddress: o.MetricsAddress},
		HealthProbeBindAddress:        o.HealthAddress,
		LeaderElection:                o.LeaderElect,
		LeaderElectionID:              "tugboat-controller",
		LeaderElectionNamespace:       o.LeaderElectionNamespace,
		LeaderElectionConfig:          leCfg,
		LeaderElectionReleaseOnCancel: true,
		Cache: cache.Options{SyncPeriod: &o.SyncPeriod, ByObject: map[client.Object]cache.ByObject{
			&batchv1.Job{}: analysisreconciler.JobCache(),
		}},
	})
	if err != nil {
		return fmt.Errorf("create manager: %w", err)
	}
	// Secrets are read one at a time, uncached: a cache would watch every
	// Secret in the cluster. RBAC grants get per namespace (config/rbac).
	secrets := prometheus.CredentialsFrom(mgr.GetAPIReader())
	notifier := dispatch.New(dispatch.Options{
		Client:  mgr.GetClient(),
		Secrets: dispatch.Secrets(secrets),
		Guard:   egress.Guard{AllowLoopback: o.NotificationAllowLoopback, LoopbackFlag: "--notification-allow-loopback", AllowedHosts: o.NotificationAllowedHosts, ResponseHeaderTimeout: time.Minute},
		Metrics: dispatch.NewMetrics(ctrlmetrics.Registry),
		Now:     time.Now,
	})
	if err := mgr.Add(notifier); err != nil {
		return fmt.Errorf("add notifier: %w", err)
	}
	r := &reconciler.Reconciler{
		Client:   mgr.GetClient(),
		Router:   &istio.Router{Client: mgr.GetClient()},
		Recorder: mgr.GetEventRecorder("tugboat"),
		Metrics:  reconciler.NewMetrics(ctrlmetrics.Registry),
		Notifier: notifier,
		Now:      time.Now,
	}
	if err := r.SetupWithManager(ctx, mgr, o.Workers); err != nil {
		return fmt.Errorf("set up rollout controller: %w", err)
	}
	pr := &previewreconciler.Reconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Router:    &istio.Router{Client: mgr.GetClient()},
		Recorder:  mgr.GetEventRecorder("tugboat"),
		Metrics:   previewreconciler.NewMetrics(ctrlmetrics.Registry),
		Notifier:  notifier,
		Now:       time.Now,

		ClusterDomain:     o.ClusterDomain,
		MeshRootNamespace: o.MeshRootNamespace,
		SanitizerSettle:   o.PreviewSettle,
	}
	if err := pr.SetupWithManager(ctx, mgr, o.Workers); err != nil {
		return fmt.Errorf("set up preview controller: %w", err)
	}
	ar := &analysisreconciler.Reconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Measurer: &prometheus.Provider{
			DefaultAddress: o.PrometheusAddress,
			DefaultTLS:     o.prometheusTLS(),
			Guard:          prometheus.Guard{AllowLoopback: o.PrometheusAllowLoopback, LoopbackFlag: "--prometheus-allow-loopback", AllowedHosts: o.PrometheusAllowedHosts},
			Credentials:    secrets,
			Metrics:        prometheus.NewMetrics(ctrlmetrics.Registry),
			MaxQueryTime:   o.MeasureTimeout,
		},
		Web:      &web.Provider{Guard: egress.Guard{AllowLoopback: o.WebAllowLoopback, LoopbackFlag: "--web-allow-loopback", AllowedHosts: o.WebAllowedHosts, ResponseHeaderTimeout: o.MeasureTimeout}},
		Metrics:  analysisreconciler.NewMetrics(ctrlmetrics.Registry),
		Secrets:  secrets,
		Recorder: mgr.GetEventRecorder("tugboat"),
		Notifier: notifier,
		Now:      time.Now,
		Coalesce: o.MeasurementCoalesce,
		// A measurement's deadline leaves its query's a moment to report.
		MeasureFor:   o.MeasureTimeout + 5*time.Second,
		MaxMeasuring: int64(o.MaxMeasuring),
	}
	if err := ar.SetupWithManager(mgr, o.Workers); err != nil {
		return fmt.Errorf("set up analysis controller: %w", err)
	}
	if o.ReceiverAddress != "" {
		// Receivers and the Rollouts they name are read from the API server
		// itself: a replay is checked against what the last request wrote.
		direct, err := client.New(cfg, client.Options{Scheme: sch, FieldOwner: fieldOwner})
		if err != nil {
			return fmt.Errorf("trigger endpoint client: %w", err)
		}
		endpoint := receiverserver.New(receiverserver.Options{
			Address: o.ReceiverAddress, CertFile: o.ReceiverTLSCertFile, KeyFile: o.ReceiverTLSKeyFile, AllowPlainHTTP: o.ReceiverAllowPlainHTTP,
			Client:   direct,
			Secrets:  receiverserver.Secrets(secrets),
			Recorder: mgr.GetEventRecorder("tugboat"),
			Metrics:  receiverserver.NewMetrics(ctrlmetrics.Registry),
			Now:      time.Now,
		})
		if err := mgr.Add(endpoint); err != nil {
			return fmt.Errorf("add trigger endpoint: %w", err)
		}
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	build := version.Get()
	buildInfo := promclient.NewGaugeVec(promclient.GaugeOpts{
		Name: "tugboat_build_info",
		Help: "The running controller's build: always 1, with the version, git revision and Go version as labels.",
	}, []string{"version", "revision", "goversion"})
	buildInfo.WithLabelValues(build.Version, build.Revision, build.GoVersion).Set(1)
	if err := ctrlmetrics.Registry.Register(buildInfo); err != nil {
		return fmt.Errorf("register build info: %w", err)
	}
	logger.Info("starting", "version", build.Version, "revision", build.Revision, "workers", o.Workers, "leaderElect", o.LeaderElect, "qps", o.QPS)
	return mgr.Start(ctx)
}

func newLogger(o Options) (logr.Logger, error) {
	level, err := o.slogLevel()
	if err != nil {
		return logr.Logger{}, err
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewJSONHandler(os.Stderr, opts)
	if o.LogFormat == "text" {
		h = slog.NewTextHandler(os.Stderr, opts)
	}
	return logr.FromSlogHandler(h), nil
}

// restConfig uses the kubeconfig file when one is named, else in-cluster
// config, else the usual kubeconfig rules ($KUBECONFIG, ~/.kube/config).
func restConfig(kubeconfig string) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if kubeconfig != "" {
		rules.ExplicitPath = kubeconfig
	} else if cfg, err := rest.InClusterConfig(); err == nil {
		return cfg, nil
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, nil).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig: %w", err)
	}
	return cfg, nil
}
