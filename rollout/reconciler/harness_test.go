package reconciler_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	networkingv1 "istio.io/api/networking/v1"
	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	promadapter "github.com/tugboatdev/tugboat/analysis/prometheus"
	analysisreconciler "github.com/tugboatdev/tugboat/analysis/reconciler"
	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/egress"
	"github.com/tugboatdev/tugboat/notify/dispatch"
	"github.com/tugboatdev/tugboat/rollout"
	"github.com/tugboatdev/tugboat/rollout/reconciler"
	"github.com/tugboatdev/tugboat/sandbox/cluster"
	"github.com/tugboatdev/tugboat/sandbox/promserver"
	"github.com/tugboatdev/tugboat/traffic/istio"
)

// The package's tests share one kwok cluster, each in its own namespace, so
// Deployments become Ready for real. The controller runs as a user bound to
// the generated ClusterRole, so the tests also prove that role suffices.
var (
	kube           *cluster.Cluster
	controllerUser *rest.Config
	prom           *promserver.Server
	// successRate is what the exporter Prometheus scrapes reports per workload.
	successRate = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tugboat_test_success_rate", Help: "Test success rate."}, []string{"workload"})
)

func TestMain(m *testing.M) {
	log.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(zapcore.ErrorLevel)))
	c, err := cluster.NewCluster(context.Background(), cluster.ClusterOptions{Nodes: 2})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	kube = c
	if controllerUser, err = c.ControllerUser(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		_ = c.Stop()
		os.Exit(1)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(successRate)
	exporter := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	prom, err = promserver.New(context.Background(), promserver.Options{Targets: []string{strings.TrimPrefix(exporter.URL, "http://")}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		_ = c.Stop()
		os.Exit(1)
	}
	code := m.Run()
	exporter.Close()
	if err := errors.Join(prom.Stop(), c.Stop()); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.Exit(code)
}

var nsCounter atomic.Int32

// fixture is one test's namespace and controller.
type fixture struct {
	t      *testing.T
	ns     string
	c      client.Client
	cancel context.CancelFunc
	done   chan error
	// wrap, when set before startController, stands between the
	// reconciler and its client (to make the cache lag, say).
	wrap func(client.Client) client.Client
	// metrics, when set before startController, is where the controller's
	// metrics are registered (see givenMeasured).
	metrics *controllerMetrics
}

// controllerMetrics are the controller's metrics, registered once per
// fixture, as the controller registers them in its process, and served as
// the controller's metrics server serves them.
type controllerMetrics struct {
	rollouts *reconciler.Metrics
	analysis *analysisreconciler.Metrics
	// URL serves the registry in the Prometheus text format.
	URL string
}

// givenMeasured is given with the controller's metrics served at
// f.metrics.URL.
func givenMeasured(t *testing.T) *fixture {
	t.Helper()
	reg := prometheus.NewRegistry()
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(srv.Close)
	return start(t, &controllerMetrics{rollouts: reconciler.NewMetrics(reg), analysis: analysisreconciler.NewMetrics(reg), URL: srv.URL + "/metrics"})
}

// given creates a namespace and starts a controller for the test.
func given(t *testing.T) *fixture {
	t.Helper()
	return start(t, nil)
}

// start creates the test's namespace and starts its controller, with the
// metrics given (nil: none).
func start(t *testing.T, m *controllerMetrics) *fixture {
	t.Helper()
	ns := fmt.Sprintf("t%d", nsCounter.Add(1))
	if err := kube.Client.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, ns: ns, c: kube.Client, metrics: m}
	f.startController()
	t.Cleanup(f.stopController)
	return f
}

// startController runs a controller manager until stopController.
func (f *fixture) startController() {
	f.t.Helper()
	mgr, err := ctrl.NewManager(controllerUser, ctrl.Options{
		Scheme:                 kube.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		// Each test runs its own controller of the same name.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		f.t.Fatal(err)
	}
	c := mgr.GetClient()
	if f.wrap != nil {
		c = f.wrap(c)
	}
	notifier := dispatch.New(dispatch.Options{Client: mgr.GetClient(), Guard: egress.Guard{AllowLoopback: true}, BaseDelay: 50 * time.Millisecond})
	if err := mgr.Add(notifier); err != nil {
		f.t.Fatal(err)
	}
	r := &reconciler.Reconciler{
		Client:   c,
		Router:   &istio.Router{Client: mgr.GetClient()},
		Recorder: mgr.GetEventRecorder("tugboat"),
		Notifier: notifier,
		Now:      time.Now,
	}
	if f.metrics != nil {
		r.Metrics = f.metrics.rollouts
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := r.SetupWithManager(ctx, mgr, 4); err != nil {
		cancel()
		f.t.Fatal(err)
	}
	ar := &analysisreconciler.Reconciler{
		Client:   mgr.GetClient(),
		Measurer: &promadapter.Provider{DefaultAddress: prom.URL, Guard: promadapter.Guard{AllowLoopback: true}},
		Recorder: mgr.GetEventRecorder("tugboat"),
		Notifier: notifier,
		Now:      time.Now,
	}
	if f.metrics != nil {
		ar.Metrics = f.metrics.analysis
	}
	if err := ar.SetupWithManager(mgr, 4); err != nil {
		cancel()
		f.t.Fatal(err)
	}
	f.cancel, f.done = cancel, make(chan error, 1)
	go func() { f.done <- mgr.Start(ctx) }()
}

// stopController stops the controller and waits until it has stopped.
func (f *fixture) stopController() {
	if f.cancel == nil {
		return
	}
	f.cancel()
	if err := <-f.done; err != nil {
		f.t.Errorf("controller: %v", err)
	}
	f.cancel = nil
}

// app creates the user's Deployment and VirtualService.
func (f *fixture) app(name string, replicas int32, routes ...*networkingv1.HTTPRoute) {
	f.t.Helper()
	labels := map[string]string{"app": name, "app.kubernetes.io/name": name}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "app", Image: "example.com/" + name + ":1",
					Env: []corev1.EnvVar{{Name: "VERSION", Value: "v1"}},
				}}},
			},
		},
	}
	vs := &istiov1.VirtualService{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name},
		Spec:       networkingv1.VirtualService{Hosts: []string{name}, Http: routes},
	}
	for _, o := range []client.Object{d, vs} {
		if err := f.c.Create(f.t.Context(), o); err != nil {
			f.t.Fatal(err)
		}
	}
}

// release changes the target's pod template and returns the new revision.
func (f *fixture) release(name, version string) string {
	f.t.Helper()
	var d appsv1.Deployment
	f.update(&d, name, func(o client.Object) {
		o.(*appsv1.Deployment).Spec.Template.Spec.Containers[0].Env[0].Value = version
	})
	return rollout.Revision(d.Spec.Template)
}

func (f *fixture) rollout(ro *v1alpha1.Rollout) {
	f.t.Helper()
	ro.Namespace = f.ns
	if err := f.c.Create(f.t.Context(), ro); err != nil {
		f.t.Fatal(err)
	}
}

// annotate writes a request annotation, as kubectl tug does.
func (f *fixture) annotate(name, key, value string) {
	f.t.Helper()
	f.update(&v1alpha1.Rollout{}, name, func(o client.Object) {
		a := o.GetAnnotations()
		if a == nil {
			a = map[string]string{}
		}
		if value == "" {
			delete(a, key)
		} else {
			a[key] = value
		}
		o.SetAnnotations(a)
	})
}

func (f *fixture) update(o client.Object, name string, mutate func(client.Object)) {
	f.t.Helper()
	err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		if err := f.c.Get(f.t.Context(), client.ObjectKey{Namespace: f.ns, Name: name}, o); err != nil {
			return err
		}
		mutate(o)
		return f.c.Update(f.t.Context(), o)
	})
	if err != nil {
		f.t.Fatalf("update %s: %v", name, err)
	}
}

// eventually polls until cond holds for the Rollout, or fails the test with
// the last state seen. A failed read is tried again (the API server may be
// busy) and reported if the deadline passes.
func (f *fixture) eventually(name, what string, timeout time.Duration, cond func(*v1alpha1.Rollout) bool) *v1alpha1.Rollout {
	f.t.Helper()
	var ro v1alpha1.Rollout
	var lastErr error
	err := wait.PollUntilContextTimeout(f.t.Context(), 50*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		if lastErr = f.c.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: name}, &ro); lastErr != nil {
			return false, nil
		}
		return cond(&ro), nil
	})
	if err != nil {
		f.t.Fatalf("waiting for %s: %v (last read: %v)\nlast status: %+v\n%s", what, err, lastErr, ro.Status, kube.Logs(5))
	}
	return &ro
}

func (f *fixture) get(o client.Object, name string) {
	f.t.Helper()
	if err := f.c.Get(f.t.Context(), client.ObjectKey{Namespace: f.ns, Name: name}, o); err != nil {
		f.t.Fatal(err)
	}
}
