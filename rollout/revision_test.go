package rollout

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestRevision(t *testing.T) {
	a := corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:1"}}}}
	b := *a.DeepCopy()
	if Revision(a) != Revision(b) {
		t.Error("equal templates, different revisions")
	}
	b.Spec.Containers[0].Image = "app:2"
	if Revision(a) == Revision(b) {
		t.Error("different templates, same revision")
	}
}
