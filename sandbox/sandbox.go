// Package sandbox runs Tugboat at work on one machine, with no cluster at
// hand: a Kubernetes control plane with kwok's fake nodes, the data-plane
// emulator, Prometheus scraping it, and the controller, all real programs
// but the emulated data plane. `make demo` and the e2e tests run on it.
package sandbox

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tugboatdev/tugboat/config/monitoring"
	"github.com/tugboatdev/tugboat/sandbox/cluster"
	"github.com/tugboatdev/tugboat/sandbox/dataplane"
	"github.com/tugboatdev/tugboat/sandbox/process"
	"github.com/tugboatdev/tugboat/sandbox/promserver"
	"github.com/tugboatdev/tugboat/sandbox/sink"
	"github.com/tugboatdev/tugboat/sandbox/toolchain"
)

// Options configure a sandbox.
type Options struct {
	// Dir holds the kubeconfig, logs and data (default: a new temporary directory).
	Dir string
	// Namespace the demo applications run in (default "demo").
	Namespace string
	// Rate is the emulated requests per second per host (default 50).
	Rate float64
	// Log receives progress lines (default: discarded).
	Log func(format string, args ...any)
}

// Sandbox is a running sandbox.
type Sandbox struct {
	Cluster    *cluster.Cluster
	Prometheus *promserver.Server
	// Sink is the web endpoint web metrics ask (an approvals API) and
	// notifications arrive at.
	Sink *sink.Server
	// TriggerURL is the controller's trigger endpoint for Receivers, plain
	// HTTP on loopback: a Receiver's requests go to
	// TriggerURL/hook/<namespace>/<name>.
	TriggerURL string
	// MetricsURL is the controller's metrics endpoint, which Prometheus
	// scrapes beside the data plane's, with Tugboat's alerting rules loaded.
	MetricsURL string
	Namespace  string
	Dir        string

	controller *process.Process
	stop       context.CancelFunc
	emulator   chan struct{}
	http       *http.Server
}

// Up starts everything and waits until each part is ready.
func Up(ctx context.Context, o Options) (_ *Sandbox, err error) {
	if o.Namespace == "" {
		o.Namespace = "demo"
	}
	if o.Rate == 0 {
		o.Rate = 50
	}
	if o.Log == nil {
		o.Log = func(string, ...any) {}
	}
	if o.Dir == "" {
		if o.Dir, err = os.MkdirTemp("", "tugboat-sandbox-"); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, err
	}
	s := &Sandbox{Namespace: o.Namespace, Dir: o.Dir}
	defer func() {
		if err != nil {
			err = errors.Join(err, s.Down())
		}
	}()

	o.Log("building the controller")
	bin := filepath.Join(o.Dir, "tugboat")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/tugboat")
	build.Dir = toolchain.Root()
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build the controller: %w\n%s", err, out)
	}

	o.Log("starting etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok")
	if s.Cluster, err = cluster.NewCluster(ctx, cluster.ClusterOptions{Nodes: 2, Dir: o.Dir}); err != nil {
		return nil, err
	}
	if err := s.Cluster.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: o.Namespace}}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, err
	}

	o.Log("starting the data-plane emulator")
	reg := prometheus.NewRegistry()
	em := dataplane.New(s.Cluster.Client, reg, dataplane.Options{
		Namespace: o.Namespace, Rate: o.Rate, Seed: 1,
		OnError: func(err error) { o.Log("data-plane emulator: %v (trying again)", err) },
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.http = &http.Server{Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = s.http.Serve(l) }()
	// The emulator outlives Up: Down stops it.
	emCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	s.stop, s.emulator = stop, make(chan struct{})
	go func() { em.Run(emCtx); close(s.emulator) }()

	metrics, err := freePort()
	if err != nil {
		return nil, err
	}
	s.MetricsURL = "http://" + metrics + "/metrics"

	o.Log("starting Prometheus, scraping the emulator and the controller every second")
	if s.Prometheus, err = promserver.New(ctx, promserver.Options{
		Targets:   []string{l.Addr().String(), metrics},
		RuleFiles: []string{filepath.Join(toolchain.Root(), monitoring.RulesFile)},
		Dir:       filepath.Join(o.Dir, "prometheus"),
	}); err != nil {
		return nil, err
	}

	if s.Sink, err = sink.Start(); err != nil {
		return nil, err
	}

	trigger, err := freePort()
	if err != nil {
		return nil, err
	}
	s.TriggerURL = "http://" + trigger

	o.Log("starting the controller")
	if s.controller, err = process.Start("tugboat", bin, []string{
		"--kubeconfig=" + s.Cluster.KubeConfigPath,
		"--leader-elect=false",
		"--metrics-address=" + metrics,
		"--health-address=0",
		"--log-format=text",
		"--prometheus-address=" + s.Prometheus.URL,
		"--prometheus-allow-loopback",
		"--web-allow-loopback", // the sink
		"--notification-allow-loopback",
		"--receiver-address=" + trigger, "--receiver-allow-plain-http",
		"--measurement-coalesce=0s", // the demo shows every measurement as it comes
		"--preview-settle=2s",       // the emulator has no proxies to wait for
	}, o.Dir); err != nil {
		return nil, err
	}
	// The trigger endpoint listening says the controller is up.
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		if exited, err := s.controller.Exited(); exited {
			return false, fmt.Errorf("controller exited: %v\n%s", err, s.controller.Tail(20))
		}
		conn, err := net.DialTimeout("tcp", trigger, time.Second)
		if err != nil {
			return false, nil
		}
		return true, conn.Close()
	})
	if err != nil {
		return nil, fmt.Errorf("controller's trigger endpoint: %w", err)
	}
	return s, nil
}

// Client reaches the sandbox's API server as an administrator.
func (s *Sandbox) Client() client.Client { return s.Cluster.Client }

// Down stops everything Up started, the controller first.
func (s *Sandbox) Down() error {
	var errs []error
	if s.controller != nil {
		errs = append(errs, s.controller.Stop(10*time.Second))
	}
	if s.Prometheus != nil {
		errs = append(errs, s.Prometheus.Stop())
	}
	if s.stop != nil {
		s.stop()
		<-s.emulator
	}
	if s.http != nil {
		errs = append(errs, s.http.Close())
	}
	if s.Sink != nil {
		errs = append(errs, s.Sink.Stop())
	}
	if s.Cluster != nil {
		errs = append(errs, s.Cluster.Stop())
	}
	return errors.Join(errs...)
}

// ControllerLog is the tail of the controller's log.
func (s *Sandbox) ControllerLog(lines int) string {
	if s.controller == nil {
		return ""
	}
	return s.controller.Tail(lines)
}

// freePort is a loopback address no one listens on now, for a program that
// takes a fixed address.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}
