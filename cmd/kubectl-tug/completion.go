package main

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/receiver"
)

// Completion asks the cluster with the command line's connection flags
// (kubectl passes them on to kubectl_complete-tug); a cluster that does not
// answer in time, or refuses, completes nothing rather than hanging the shell.
const completionTimeout = 5 * time.Second

// completeRollout completes a Rollout's name as a verb's first argument,
// each with its phase and step as the description.
func (o *options) completeRollout(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return o.rolloutNames(cmd, toComplete)
}

func (o *options) rolloutNames(cmd *cobra.Command, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	ctx, cancel := completionContext(cmd)
	defer cancel()
	c, ns, err := o.client()
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	rollouts, err := list(ctx, c, ns)
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	var names []cobra.Completion
	for _, ro := range rollouts {
		if strings.HasPrefix(ro.Name, toComplete) {
			names = append(names, cobra.CompletionWithDesc(ro.Name, rolloutSummary(&ro)))
		}
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}

// rolloutSummary is a Rollout in a few words: "Paused, step 1/3, canary 20%".
func rolloutSummary(ro *v1alpha1.Rollout) string {
	parts := []string{cmp.Or(string(ro.Status.Phase), "no status yet")}
	if i := ro.Status.CurrentStepIndex; i != nil {
		parts = append(parts, fmt.Sprintf("step %d/%d", *i, len(ro.Spec.Steps)))
	}
	if ro.Status.CanaryWeight > 0 {
		parts = append(parts, fmt.Sprintf("canary %d%%", ro.Status.CanaryWeight))
	}
	return strings.Join(parts, ", ")
}

// completePreview completes a Preview's name as a verb's first argument.
func (o *options) completePreview(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ctx, cancel := completionContext(cmd)
	defer cancel()
	c, ns, err := o.client()
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	var previews v1alpha1.PreviewList
	if err := c.List(ctx, &previews, client.InNamespace(ns)); err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	var names []cobra.Completion
	for _, p := range previews.Items {
		if strings.HasPrefix(p.Name, toComplete) {
			names = append(names, cobra.CompletionWithDesc(p.Name, cmp.Or(string(p.Status.Phase), "no status yet")))
		}
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}

// completeSetImage completes set image's arguments: the Rollout, then
// CONTAINER= for each container of its target's pod template not yet given.
func (o *options) completeSetImage(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) == 0 {
		return o.rolloutNames(cmd, toComplete)
	}
	if strings.Contains(toComplete, "=") {
		return nil, cobra.ShellCompDirectiveNoFileComp // an image: nothing to offer
	}
	ctx, cancel := completionContext(cmd)
	defer cancel()
	c, key, err := o.key(args[0])
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	var ro v1alpha1.Rollout
	if err := c.Get(ctx, key, &ro); err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	var d appsv1.Deployment
	if err := c.Get(ctx, client.ObjectKey{Namespace: key.Namespace, Name: ro.Spec.TargetRef.Name}, &d); err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	given := map[string]bool{}
	for _, a := range args[1:] {
		given[strings.SplitN(a, "=", 2)[0]] = true
	}
	var names []cobra.Completion
	for _, ctr := range slices.Concat(d.Spec.Template.Spec.InitContainers, d.Spec.Template.Spec.Containers) {
		if !given[ctr.Name] && strings.HasPrefix(ctr.Name, toComplete) {
			names = append(names, cobra.CompletionWithDesc(ctr.Name+"=", "now "+ctr.Image))
		}
	}
	return names, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
}

// completeTrigger completes trigger's ACTION; the Rollout is named on the
// Receiver's side, where the plugin has no credentials, so nothing follows.
func completeTrigger(_ *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return []cobra.Completion{receiver.SetImage, receiver.Promote, receiver.Abort, receiver.Rollback}, cobra.ShellCompDirectiveNoFileComp
}

// registerConnectionCompletion completes kubectl's connection flags: -n
// from the cluster's namespaces, --context, --cluster and --user from the
// kubeconfig.
func (o *options) registerConnectionCompletion(root *cobra.Command) {
	_ = root.RegisterFlagCompletionFunc("namespace", func(cmd *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		ctx, cancel := completionContext(cmd)
		defer cancel()
		c, _, err := o.client()
		if err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		var namespaces corev1.NamespaceList
		if err := c.List(ctx, &namespaces); err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		var names []cobra.Completion
		for _, ns := range namespaces.Items {
			if strings.HasPrefix(ns.Name, toComplete) {
				names = append(names, ns.Name)
			}
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	})
	fromKubeconfig := func(names func(*kubeconfigNames) []string) cobra.CompletionFunc {
		return func(_ *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			raw, err := o.flags.ToRawKubeConfigLoader().RawConfig()
			if err != nil {
				return nil, cobra.ShellCompDirectiveError
			}
			kn := &kubeconfigNames{}
			for name := range raw.Contexts {
				kn.contexts = append(kn.contexts, name)
			}
			for name := range raw.Clusters {
				kn.clusters = append(kn.clusters, name)
			}
			for name := range raw.AuthInfos {
				kn.users = append(kn.users, name)
			}
			var out []cobra.Completion
			for _, name := range names(kn) {
				if strings.HasPrefix(name, toComplete) {
					out = append(out, name)
				}
			}
			slices.Sort(out)
			return out, cobra.ShellCompDirectiveNoFileComp
		}
	}
	_ = root.RegisterFlagCompletionFunc("context", fromKubeconfig(func(k *kubeconfigNames) []string { return k.contexts }))
	_ = root.RegisterFlagCompletionFunc("cluster", fromKubeconfig(func(k *kubeconfigNames) []string { return k.clusters }))
	_ = root.RegisterFlagCompletionFunc("user", fromKubeconfig(func(k *kubeconfigNames) []string { return k.users }))
}

type kubeconfigNames struct{ contexts, clusters, users []string }

func completionContext(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	return context.WithTimeout(cmp.Or(cmd.Context(), context.Background()), completionTimeout)
}
