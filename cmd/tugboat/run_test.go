package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/sandbox/cluster"
)

// TestRunDrivesRollouts starts the controller as main does, with leader
// election, against a real API server, and sees it report on a Rollout.
func TestRunDrivesRollouts(t *testing.T) {
	env := cluster.Start(t)
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kc, env.KubeConfig, 0o600); err != nil {
		t.Fatal(err)
	}
	ro := &v1alpha1.Rollout{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "orphan"},
		Spec: v1alpha1.RolloutSpec{
			TargetRef: v1alpha1.TargetRef{APIVersion: "apps/v1", Kind: "Deployment", Name: "missing"},
			Service:   v1alpha1.ServiceSpec{Port: 80},
			TrafficRouting: v1alpha1.TrafficRouting{Istio: v1alpha1.IstioTrafficRouting{
				VirtualService: v1alpha1.IstioVirtualService{Name: "orphan", Routes: []string{"primary"}}}},
			Steps: []v1alpha1.Step{{Pause: &v1alpha1.Pause{}}},
		},
	}
	if err := env.Client.Create(t.Context(), ro); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, Options{
			Kubeconfig: kc, MetricsAddress: "0", HealthAddress: "0",
			LeaderElect: true, LeaderElectionNamespace: "default",
			QPS: 50, Burst: 100, Workers: 2, LogLevel: "error", LogFormat: "text", SyncPeriod: time.Hour,
		})
	}()
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(ro), ro); err != nil {
			return false, err
		}
		return ro.Status.Phase == v1alpha1.PhaseDegraded, nil
	})
	if err != nil {
		t.Fatalf("controller never reported on the rollout: %v (%+v)", err, ro.Status)
	}
	if ro.Status.Message != "deployment default/missing not found" {
		t.Errorf("status message %q", ro.Status.Message)
	}
	// The writes are recorded as tugboat's, not as the test binary's.
	var managers []string
	for _, f := range ro.ManagedFields {
		managers = append(managers, f.Manager+"/"+f.Subresource)
	}
	if !slices.Contains(managers, fieldOwner+"/status") {
		t.Errorf("managed fields of the rollout: %v, want %s's status among them", managers, fieldOwner)
	}
	// The controller's own metrics are served from controller-runtime's
	// registry, this process's. The analysis counters have series only once
	// a Rollout has AnalysisRuns (they are labelled by it), which this one
	// has not: rollout/reconciler's TestDashboardAndAlertsNameServedSeries
	// scrapes them.
	families, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	served := map[string]bool{}
	for _, f := range families {
		served[f.GetName()] = true
	}
	for _, name := range []string{
		"tugboat_rollout_phase", "tugboat_rollout_transitions_total",
		"tugboat_prometheus_queries_total", "tugboat_prometheus_query_duration_seconds", "tugboat_prometheus_queries_saved_total",
		"tugboat_build_info",
	} {
		if !served[name] {
			t.Errorf("metric %s is not served", name)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run: %v", err)
	}
}
