package cluster_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
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

// TestJobsCompleteOrFailAsAnnotated: a Job's pod completes on the kwok
// cluster, and fails when annotated sandbox.tugboat.dev/exit-code, so the
// Job controller marks one Job Complete and the other Failed.
func TestJobsCompleteOrFailAsAnnotated(t *testing.T) {
	c := cluster.StartCluster(t, cluster.ClusterOptions{})
	ctx := t.Context()
	job := func(name string, annotations map[string]string) *batchv1.Job {
		j := &batchv1.Job{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
			Spec: batchv1.JobSpec{
				BackoffLimit: ptr.To[int32](0),
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Annotations: annotations},
					Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{
						Name: "smoke", Image: "curlimages/curl:8.10.1",
					}}},
				},
			},
		}
		if err := c.Client.Create(ctx, j); err != nil {
			t.Fatal(err)
		}
		return j
	}
	for _, tc := range []struct {
		job  *batchv1.Job
		want batchv1.JobConditionType
	}{
		{job("passes", nil), batchv1.JobComplete},
		{job("fails", map[string]string{"sandbox.tugboat.dev/exit-code": "1"}), batchv1.JobFailed},
	} {
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			if err := c.Client.Get(ctx, client.ObjectKeyFromObject(tc.job), tc.job); err != nil {
				return false, err
			}
			for _, cond := range tc.job.Status.Conditions {
				if (cond.Type == batchv1.JobComplete || cond.Type == batchv1.JobFailed) && cond.Status == corev1.ConditionTrue {
					if cond.Type != tc.want {
						return false, fmt.Errorf("job %s: %s, want %s", tc.job.Name, cond.Type, tc.want)
					}
					return true, nil
				}
			}
			return false, nil
		})
		if err != nil {
			t.Fatalf("job %s: %v (status %+v)\n%s", tc.job.Name, err, tc.job.Status, c.Logs(15))
		}
	}
}
