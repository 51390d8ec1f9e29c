package reconciler_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	"go.uber.org/zap/zapcore"
	networkingv1 "istio.io/api/networking/v1"
	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
	istiov1alpha3 "istio.io/client-go/pkg/apis/networking/v1alpha3"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
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

	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/notify"
	"github.com/tugboatdev/tugboat/sandbox/cluster"
	"github.com/tugboatdev/tugboat/shadow/reconciler"
	"github.com/tugboatdev/tugboat/traffic/istio"
)

// The tests share one API server; each has its own production and preview
// namespaces. The controller runs as a user bound to the generated
// ClusterRole, so the tests also prove that role suffices. No AnalysisRun
// controller runs: the tests write the runs' verdicts, as it would.
var (
	env            *cluster.Env
	controllerUser *rest.Config
)

func TestMain(m *testing.M) {
	log.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(zapcore.ErrorLevel)))
	var err error
	if env, err = cluster.New(cluster.Options{}); err != nil {
		fmt.Fprintln(os.Stderr, "start api server:", err)
		os.Exit(1)
	}
	if controllerUser, err = env.ControllerUser(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		_ = env.Stop()
		os.Exit(1)
	}
	code := m.Run()
	if err := env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stop api server:", err)
	}
	os.Exit(code)
}

var counter atomic.Int32

// clock is the controller's Now: the time, moved on by the tests.
type clock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return time.Now().Add(c.offset) }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// fixture is one test's namespaces and controller.
type fixture struct {
	t             *testing.T
	prod, preview string
	c             client.Client
	clock         *clock
}

// given creates a production namespace with a VirtualService "shop" (route
// primary) and a preview namespace, labelled as the test says, with the
// preview's Service, and starts a controller.
func given(t *testing.T, previewLabels map[string]string, with ...func(*reconciler.Reconciler)) *fixture {
	t.Helper()
	n := counter.Add(1)
	f := &fixture{t: t, prod: fmt.Sprintf("prod%d", n), preview: fmt.Sprintf("pr%d", n), c: env.Client, clock: &clock{}}
	for _, ns := range []*corev1.Namespace{
		{ObjectMeta: metav1.ObjectMeta{Name: f.prod}},
		{ObjectMeta: metav1.ObjectMeta{Name: f.preview, Labels: previewLabels}},
	} {
		f.create(ns)
	}
	f.create(&istiov1.VirtualService{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.prod, Name: "shop"},
		Spec: networkingv1.VirtualService{Hosts: []string{"shop"}, Http: []*networkingv1.HTTPRoute{{
			Name:  "primary",
			Route: []*networkingv1.HTTPRouteDestination{{Destination: &networkingv1.Destination{Host: "shop"}}},
		}}},
	})
	f.create(&corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.preview, Name: "shop"},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "shop"}, Ports: []corev1.ServicePort{{Port: 8080}}},
	})
	f.start(with...)
	return f
}

func (f *fixture) start(with ...func(*reconciler.Reconciler)) {
	f.t.Helper()
	mgr, err := ctrl.NewManager(controllerUser, ctrl.Options{
		Scheme:                 env.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		f.t.Fatal(err)
	}
	r := &reconciler.Reconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Router:    &istio.Router{Client: mgr.GetClient()},
		Recorder:  mgr.GetEventRecorder("tugboat"),
		Now:       f.clock.Now,
		// Short, so that the tests wait a little for the sanitizer too.
		SanitizerSettle: time.Second,
	}
	for _, w := range with {
		w(r)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := r.SetupWithManager(ctx, mgr, 2); err != nil {
		cancel()
		f.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	f.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			f.t.Errorf("controller: %v", err)
		}
	})
}

func (f *fixture) create(o client.Object) {
	f.t.Helper()
	if err := f.c.Create(f.t.Context(), o); err != nil {
		f.t.Fatalf("create %T %s: %v", o, o.GetName(), err)
	}
}

// policy lets namespaces labelled tugboat.dev/preview=true mirror the shop
// route, up to 20%, with x-tenant-token removed as well.
func (f *fixture) policy() *v1alpha1.MirrorPolicy {
	p := &v1alpha1.MirrorPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.prod, Name: "previews"},
		Spec: v1alpha1.MirrorPolicySpec{Rules: []v1alpha1.MirrorRule{{
			Name:       "pull-requests",
			Namespaces: metav1.LabelSelector{MatchLabels: map[string]string{"tugboat.dev/preview": "true"}},
			Routes:     []v1alpha1.PreviewRouteRef{{Name: "shop", Route: "primary"}},
			// The API server fills in the defaults.
			RemoveHeaders: []string{"x-tenant-token"},
		}}},
	}
	f.create(p)
	return p
}

func (f *fixture) newPreview(mut func(*v1alpha1.Preview)) *v1alpha1.Preview {
	f.t.Helper()
	p := &v1alpha1.Preview{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.preview, Name: "shop"},
		Spec: v1alpha1.PreviewSpec{
			Source:     v1alpha1.PreviewSource{Namespace: f.prod, VirtualService: &v1alpha1.PreviewRouteRef{Name: "shop", Route: "primary"}},
			Service:    v1alpha1.PreviewService{Name: "shop", Port: 8080},
			Percentage: 10,
		},
	}
	if mut != nil {
		mut(p)
	}
	f.create(p)
	return p
}

// eventually polls until cond holds for the Preview, or fails with what it
// last saw.
func (f *fixture) eventually(what string, cond func(*v1alpha1.Preview) bool) *v1alpha1.Preview {
	f.t.Helper()
	var p v1alpha1.Preview
	var lastErr error
	err := wait.PollUntilContextTimeout(f.t.Context(), 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		if lastErr = f.c.Get(ctx, client.ObjectKey{Namespace: f.preview, Name: "shop"}, &p); lastErr != nil {
			return false, nil
		}
		return cond(&p), nil
	})
	if err != nil {
		f.t.Fatalf("waiting for %s: %v (last read: %v)\nlast status: %+v", what, err, lastErr, p.Status)
	}
	return &p
}

// mirrors are the mirror hosts on the production VirtualService's routes,
// as "route: host=percentage".
func (f *fixture) mirrors() []string {
	f.t.Helper()
	var vs istiov1.VirtualService
	if err := f.c.Get(f.t.Context(), client.ObjectKey{Namespace: f.prod, Name: "shop"}, &vs); err != nil {
		f.t.Fatal(err)
	}
	var out []string
	for _, h := range vs.Spec.GetHttp() {
		for _, m := range h.GetMirrors() {
			out = append(out, fmt.Sprintf("%s: %s=%g", h.GetName(), m.GetDestination().GetHost(), m.GetPercentage().GetValue()))
		}
	}
	return out
}

func (f *fixture) eventuallyMirrors(what string, want int) []string {
	f.t.Helper()
	var got []string
	err := wait.PollUntilContextTimeout(f.t.Context(), 50*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		got = f.mirrors()
		return len(got) == want, nil
	})
	if err != nil {
		f.t.Fatalf("waiting for %s: %d mirrors, have %v", what, want, got)
	}
	return got
}

func (f *fixture) filter() (*istiov1alpha3.EnvoyFilter, error) {
	var ef istiov1alpha3.EnvoyFilter
	err := f.c.Get(f.t.Context(), client.ObjectKey{Namespace: f.preview, Name: "tugboat-preview-shop"}, &ef)
	return &ef, err
}

// verdict writes the AnalysisRun's phase, as the analysis controller would.
func (f *fixture) verdict(run string, phase argo.AnalysisPhase, message string) {
	f.t.Helper()
	err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		var ar v1alpha1.AnalysisRun
		if err := f.c.Get(f.t.Context(), client.ObjectKey{Namespace: f.preview, Name: run}, &ar); err != nil {
			return err
		}
		ar.Status.Phase, ar.Status.Message = phase, message
		ar.Status.MetricResults = []argo.MetricResult{{Name: "error-rate", Phase: phase, Failed: 1, Count: 3, Message: message}}
		return f.c.Status().Update(f.t.Context(), &ar)
	})
	if err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) template() {
	f.create(&v1alpha1.AnalysisTemplate{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.preview, Name: "preview-errors"},
		Spec: v1alpha1.AnalysisTemplateSpec{
			Args: []argo.Argument{{Name: "namespace"}},
			Metrics: []v1alpha1.Metric{{
				Name: "error-rate", SuccessCondition: "result[0] < 0.05",
				Provider: v1alpha1.MetricProvider{Prometheus: &v1alpha1.PrometheusMetric{Query: `sum(rate(istio_requests_total{destination_workload_namespace="{{args.namespace}}",response_code=~"5.."}[1m]))`}},
			}},
		},
	})
}

// notifications records what the reconciler hands over to send.
type notifications struct {
	mu  sync.Mutex
	got []notify.Event
}

func (n *notifications) Notify(_ string, _ []v1alpha1.Notification, e notify.Event) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.got = append(n.got, e)
}

func (n *notifications) event(i int) notify.Event {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.got[i]
}

func (n *notifications) names() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for _, e := range n.got {
		out = append(out, e.Name)
	}
	return out
}

func TestAllowedPreviewMirrorsWithSanitizerThenFailsAndStops(t *testing.T) {
	sent := &notifications{}
	f := given(t, map[string]string{"tugboat.dev/preview": "true"}, func(r *reconciler.Reconciler) { r.Notifier = sent })
	f.policy()
	f.template()
	f.newPreview(func(p *v1alpha1.Preview) {
		p.Spec.Notifications = []v1alpha1.Notification{{ProviderRef: v1alpha1.LocalObjectReference{Name: "team"}}}
		p.Spec.Analysis = &v1alpha1.Analysis{
			Templates: []v1alpha1.AnalysisTemplateRef{{TemplateName: "preview-errors"}},
			Args:      []argo.AnalysisRunArgument{{Name: "namespace", ValueFrom: &argo.ArgumentValueFrom{FieldRef: &argo.FieldRef{FieldPath: "metadata.namespace"}}}},
		}
	})
	p := f.eventually("Mirroring", func(p *v1alpha1.Preview) bool { return p.Status.Phase == "Mirroring" })
	if p.Status.Rule != "previews/pull-requests" || !slices.Contains(p.Status.RemovedHeaders, "x-tenant-token") || !slices.Contains(p.Status.RemovedHeaders, "authorization") {
		t.Errorf("status names rule %q and removes %v", p.Status.Rule, p.Status.RemovedHeaders)
	}
	if p.Status.Source != f.prod+"/shop/primary" || p.Status.ExpiresAt == nil || p.Status.MirroringSince == nil {
		t.Errorf("status: %+v", p.Status)
	}
	if !slices.Contains(p.Finalizers, "tugboat.dev/preview-mirror") {
		t.Errorf("finalizers %v", p.Finalizers)
	}
	host := "shop." + f.preview + ".svc.cluster.local"
	// One mirroring route per method asked for (GET and HEAD by default).
	if got := f.mirrors(); len(got) != 2 || !strings.HasSuffix(got[0], ": "+host+"=10") || !strings.HasSuffix(got[1], ": "+host+"=10") {
		t.Errorf("mirrors %v", got)
	}
	ef, err := f.filter()
	if err != nil {
		t.Fatalf("the sanitizer is not there while copies flow: %v", err)
	}
	if got := ef.Spec.GetWorkloadSelector().GetLabels(); got["app"] != "shop" || len(got) != 1 {
		t.Errorf("the sanitizer selects %v, want the Service's selector", got)
	}
	lua := ef.Spec.GetConfigPatches()[0].GetPatch().GetValue().GetFields()["typed_config"].GetStructValue().GetFields()["default_source_code"].GetStructValue().GetFields()["inline_string"].GetStringValue()
	if !strings.Contains(lua, `"x-tenant-token"`) || !strings.Contains(lua, `["shop.`+f.prod+`"] = true`) {
		t.Errorf("the sanitizer's script does not name the headers and production's hosts:\n%s", lua)
	}
	var run v1alpha1.AnalysisRun
	if err := f.c.Get(t.Context(), client.ObjectKey{Namespace: f.preview, Name: "shop-preview-1"}, &run); err != nil {
		t.Fatalf("no analysis run: %v", err)
	}
	if !metav1.IsControlledBy(&run, p) || len(run.Spec.Args) != 1 || ptr.Deref(run.Spec.Args[0].Value, "") != f.preview {
		t.Errorf("run %+v, want it owned by the preview with the namespace argument from its field", run.Spec.Args)
	}

	f.verdict("shop-preview-1", argo.AnalysisPhaseFailed, "metric error-rate failed: 0.31 is not < 0.05")
	p = f.eventually("Failed", func(p *v1alpha1.Preview) bool { return p.Status.Phase == "Failed" })
	if !strings.Contains(p.Status.Message, "0.31 is not < 0.05") || p.Status.Analysis == nil || p.Status.Analysis.Phase != argo.AnalysisPhaseFailed {
		t.Errorf("a failed preview explains itself: %q %+v", p.Status.Message, p.Status.Analysis)
	}
	if got := f.mirrors(); len(got) != 0 {
		t.Errorf("a failed preview still receives copies: %v", got)
	}
	if err := wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		return slices.Equal(sent.names(), []string{"mirroring", "failed"}), nil
	}); err != nil {
		t.Errorf("notifications %v: want mirroring, then failed", sent.names())
	} else if e := sent.event(1); e.Object.Kind != "Preview" || e.Reason != "Failed" || e.Type() != "dev.tugboat.preview.failed.v1" || !strings.Contains(e.Message, "0.31 is not < 0.05") {
		t.Errorf("failed: %+v", e)
	}
	// The sanitizer stays while the Preview does: a copy still in flight
	// from a proxy that has not heard of the removal is stripped too.
	if _, err := f.filter(); err != nil {
		t.Errorf("the sanitizer went with the mirror: %v", err)
	}
}

func TestDeniedPreviewsNameTheRule(t *testing.T) {
	for _, tc := range []struct {
		name   string
		labels map[string]string
		policy bool
		mut    func(*v1alpha1.Preview)
		want   string
	}{
		{"no policy", map[string]string{"tugboat.dev/preview": "true"}, false, nil, "no mirror policy in namespace"},
		{"namespace not selected", map[string]string{"team": "other"}, true, nil, "rule previews/pull-requests: namespace pr"},
		{"over the maximum", map[string]string{"tugboat.dev/preview": "true"}, true, func(p *v1alpha1.Preview) { p.Spec.Percentage = 50 }, "percentage 50 is over its maxPercentage 10"},
		{"POST without the policy's opt-in", map[string]string{"tugboat.dev/preview": "true"}, true, func(p *v1alpha1.Preview) {
			p.Spec.Methods, p.Spec.AllowUnsafeMethods = []string{"GET", "POST"}, true
		}, "method POST is not among its methods"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := given(t, tc.labels)
			if tc.policy {
				f.policy()
			}
			f.newPreview(tc.mut)
			p := f.eventually("Denied", func(p *v1alpha1.Preview) bool { return p.Status.Phase == "Denied" })
			if !strings.Contains(p.Status.Message, tc.want) {
				t.Errorf("message %q, want it to contain %q", p.Status.Message, tc.want)
			}
			if got := f.mirrors(); len(got) != 0 {
				t.Errorf("a denied preview receives copies: %v", got)
			}
		})
	}
}

func TestMirrorGoesWhenPolicyWithdrawnTTLRunsOutOrDeleted(t *testing.T) {
	t.Run("policy withdrawn", func(t *testing.T) {
		f := given(t, map[string]string{"tugboat.dev/preview": "true"})
		pol := f.policy()
		f.newPreview(nil)
		f.eventually("Mirroring", func(p *v1alpha1.Preview) bool { return p.Status.Phase == "Mirroring" })
		f.eventuallyMirrors("the mirror", 2)
		if err := f.c.Delete(t.Context(), pol); err != nil {
			t.Fatal(err)
		}
		p := f.eventually("Denied", func(p *v1alpha1.Preview) bool { return p.Status.Phase == "Denied" })
		if got := f.mirrors(); len(got) != 0 {
			t.Errorf("copies flow after the policy went (%s): %v", p.Status.Message, got)
		}
	})
	t.Run("ttl runs out", func(t *testing.T) {
		f := given(t, map[string]string{"tugboat.dev/preview": "true"})
		f.policy()
		f.newPreview(func(p *v1alpha1.Preview) { p.Spec.TTL = &metav1.Duration{Duration: time.Hour} })
		f.eventually("Mirroring", func(p *v1alpha1.Preview) bool { return p.Status.Phase == "Mirroring" })
		f.eventuallyMirrors("the mirror", 2)
		f.clock.add(2 * time.Hour)
		// Any event reconciles it; the controller would wake at expiry.
		f.touch()
		f.eventually("Expired", func(p *v1alpha1.Preview) bool { return p.Status.Phase == "Expired" })
		if got := f.mirrors(); len(got) != 0 {
			t.Errorf("an expired preview receives copies: %v", got)
		}
	})
	t.Run("deleted", func(t *testing.T) {
		f := given(t, map[string]string{"tugboat.dev/preview": "true"})
		f.policy()
		p := f.newPreview(nil)
		f.eventually("Mirroring", func(p *v1alpha1.Preview) bool { return p.Status.Phase == "Mirroring" })
		f.eventuallyMirrors("the mirror", 2)
		if err := f.c.Delete(t.Context(), p); err != nil {
			t.Fatal(err)
		}
		err := wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			return apierrors.IsNotFound(f.c.Get(ctx, client.ObjectKeyFromObject(p), &v1alpha1.Preview{})), nil
		})
		if err != nil {
			t.Fatalf("the preview was never let go: %v", err)
		}
		if got := f.mirrors(); len(got) != 0 {
			t.Errorf("a deleted preview's mirror stays: %v", got)
		}
		if _, err := f.filter(); !apierrors.IsNotFound(err) {
			t.Errorf("a deleted preview's sanitizer stays: %v", err)
		}
	})
	t.Run("finalizer taken off by hand, then deleted", func(t *testing.T) {
		f := given(t, map[string]string{"tugboat.dev/preview": "true"})
		f.policy()
		p := f.newPreview(nil)
		f.eventually("Mirroring", func(p *v1alpha1.Preview) bool { return p.Status.Phase == "Mirroring" })
		f.eventuallyMirrors("the mirror", 2)
		err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
			if err := f.c.Get(t.Context(), client.ObjectKeyFromObject(p), p); err != nil {
				return err
			}
			p.Finalizers = nil
			return f.c.Update(t.Context(), p)
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := f.c.Delete(t.Context(), p); err != nil {
			t.Fatal(err)
		}
		f.eventuallyMirrors("the orphaned mirror swept", 0)
		err = wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
			_, err := f.filter()
			return apierrors.IsNotFound(err), nil
		})
		if err != nil {
			t.Errorf("the orphan's sanitizer stays: %v", err)
		}
	})
}

func TestPreviewInItsSourceNamespaceWaits(t *testing.T) {
	f := given(t, map[string]string{"tugboat.dev/preview": "true"})
	f.policy()
	f.newPreview(func(p *v1alpha1.Preview) { p.Spec.Source.Namespace = f.preview })
	p := f.eventually("Pending", func(p *v1alpha1.Preview) bool { return p.Status.Phase == "Pending" })
	if !strings.Contains(p.Status.Message, "cannot copy from its own namespace") {
		t.Errorf("message %q", p.Status.Message)
	}
}

func TestPendingWhileSomethingIsMissing(t *testing.T) {
	f := given(t, map[string]string{"tugboat.dev/preview": "true"})
	f.policy()
	f.newPreview(func(p *v1alpha1.Preview) { p.Spec.Service.Name = "web" })
	p := f.eventually("Pending", func(p *v1alpha1.Preview) bool { return p.Status.Phase == "Pending" })
	if want := "service " + f.preview + "/web not found"; !strings.Contains(p.Status.Message, want) {
		t.Errorf("message %q, want %q", p.Status.Message, want)
	}
	f.create(&corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.preview, Name: "web"},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Port: 8080}}},
	})
	f.eventually("Mirroring once the Service is there", func(p *v1alpha1.Preview) bool { return p.Status.Phase == "Mirroring" })
}

// edit reads o again, changes it with mutate and writes it, trying again
// on a conflict.
func (f *fixture) edit(o client.Object, mutate func()) {
	f.t.Helper()
	err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		if err := f.c.Get(f.t.Context(), client.ObjectKeyFromObject(o), o); err != nil {
			return err
		}
		mutate()
		return f.c.Update(f.t.Context(), o)
	})
	if err != nil {
		f.t.Fatal(err)
	}
}

// touch changes an annotation, which wakes the controller.
func (f *fixture) touch() {
	f.t.Helper()
	err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		var p v1alpha1.Preview
		if err := f.c.Get(f.t.Context(), client.ObjectKey{Namespace: f.preview, Name: "shop"}, &p); err != nil {
			return err
		}
		if p.Annotations == nil {
			p.Annotations = map[string]string{}
		}
		p.Annotations["test/touched"] = time.Now().String()
		return f.c.Update(f.t.Context(), &p)
	})
	if err != nil {
		f.t.Fatal(err)
	}
}

func TestARegexEnvoyCannotReadWaits(t *testing.T) {
	f := given(t, map[string]string{"tugboat.dev/preview": "true"})
	f.policy()
	f.newPreview(func(p *v1alpha1.Preview) {
		p.Spec.Match = []v1alpha1.PreviewMatch{{Path: &v1alpha1.StringMatch{Regex: "/api/(v1"}}}
	})
	p := f.eventually("Pending", func(p *v1alpha1.Preview) bool { return p.Status.Phase == "Pending" })
	if !strings.Contains(p.Status.Message, "spec.match[0].path.regex") {
		t.Errorf("message %q", p.Status.Message)
	}
	if got := f.mirrors(); len(got) != 0 {
		t.Errorf("mirrors %v", got)
	}
}

func TestATCPPortWaits(t *testing.T) {
	for _, name := range []string{"tcp-app", "https"} {
		t.Run(name, func(t *testing.T) {
			f := given(t, map[string]string{"tugboat.dev/preview": "true"})
			f.policy()
			f.create(&corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Namespace: f.preview, Name: "raw"},
				Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "raw"}, Ports: []corev1.ServicePort{{Name: name, Port: 8080}}},
			})
			f.newPreview(func(p *v1alpha1.Preview) { p.Spec.Service.Name = "raw" })
			p := f.eventually("Pending", func(p *v1alpha1.Preview) bool { return p.Status.Phase == "Pending" })
			if !strings.Contains(p.Status.Message, "is declared TCP") {
				t.Errorf("message %q", p.Status.Message)
			}
		})
	}
}
