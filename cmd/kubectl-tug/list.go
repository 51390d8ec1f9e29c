package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/printers"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

func newListCmd(o *options) *cobra.Command {
	var all bool
	var out *output
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List rollouts with their step, weight and phase",
		Long: `List the namespace's rollouts (or every namespace's, with -A) with their
step, canary weight, phase and revisions. -o wide adds each one's target and
message; -o json and yaml print the Rollout objects as a List, and -o name
their names, as kubectl get does.`,
		Example: `  kubectl tug list -n prod
  kubectl tug list -A -o wide
  kubectl tug list -o json | jq -r '.items[] | select(.status.phase == "Paused") | .metadata.name'
  kubectl tug list -o name`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, ns, err := o.client()
			if err != nil {
				return err
			}
			if all {
				ns = ""
			}
			rollouts, err := list(cmd.Context(), c, ns)
			if err != nil {
				return err
			}
			if out.structured() {
				return out.print(o.streams.Out, asList("Rollout", rollouts))
			}
			return printList(o.streams.Out, rollouts, time.Now(), printers.PrintOptions{Wide: out.wide()})
		},
	}
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, "list rollouts in every namespace")
	out = outputFlag(cmd, "json", "yaml", "name", "wide")
	return cmd
}

// list reads the rollouts of namespace ns, or of every namespace if ns is
// empty.
func list(ctx context.Context, c client.Client, ns string) ([]v1alpha1.Rollout, error) {
	var rollouts v1alpha1.RolloutList
	if err := c.List(ctx, &rollouts, client.InNamespace(ns)); err != nil {
		return nil, fmt.Errorf("list rollouts: %w", err)
	}
	return rollouts.Items, nil
}

// asList is objects of one of Tugboat's kinds as kubectl get prints several:
// a v1 List whose items carry their own apiVersion and kind.
func asList[T any, PT interface {
	*T
	client.Object
}](kind string, items []T) *corev1.List {
	l := &corev1.List{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "List"}, Items: []runtime.RawExtension{}}
	for i := range items {
		obj := PT(&items[i])
		obj.GetObjectKind().SetGroupVersionKind(v1alpha1.GroupVersion.WithKind(kind))
		l.Items = append(l.Items, runtime.RawExtension{Object: obj})
	}
	return l
}

// printList prints the rollouts as a table; Wide adds each one's target and
// message.
func printList(out io.Writer, rollouts []v1alpha1.Rollout, now time.Time, opts printers.PrintOptions) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	header := "NAMESPACE\tNAME\tSTEP\tWEIGHT\tPHASE\tSTABLE\tCANARY\tAGE"
	if opts.Wide {
		header += "\tTARGET\tMESSAGE"
	}
	fmt.Fprintln(w, header)
	for _, ro := range rollouts {
		step := "-"
		if i := ro.Status.CurrentStepIndex; i != nil {
			step = fmt.Sprintf("%d/%d", *i, len(ro.Spec.Steps))
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%d%%\t%s\t%s\t%s\t%s", ro.Namespace, ro.Name, step, ro.Status.CanaryWeight,
			orDash(string(ro.Status.Phase)), orDash(ro.Status.StableRevision), orDash(ro.Status.CanaryRevision), age(now, ro.CreationTimestamp.Time))
		if opts.Wide {
			fmt.Fprintf(w, "\t%s/%s\t%s", strings.ToLower(ro.Spec.TargetRef.Kind), ro.Spec.TargetRef.Name, orDash(ro.Status.Message))
		}
		fmt.Fprintln(w)
	}
	return w.Flush()
}
