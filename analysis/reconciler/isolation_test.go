package reconciler_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
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

// A tenant whose runs point at a server that takes connections and never
// answers holds at most one of the controller's workers: another tenant's
// run, on the controller's Prometheus, is measured on schedule.
func TestASilentServerStallsNoOtherRun(t *testing.T) {
	env := cluster.Start(t)
	at := strconv.FormatInt(time.Now().Add(-time.Minute).Unix(), 10)
	prom := promserver.Start(t, promserver.Options{OpenMetrics: "# TYPE up gauge\nup{job=\"b\"} 1 " + at + "\n"})
	release := make(chan struct{})
	var asked atomic.Int32
	silent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		select { // takes the connection, never answers
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release); silent.Close() })

	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme: env.Scheme, Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0",
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := &reconciler.Reconciler{
		Client:   mgr.GetClient(),
		Measurer: &promadapter.Provider{DefaultAddress: prom.URL, Guard: promadapter.Guard{AllowLoopback: true}},
		Now:      time.Now,
	}
	if err := r.SetupWithManager(mgr, 2); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	metric := func(address, query string, count int32) v1alpha1.Metric {
		return v1alpha1.Metric{
			Name: "m", Interval: "1s", Count: ptr.To(intstr.FromInt32(count)), SuccessCondition: "result[0] >= 1",
			Provider: v1alpha1.MetricProvider{Prometheus: &v1alpha1.PrometheusMetric{Address: address, Query: query, Timeout: ptr.To[int64](60)}},
		}
	}
	// More silent runs than workers, each with its query's full minute.
	for i := range 4 {
		run := &v1alpha1.AnalysisRun{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: fmt.Sprintf("silent-%d", i)},
			Spec: v1alpha1.AnalysisRunSpec{Metrics: []v1alpha1.Metric{metric(silent.URL, fmt.Sprintf("up{run=\"%d\"}", i), 3)}}}
		if err := env.Client.Create(t.Context(), run); err != nil {
			t.Fatal(err)
		}
	}
	// The silent server holds its first query before the other tenant comes.
	err = wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		return asked.Load() >= 1, nil
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
