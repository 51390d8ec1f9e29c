package cluster_test

import (
	"context"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tugboatdev/tugboat/sandbox/cluster"
)

// TestDeploymentBecomesReady runs a Deployment on the kwok cluster: the
// controller manager creates its pods, the scheduler places them on fake
// nodes, and kwok marks them Ready with IPs.
func TestDeploymentBecomesReady(t *testing.T) {
	c := cluster.StartCluster(t, cluster.ClusterOptions{})
	ctx := t.Context()
	labels := map[string]string{"app": "podinfo"}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](3),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "podinfo", Image: "ghcr.io/stefanprodan/podinfo:6.7.0",
				}}},
			},
		},
	}
	if err := c.Client.Create(ctx, dep); err != nil {
		t.Fatal(err)
	}
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		if err := c.Client.Get(ctx, client.ObjectKeyFromObject(dep), dep); err != nil {
			return false, err
		}
		return dep.Status.ReadyReplicas == 3 && dep.Status.ObservedGeneration == dep.Generation, nil
	})
	if err != nil {
		t.Fatalf("deployment not ready: %v (status %+v)\n%s", err, dep.Status, c.Logs(15))
	}
	var pods corev1.PodList
	if err := c.Client.List(ctx, &pods, client.InNamespace("default"), client.MatchingLabels(labels)); err != nil {
		t.Fatal(err)
	}
	ready := 0
	for _, p := range pods.Items {
		for _, cond := range p.Status.Conditions {
			if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue && p.Status.PodIP != "" && p.Spec.NodeName != "" {
				ready++
			}
		}
	}
	if ready != 3 {
		t.Errorf("want 3 Ready pods with IPs on nodes, got %d of %d", ready, len(pods.Items))
	}
}
