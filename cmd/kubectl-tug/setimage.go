package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/rollout"
)

func newSetCmd(o *options) *cobra.Command {
	set := &cobra.Command{
		Use:   "set",
		Short: "Change a rollout's target Deployment, starting a rollout",
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("kubectl tug set: nothing called %q to set; there is kubectl tug set image", args[0])
			}
			return errors.New("kubectl tug set: say what to set: kubectl tug set image NAME CONTAINER=IMAGE")
		},
	}
	set.AddCommand(newSetImageCmd(o))
	return set
}

func newSetImageCmd(o *options) *cobra.Command {
	var out *output
	cmd := &cobra.Command{
		Use:   "image NAME CONTAINER=IMAGE [CONTAINER=IMAGE...]",
		Short: "Set container images on a rollout's target Deployment, starting a rollout",
		Long: `Set the image of each named container in the pod template of the Rollout's
target Deployment (spec.targetRef), for teams that deploy without GitOps.
Tugboat then rolls the new template out as it would any other. The Rollout
and its primary (<name>-primary) are never edited; the patch touches only the
named containers' images, so other edits of the Deployment are kept. A name
may be a container or an init container.

Every argument is checked before anything is written. An image that is
already set is left alone; if every one is, nothing is written. It prints the
template's revision, which kubectl tug wait --for-revision waits on; -o json
or yaml prints the target, the revision and each container's image and
whether it changed.

Exit codes: 0 done (or nothing to change); 4 could not do it (a bad
argument, a container the template does not have, no such Rollout or
Deployment, no permission to patch deployments.apps, no cluster).`,
		Example: `  kubectl tug set image web app=registry.example.com/web:1.4.2
  kubectl tug set image web app=web:1.4.2 migrate=web-migrate:1.4.2
  rev=$(kubectl tug set image web app=web:1.4.2 -o json | jq -r .revision)
  kubectl tug wait web --for-revision "$rev"`,
		Args:              cobra.MinimumNArgs(2),
		ValidArgsFunction: o.completeSetImage,
		RunE: func(cmd *cobra.Command, args []string) error {
			sets, err := parseImageSets(args[1:])
			if err != nil {
				return err
			}
			c, key, err := o.key(args[0])
			if err != nil {
				return err
			}
			res, err := setImage(cmd.Context(), c, key, sets)
			if err != nil {
				return err
			}
			if out.structured() {
				return out.print(o.streams.Out, res)
			}
			return printSetImage(o.streams.Out, res)
		},
	}
	out = outputFlag(cmd, "json", "yaml")
	return cmd
}

// imageSet is one CONTAINER=IMAGE argument.
type imageSet struct{ container, image string }

// setImageResult is what set image did, as -o prints it.
type setImageResult struct {
	Rollout    string `json:"rollout"`
	Namespace  string `json:"namespace"`
	Deployment string `json:"deployment"`
	// Revision is the target's template's, which kubectl tug wait
	// --for-revision takes.
	Revision   string           `json:"revision"`
	Containers []containerImage `json:"containers"`
}

// containerImage is one CONTAINER=IMAGE argument's outcome.
type containerImage struct {
	Container string `json:"container"`
	Image     string `json:"image"`
	// Changed is false for an image that was already set.
	Changed bool `json:"changed"`
}

// parseImageSets checks every CONTAINER=IMAGE argument, so that a bad one
// stops the command before it reads or writes anything.
func parseImageSets(args []string) ([]imageSet, error) {
	var sets []imageSet
	var bad []string
	seen := map[string]bool{}
	for _, arg := range args {
		container, image, ok := strings.Cut(arg, "=")
		switch {
		case !ok || container == "" || image == "":
			bad = append(bad, fmt.Sprintf("%q: want CONTAINER=IMAGE, both non-empty", arg))
		case strings.TrimSpace(image) != image || strings.TrimSpace(container) != container:
			bad = append(bad, fmt.Sprintf("%q: a container name or image with spaces around it", arg))
		case seen[container]:
			bad = append(bad, fmt.Sprintf("%q: container %s is named twice", arg, container))
		default:
			seen[container] = true
			sets = append(sets, imageSet{container, image})
		}
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("bad arguments, nothing was written: %s", strings.Join(bad, "; "))
	}
	return sets, nil
}

// setImage patches the images of the Rollout's target Deployment.
func setImage(ctx context.Context, c client.Client, key types.NamespacedName, sets []imageSet) (setImageResult, error) {
	res := setImageResult{Rollout: key.Name, Namespace: key.Namespace}
	var ro v1alpha1.Rollout
	if err := c.Get(ctx, key, &ro); err != nil {
		return res, fmt.Errorf("rollout %s: %w", key, err)
	}
	ref := ro.Spec.TargetRef
	if ref.Kind != "Deployment" || ref.Name == "" {
		return res, fmt.Errorf("rollout %s: its target is %s %q, not a Deployment; nothing was written", key, ref.Kind, ref.Name)
	}
	target := types.NamespacedName{Namespace: key.Namespace, Name: ref.Name}
	res.Deployment = ref.Name
	if ref.Name == key.Name+"-primary" {
		return res, fmt.Errorf("rollout %s: its target %s is named as its primary, which Tugboat manages; nothing was written", key, target)
	}
	var d appsv1.Deployment
	var changes []imageSet
	checked := false
	// A patch that carries the resourceVersion it was planned on is refused if
	// the Deployment changed since: the plan is then made again on the new one.
	err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		d = appsv1.Deployment{}
		if err := c.Get(ctx, target, &d); err != nil {
			return fmt.Errorf("target of rollout %s: deployment %s: %w", key, target, err)
		}
		if metav1.IsControlledBy(&d, &ro) {
			return fmt.Errorf("rollout %s: deployment %s is one Tugboat manages for it, not its target; nothing was written", key, target)
		}
		var err error
		if changes, err = planImages(&d.Spec.Template.Spec, sets); err != nil {
			return fmt.Errorf("deployment %s: %w; nothing was written", target, err)
		}
		if len(changes) == 0 {
			return nil
		}
		if !checked {
			if err := mayPatchDeployment(ctx, c, target); err != nil {
				return err
			}
			checked = true
		}
		patch, err := imagePatch(d.ResourceVersion, &d.Spec.Template.Spec, changes)
		if err != nil {
			return err
		}
		// Patch leaves the Deployment as the API server stored it, defaults
		// and all: the revision is computed on that.
		if err := c.Patch(ctx, &d, client.RawPatch(types.StrategicMergePatchType, patch)); err != nil {
			return fmt.Errorf("patch deployment %s: %w", target, err)
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	for _, s := range sets {
		changed := slices.Contains(changes, s)
		res.Containers = append(res.Containers, containerImage{Container: s.container, Image: s.image, Changed: changed})
	}
	res.Revision = rollout.Revision(d.Spec.Template)
	return res, nil
}

// printSetImage says what set image did: the images set, then those that
// were already, then the revision.
func printSetImage(out io.Writer, res setImageResult) error {
	target := res.Namespace + "/" + res.Deployment
	changed := 0
	for _, c := range res.Containers {
		if c.Changed {
			changed++
			fmt.Fprintf(out, "deployment %s: container %s image set to %s\n", target, c.Container, c.Image)
		}
	}
	for _, c := range res.Containers {
		if !c.Changed {
			fmt.Fprintf(out, "deployment %s: container %s image unchanged (%s)\n", target, c.Container, c.Image)
		}
	}
	if changed == 0 {
		fmt.Fprintf(out, "deployment %s: unchanged, nothing was written\n", target)
	}
	_, err := fmt.Fprintf(out, "revision %s\n", res.Revision)
	return err
}

// planImages returns the sets that change an image of spec, or an error
// naming a container spec does not have.
func planImages(spec *corev1.PodSpec, sets []imageSet) ([]imageSet, error) {
	var changes []imageSet
	var missing []string
	for _, s := range sets {
		c := findContainer(spec, s.container)
		switch {
		case c == nil:
			missing = append(missing, s.container)
		case c.Image != s.image:
			changes = append(changes, s)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("the pod template has no container %s (it has %s)", strings.Join(missing, ", "), containerNames(spec))
	}
	return changes, nil
}

func findContainer(spec *corev1.PodSpec, name string) *corev1.Container {
	for _, list := range [][]corev1.Container{spec.Containers, spec.InitContainers} {
		if i := slices.IndexFunc(list, func(c corev1.Container) bool { return c.Name == name }); i >= 0 {
			return &list[i]
		}
	}
	return nil
}

func containerNames(spec *corev1.PodSpec) string {
	var names []string
	for _, c := range spec.Containers {
		names = append(names, c.Name)
	}
	for _, c := range spec.InitContainers {
		names = append(names, c.Name+" (init)")
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// imagePatch is a strategic-merge patch that sets only the changed images:
// containers merge by name, so the others and every other field are left
// as they are. The resourceVersion makes it a precondition.
func imagePatch(resourceVersion string, spec *corev1.PodSpec, changes []imageSet) ([]byte, error) {
	var containers, initContainers []map[string]string
	for _, ch := range changes {
		entry := map[string]string{"name": ch.container, "image": ch.image}
		if slices.ContainsFunc(spec.Containers, func(c corev1.Container) bool { return c.Name == ch.container }) {
			containers = append(containers, entry)
		} else {
			initContainers = append(initContainers, entry)
		}
	}
	podSpec := map[string]any{}
	if len(containers) > 0 {
		podSpec["containers"] = containers
	}
	if len(initContainers) > 0 {
		podSpec["initContainers"] = initContainers
	}
	return json.Marshal(map[string]any{
		"metadata": map[string]any{"resourceVersion": resourceVersion},
		"spec":     map[string]any{"template": map[string]any{"spec": podSpec}},
	})
}

// mayPatchDeployment asks the API server whether the user may patch the
// target, so that a refusal names the permission and nothing is written.
func mayPatchDeployment(ctx context.Context, c client.Client, target types.NamespacedName) error {
	review := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Namespace: target.Namespace, Verb: "patch", Group: appsv1.GroupName, Resource: "deployments", Name: target.Name,
		}}}
	if err := c.Create(ctx, review); err != nil {
		return fmt.Errorf("deployment %s: check that you may patch it: %w", target, err)
	}
	if !review.Status.Allowed {
		return fmt.Errorf("deployment %s: you may not patch deployments.%s in namespace %s (ask for a role that grants it); nothing was written",
			target, appsv1.GroupName, target.Namespace)
	}
	return nil
}
