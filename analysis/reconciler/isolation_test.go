package reconciler_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	promadapter "github.com/tugboatdev/tugboat/analysis/prometheus"
	"github.com/tugboatdev/tugboat/analysis/reconciler"
	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/sandbox/cluster"
	"github.com/tugboatdev/tugboat/sandbox/promserver"
)

// silentServer takes connections and never answers; asked counts the
// queries it holds.
func silentServer(t *testing.T, asked *atomic.Int32) string {
	release := make(chan struct{})
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release); s.Close() })
	return s.URL
}

// startAnalysis runs the AnalysisRun controller, measuring with the
// Prometheus adapter, with two workers.
func startAnalysis(t *testing.T, env *cluster.Env, r *reconciler.Reconciler) {
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme: env.Scheme, Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0",
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	r.Client, r.Now = mgr.GetClient(), time.Now
	if err := r.SetupWithManager(mgr, 2); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func silentMetric(address, query string, count int32) v1alpha1.Metric {
	return v1alpha1.Metric{
		Name: "m", Interval: "1s", Count: ptr.To(intstr.FromInt32(count)), SuccessCondition: "result[0] >= 1",
		Provider: v1alpha1.MetricProvider{Prometheus: &v1alpha1.PrometheusMetric{Address: address, Query: query, Timeout: ptr.To[int64](60)}},
	}
}

// Tenants whose runs point at servers that take connections and never
// answer hold none of the controller's workers: another tenant's run, on
// the controller's Prometheus, is measured on schedule.
func TestASilentServerStallsNoOtherRun(t *testing.T) {
	env := cluster.Start(t)
	at := strconv.FormatInt(time.Now().Add(-time.Minute).Unix(), 10)
	prom := promserver.Start(t, promserver.Options{OpenMetrics: "# TYPE up gauge\nup{job=\"b\"} 1 " + at + "\n"})
	var asked atomic.Int32
	startAnalysis(t, env, &reconciler.Reconciler{
		Measurer: &promadapter.Provider{DefaultAddress: prom.URL, Guard: promadapter.Guard{AllowLoopback: true}},
	})
	metric := silentMetric
	// More silent servers than workers, each query with its full minute.
	for i := range 4 {
		run := &v1alpha1.AnalysisRun{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: fmt.Sprintf("silent-%d", i)},
			Spec: v1alpha1.AnalysisRunSpec{Metrics: []v1alpha1.Metric{metric(silentServer(t, &asked), fmt.Sprintf("up{run=\"%d\"}", i), 3)}}}
		if err := env.Client.Create(t.Context(), run); err != nil {
			t.Fatal(err)
		}
	}
	// The silent servers hold their queries before the other tenant comes.
	err := wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		return asked.Load() >= 4, nil
	})
	if err != nil {
		t.Fatalf("the silent runs never queried: %v", err)
	}
	b := &v1alpha1.AnalysisRun{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "other-tenant"},
		Spec: v1alpha1.AnalysisRunSpec{Metrics: []v1alpha1.Metric{metric("", `max(up{job="b"})`, 3)}}}
	if err := env.Client.Create(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	// Three measurements a second apart: done in a few seconds, not after
	// a minute of another tenant's silence.
	var got v1alpha1.AnalysisRun
	err = wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 15*time.Second, true, func(ctx context.Context) (bool, error) {
		err := env.Client.Get(ctx, client.ObjectKeyFromObject(b), &got)
		return err == nil && got.Status.Phase.Completed(), nil
	})
	if err != nil || got.Status.Phase != argo.AnalysisPhaseSuccessful {
		t.Fatalf("the other tenant's run after 15s: %v, status %+v", err, got.Status)
	}
}

// A measurement that gets no answer within the controller's bound errs with
// that reason, whatever its metric's timeout says.
func TestAMeasurementPastItsBoundErrs(t *testing.T) {
	env := cluster.Start(t)
	var asked atomic.Int32
	startAnalysis(t, env, &reconciler.Reconciler{
		Measurer:   &promadapter.Provider{Guard: promadapter.Guard{AllowLoopback: true}},
		MeasureFor: 2 * time.Second,
	})
	m := silentMetric(silentServer(t, &asked), "up", 3) // timeout: 60
	m.ConsecutiveErrorLimit = ptr.To(intstr.FromInt32(0))
	run := &v1alpha1.AnalysisRun{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "bounded"},
		Spec: v1alpha1.AnalysisRunSpec{Metrics: []v1alpha1.Metric{m}}}
	if err := env.Client.Create(t.Context(), run); err != nil {
		t.Fatal(err)
	}
	var got v1alpha1.AnalysisRun
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
		err := env.Client.Get(ctx, client.ObjectKeyFromObject(run), &got)
		return err == nil && got.Status.Phase.Completed(), nil
	})
	if err != nil || got.Status.Phase != argo.AnalysisPhaseError {
		t.Fatalf("after 20s: %v, status %+v", err, got.Status)
	}
	res := got.Status.MetricResults[0]
	if len(res.Measurements) != 1 || !strings.Contains(res.Measurements[0].Message, "no answer within 2s") {
		t.Errorf("measurements %+v, want one that says it had no answer within 2s", res.Measurements)
	}
	if d := res.Measurements[0].FinishedAt.Sub(res.Measurements[0].StartedAt.Time); d > 5*time.Second {
		t.Errorf("the measurement took %s", d)
	}
}
