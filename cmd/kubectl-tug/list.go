package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

func newListCmd(o *options) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List rollouts with their step, weight and phase",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, ns, err := o.client()
			if err != nil {
				return err
			}
			if all {
				ns = ""
			}
			return list(cmd.Context(), c, ns, time.Now(), o.streams.Out)
		},
	}
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, "list rollouts in every namespace")
	return cmd
}

func list(ctx context.Context, c client.Client, ns string, now time.Time, out io.Writer) error {
	var rollouts v1alpha1.RolloutList
	if err := c.List(ctx, &rollouts, client.InNamespace(ns)); err != nil {
		return fmt.Errorf("list rollouts: %w", err)
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAMESPACE\tNAME\tSTEP\tWEIGHT\tPHASE\tSTABLE\tCANARY\tAGE")
	for _, ro := range rollouts.Items {
		step := "-"
		if i := ro.Status.CurrentStepIndex; i != nil {
			step = fmt.Sprintf("%d/%d", *i, len(ro.Spec.Steps))
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%d%%\t%s\t%s\t%s\t%s\n", ro.Namespace, ro.Name, step, ro.Status.CanaryWeight,
			orDash(string(ro.Status.Phase)), orDash(ro.Status.StableRevision), orDash(ro.Status.CanaryRevision), age(now, ro.CreationTimestamp.Time))
	}
	return w.Flush()
}
