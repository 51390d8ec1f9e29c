package server

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/receiver"
)

// +kubebuilder:rbac:groups=tugboat.dev,resources=rollouts,verbs=get;patch
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get;patch

// act carries out an allowed request, as kubectl tug would: set image
// patches the Rollout's target, the others write the request annotation the
// controller answers. It returns the Rollout and what was done.
func (s *Server) act(ctx context.Context, receiverKey types.NamespacedName, req receiver.Request) (*v1alpha1.Rollout, string, error) {
	var ro v1alpha1.Rollout
	if err := s.o.Client.Get(ctx, types.NamespacedName{Namespace: receiverKey.Namespace, Name: req.Rollout}, &ro); err != nil {
		return nil, "", fmt.Errorf("rollout %s: %w", req.Rollout, err)
	}
	// The request's digest is unique per signed request: a fresh token.
	token := req.Digest[:16]
	switch req.Action {
	case receiver.SetImage:
		msg, err := s.setImage(ctx, &ro, req.Container, req.Image)
		return &ro, msg, err
	case receiver.Promote:
		return &ro, "promote requested", s.annotate(ctx, &ro, v1alpha1.AnnotationPromote, token)
	case receiver.Abort:
		return &ro, "abort requested", s.annotate(ctx, &ro, v1alpha1.AnnotationAbort, token)
	case receiver.Rollback:
		b, err := json.Marshal(v1alpha1.RollbackRequest{ID: token, ToRevision: req.ToRevision, Reason: req.Reason, User: "receiver " + receiverKey.Name})
		if err != nil {
			return &ro, "", err
		}
		msg := "rollback to the previous stable revision requested"
		if req.ToRevision > 0 {
			msg = fmt.Sprintf("rollback to revision %d requested", req.ToRevision)
		}
		return &ro, msg + " (request " + token + ")", s.annotate(ctx, &ro, v1alpha1.AnnotationRollback, string(b))
	}
	return &ro, "", fmt.Errorf("action %q", req.Action)
}

func (s *Server) annotate(ctx context.Context, ro *v1alpha1.Rollout, key, value string) error {
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{key: value}}})
	if err != nil {
		return err
	}
	if err := s.o.Client.Patch(ctx, ro, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return fmt.Errorf("annotate rollout %s: %w", ro.Name, err)
	}
	return nil
}

// setImage sets one container's image on the Rollout's target, with the
// resourceVersion it was read at, so that the patch is refused if the
// Deployment changed in between.
func (s *Server) setImage(ctx context.Context, ro *v1alpha1.Rollout, container, image string) (string, error) {
	ref := ro.Spec.TargetRef
	if ref.Kind != "Deployment" || ref.Name == "" || ref.Name == ro.Name+"-primary" {
		return "", fmt.Errorf("rollout %s: its target is not a Deployment it may set images on", ro.Name)
	}
	var d appsv1.Deployment
	if err := s.o.Client.Get(ctx, types.NamespacedName{Namespace: ro.Namespace, Name: ref.Name}, &d); err != nil {
		return "", fmt.Errorf("target of rollout %s: %w", ro.Name, err)
	}
	// Primaries carry Tugboat's label, not an owner reference; a Rollout
	// whose target names another Rollout's primary must not reach it.
	if metav1.GetControllerOf(&d) != nil || d.Labels["app.kubernetes.io/managed-by"] == "tugboat" {
		return "", fmt.Errorf("rollout %s: deployment %s is one Tugboat manages, not a target", ro.Name, d.Name)
	}
	field := ""
	pod := d.Spec.Template.Spec
	if i := slices.IndexFunc(pod.Containers, func(c corev1.Container) bool { return c.Name == container }); i >= 0 {
		field = "containers"
		if pod.Containers[i].Image == image {
			return fmt.Sprintf("deployment %s: container %s already runs %s; nothing changed", d.Name, container, image), nil
		}
	} else if i := slices.IndexFunc(pod.InitContainers, func(c corev1.Container) bool { return c.Name == container }); i >= 0 {
		field = "initContainers"
		if pod.InitContainers[i].Image == image {
			return fmt.Sprintf("deployment %s: init container %s already runs %s; nothing changed", d.Name, container, image), nil
		}
	} else {
		return "", fmt.Errorf("deployment %s has no container %q", d.Name, container)
	}
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"resourceVersion": d.ResourceVersion},
		"spec": map[string]any{"template": map[string]any{"spec": map[string]any{
			field: []map[string]string{{"name": container, "image": image}},
		}}},
	})
	if err != nil {
		return "", err
	}
	if err := s.o.Client.Patch(ctx, &d, client.RawPatch(types.StrategicMergePatchType, patch)); err != nil {
		return "", fmt.Errorf("patch deployment %s: %w", d.Name, err)
	}
	return fmt.Sprintf("deployment %s: container %s set to %s", d.Name, container, image), nil
}
