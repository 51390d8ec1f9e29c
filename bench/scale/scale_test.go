// Package scale measures the Rollout controller against a real API server on
// the kwok cluster: API writes per step, writes of a reconcile that changes
// nothing, and reconcile latency, CPU time and memory with many Rollouts
// progressing at once. Run it with `make bench`.
package scale

import (
	"context"
	"fmt"
	"math"
	"os"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	networkingv1 "istio.io/api/networking/v1"
	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/rollout/reconciler"
	"github.com/tugboatdev/tugboat/sandbox/cluster"
	"github.com/tugboatdev/tugboat/traffic/istio"
)

// writes counts the controller's mutating API calls by verb and kind.
type writes struct {
	mu sync.Mutex
	n  map[string]int
}

func (w *writes) add(verb string, o client.Object) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.n[fmt.Sprintf("%s %T", verb, o)]++
}

func (w *writes) reset() map[string]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := w.n
	w.n = map[string]int{}
	return n
}

func total(m map[string]int) int {
	t := 0
	for _, v := range m {
		t += v
	}
	return t
}

// latency is a snapshot of controller-runtime's reconcile-time histogram for
// the rollout controller: cumulative counts per upper bound, in seconds.
type latency map[float64]uint64

func snapshot(b *testing.B) latency {
	b.Helper()
	mfs, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		b.Fatal(err)
	}
	l := latency{}
	for _, mf := range mfs {
		if mf.GetName() != "controller_runtime_reconcile_time_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "controller" && lp.GetValue() == "rollout" {
					for _, bk := range m.GetHistogram().GetBucket() {
						l[bk.GetUpperBound()] += bk.GetCumulativeCount()
					}
					l[math.Inf(1)] += m.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	return l
}

// quantile of the reconciles between two snapshots, interpolated within
// buckets as PromQL's histogram_quantile does.
func quantile(before, after latency, q float64) (time.Duration, uint64) {
	bounds := make([]float64, 0, len(after))
	for ub := range after {
		bounds = append(bounds, ub)
	}
	sort.Float64s(bounds)
	n := after[math.Inf(1)] - before[math.Inf(1)]
	if n == 0 {
		return 0, 0
	}
	rank := q * float64(n)
	prevBound, prevCount := 0.0, 0.0
	for _, ub := range bounds {
		c := float64(after[ub] - before[ub])
		if c >= rank {
			if math.IsInf(ub, 1) {
				return time.Duration(prevBound * float64(time.Second)), n
			}
			frac := (rank - prevCount) / math.Max(c-prevCount, 1)
			return time.Duration((prevBound + (ub-prevBound)*frac) * float64(time.Second)), n
		}
		prevBound, prevCount = ub, c
	}
	return 0, n
}

type harness struct {
	c  *cluster.Cluster
	w  *writes
	r  *reconciler.Reconciler
	ns string
}

func start(b *testing.B, nodes int) *harness {
	b.Helper()
	log.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(zapcore.ErrorLevel)))
	c := cluster.StartCluster(b, cluster.ClusterOptions{Nodes: nodes, PodsPerNode: 1000})
	h := &harness{c: c, w: &writes{n: map[string]int{}}, ns: "scale"}
	if err := c.Client.Create(b.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: h.ns}}); err != nil {
		b.Fatal(err)
	}
	cfg := rest.CopyConfig(c.Config)
	cfg.QPS, cfg.Burst = 50, 100 // the controller's defaults
	count := interceptor.Funcs{
		Create: func(ctx context.Context, cl client.WithWatch, o client.Object, opts ...client.CreateOption) error {
			h.w.add("create", o)
			return cl.Create(ctx, o, opts...)
		},
		Update: func(ctx context.Context, cl client.WithWatch, o client.Object, opts ...client.UpdateOption) error {
			h.w.add("update", o)
			return cl.Update(ctx, o, opts...)
		},
		Patch: func(ctx context.Context, cl client.WithWatch, o client.Object, p client.Patch, opts ...client.PatchOption) error {
			h.w.add("patch", o)
			return cl.Patch(ctx, o, p, opts...)
		},
		Delete: func(ctx context.Context, cl client.WithWatch, o client.Object, opts ...client.DeleteOption) error {
			h.w.add("delete", o)
			return cl.Delete(ctx, o, opts...)
		},
		SubResourcePatch: func(ctx context.Context, cl client.Client, sub string, o client.Object, p client.Patch, opts ...client.SubResourcePatchOption) error {
			h.w.add("patch/"+sub, o)
			return cl.SubResource(sub).Patch(ctx, o, p, opts...)
		},
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 c.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
		NewClient: func(cfg *rest.Config, o client.Options) (client.Client, error) {
			cl, err := client.NewWithWatch(cfg, o)
			if err != nil {
				return nil, err
			}
			return interceptor.NewClient(cl, count), nil
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	h.r = &reconciler.Reconciler{
		Client:   mgr.GetClient(),
		Router:   &istio.Router{Client: mgr.GetClient()},
		Recorder: mgr.GetEventRecorder("tugboat"),
		Now:      time.Now,
	}
	if err := h.r.SetupWithManager(b.Context(), mgr, 4); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
	})
	return h
}

// apps creates n targets, VirtualServices and Rollouts, and waits until all
// are at rest.
func (h *harness) apps(b *testing.B, n int, steps []v1alpha1.Step) []types.NamespacedName {
	b.Helper()
	ctx := b.Context()
	keys := make([]types.NamespacedName, n)
	for i := range n {
		name := fmt.Sprintf("app-%03d", i)
		keys[i] = types.NamespacedName{Namespace: h.ns, Name: name}
		labels := map[string]string{"app": name}
		objs := []client.Object{
			&appsv1.Deployment{
				ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: name},
				Spec: appsv1.DeploymentSpec{
					Replicas: ptr.To[int32](1),
					Selector: &metav1.LabelSelector{MatchLabels: labels},
					Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
						Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:1"}}}},
				},
			},
			&istiov1.VirtualService{
				ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: name},
				Spec: networkingv1.VirtualService{Hosts: []string{name}, Http: []*networkingv1.HTTPRoute{{
					Name: "primary", Route: []*networkingv1.HTTPRouteDestination{
						{Destination: &networkingv1.Destination{Host: name + "-stable"}, Weight: 100},
						{Destination: &networkingv1.Destination{Host: name + "-canary"}, Weight: 0}},
				}}},
			},
			&v1alpha1.Rollout{
				ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: name},
				Spec: v1alpha1.RolloutSpec{
					TargetRef: v1alpha1.TargetRef{APIVersion: "apps/v1", Kind: "Deployment", Name: name},
					Service:   v1alpha1.ServiceSpec{Port: 80},
					TrafficRouting: v1alpha1.TrafficRouting{Istio: v1alpha1.IstioTrafficRouting{
						VirtualService: v1alpha1.IstioVirtualService{Name: name, Routes: []string{"primary"}}}},
					Steps: steps,
				},
			},
		}
		for _, o := range objs {
			if err := h.c.Client.Create(ctx, o); err != nil {
				b.Fatal(err)
			}
		}
	}
	h.await(b, keys, "at rest", func(ro *v1alpha1.Rollout, _ map[string]*appsv1.Deployment) bool {
		return ro.Status.Phase == v1alpha1.PhaseHealthy && ro.Status.StableRevision != ""
	})
	return keys
}

// release gives every target a new template and returns the old stable revisions.
func (h *harness) release(b *testing.B, keys []types.NamespacedName, image string) {
	b.Helper()
	for _, k := range keys {
		patch := fmt.Appendf(nil, `{"spec":{"template":{"spec":{"containers":[{"name":"app","image":%q}]}}}}`, image)
		if err := h.c.Client.Patch(b.Context(), &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: k.Namespace, Name: k.Name}},
			client.RawPatch(types.StrategicMergePatchType, patch)); err != nil {
			b.Fatal(err)
		}
	}
}

// await polls until every Rollout meets cond.
func (h *harness) await(b *testing.B, keys []types.NamespacedName, what string, cond func(*v1alpha1.Rollout, map[string]*appsv1.Deployment) bool) {
	b.Helper()
	var left atomic.Int64
	err := wait.PollUntilContextTimeout(b.Context(), time.Second, 15*time.Minute, true, func(ctx context.Context) (bool, error) {
		var list v1alpha1.RolloutList
		if err := h.c.Client.List(ctx, &list, client.InNamespace(h.ns)); err != nil {
			return false, err
		}
		var deps appsv1.DeploymentList
		if err := h.c.Client.List(ctx, &deps, client.InNamespace(h.ns)); err != nil {
			return false, err
		}
		byName := map[string]*appsv1.Deployment{}
		for i := range deps.Items {
			byName[deps.Items[i].Name] = &deps.Items[i]
		}
		n := 0
		for i := range list.Items {
			if !cond(&list.Items[i], byName) {
				n++
			}
		}
		left.Store(int64(n))
		return n == 0 && len(list.Items) == len(keys), nil
	})
	if err != nil {
		b.Fatalf("waiting for %s: %v (%d not yet)", what, err, left.Load())
	}
}

var steps = []v1alpha1.Step{
	{SetWeight: ptr.To[int32](20)},
	{Pause: &v1alpha1.Pause{Duration: ptr.To(intstr.FromString("5s"))}},
	{SetWeight: ptr.To[int32](60)},
	{Pause: &v1alpha1.Pause{Duration: ptr.To(intstr.FromString("5s"))}},
}

// BenchmarkWritesPerStep runs one rollout through four steps and counts the
// controller's writes per step, then reconciles the idle Rollout and counts
// the writes of reconciles that change nothing.
func BenchmarkWritesPerStep(b *testing.B) {
	h := start(b, 1)
	keys := h.apps(b, 1, steps)
	for i := 0; b.Loop(); i++ {
		h.w.reset()
		h.release(b, keys, fmt.Sprintf("app:%d", i+2))
		h.await(b, keys, "promoted", promoted)
		got := h.w.reset()
		// Step changes: start, four steps, promotion started, promoted.
		b.ReportMetric(float64(total(got))/7, "writes/step")
		b.Logf("writes for one rollout of %d steps: %v", len(steps), got)
	}
	for range 20 {
		if _, err := h.r.Reconcile(b.Context(), reconcile.Request{NamespacedName: keys[0]}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(total(h.w.reset()))/20, "writes/idle-reconcile")
}

// promoted: at rest with primary running the target's current template.
func promoted(ro *v1alpha1.Rollout, deps map[string]*appsv1.Deployment) bool {
	target, primary := deps[ro.Name], deps[ro.Name+"-primary"]
	return ro.Status.Phase == v1alpha1.PhaseHealthy && ro.Status.CanaryRevision == "" && target != nil && primary != nil &&
		primary.Spec.Template.Spec.Containers[0].Image == target.Spec.Template.Spec.Containers[0].Image
}

// BenchmarkRollouts500 releases 500 apps at once and measures how long they
// take to promote, the reconcile latency, and the controller's CPU and memory.
func BenchmarkRollouts500(b *testing.B) {
	const n = 500
	h := start(b, 4)
	keys := h.apps(b, n, steps)
	for i := 0; b.Loop(); i++ {
		h.w.reset()
		before := snapshot(b)
		var ru0 syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
		var peak atomic.Uint64
		stop := make(chan struct{})
		go func() {
			t := time.NewTicker(200 * time.Millisecond)
			defer t.Stop()
			var ms runtime.MemStats
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					runtime.ReadMemStats(&ms)
					if ms.HeapInuse > peak.Load() {
						peak.Store(ms.HeapInuse)
					}
				}
			}
		}()
		began := time.Now()
		h.release(b, keys, fmt.Sprintf("app:%d", i+2))
		h.await(b, keys, "all promoted", promoted)
		took := time.Since(began)
		close(stop)
		var ru1 syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
		cpu := time.Duration(ru1.Utime.Nano()+ru1.Stime.Nano()-ru0.Utime.Nano()-ru0.Stime.Nano()) * time.Nanosecond
		after := snapshot(b)
		p50, count := quantile(before, after, 0.50)
		p99, _ := quantile(before, after, 0.99)
		got := h.w.reset()
		b.ReportMetric(took.Seconds(), "s/500-rollouts")
		b.ReportMetric(float64(p50.Microseconds())/1000, "ms-p50-reconcile")
		b.ReportMetric(float64(p99.Microseconds())/1000, "ms-p99-reconcile")
		b.ReportMetric(float64(count)/n, "reconciles/rollout")
		b.ReportMetric(float64(total(got))/n, "writes/rollout")
		b.ReportMetric(cpu.Seconds(), "cpu-s")
		b.ReportMetric(float64(peak.Load())/(1<<20), "MiB-peak-heap")
		b.Logf("500 rollouts of %d steps promoted in %s; reconciles %d (p50 %s, p99 %s); writes %v; process CPU %s; peak heap %d MiB",
			len(steps), took.Round(time.Second), count, p50, p99, got, cpu.Round(time.Millisecond), peak.Load()>>20)
	}
}
