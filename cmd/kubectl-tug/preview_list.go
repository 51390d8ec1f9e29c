package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/printers"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

func newPreviewListCmd(o *options) *cobra.Command {
	var all bool
	var out *output
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List previews with their source, percentage, phase and expiry",
		Long: `List the namespace's previews (or every namespace's, with -A) with the route
each copies from, the percentage copied, the phase and when it expires.
-o wide adds the mirror policy rule that allows each (or came closest) and
its message; -o json and yaml print the Preview objects as a List, and -o
name their names, as kubectl get does.`,
		Example: `  kubectl tug preview list -n pr-42
  kubectl tug preview list -A -o wide
  kubectl tug preview list -A -o json | jq -r '.items[] | select(.status.phase == "Denied") | .metadata.name'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, ns, err := o.client()
			if err != nil {
				return err
			}
			if all {
				ns = ""
			}
			previews, err := listPreviews(cmd.Context(), c, ns)
			switch {
			case err != nil:
				return err
			case out.structured():
				return out.print(o.streams.Out, asList("Preview", previews))
			case len(previews) == 0 && all:
				fmt.Fprintln(o.streams.ErrOut, "no previews in any namespace")
				return nil
			case len(previews) == 0:
				fmt.Fprintf(o.streams.ErrOut, "no previews in namespace %s\n", ns)
				return nil
			}
			return printPreviews(o.streams.Out, previews, time.Now(), printers.PrintOptions{WithNamespace: all, Wide: out.wide()})
		},
	}
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, "list previews in every namespace")
	out = outputFlag(cmd, "json", "yaml", "name", "wide")
	return cmd
}

// listPreviews reads the previews of namespace ns, or of every namespace if
// ns is empty.
func listPreviews(ctx context.Context, c client.Client, ns string) ([]v1alpha1.Preview, error) {
	var previews v1alpha1.PreviewList
	if err := c.List(ctx, &previews, client.InNamespace(ns)); err != nil {
		if ns == "" {
			return nil, fmt.Errorf("list previews: %w", err)
		}
		return nil, fmt.Errorf("list previews in namespace %s: %w", ns, err)
	}
	return previews.Items, nil
}

// printPreviews prints the previews as a table: WithNamespace adds each
// one's namespace, Wide its rule and message.
func printPreviews(out io.Writer, previews []v1alpha1.Preview, now time.Time, opts printers.PrintOptions) error {
	w := printers.GetNewTabWriter(out)
	header := "NAME\tSOURCE\tPERCENT\tPHASE\tEXPIRES\tAGE"
	if opts.WithNamespace {
		header = "NAMESPACE\t" + header
	}
	if opts.Wide {
		header += "\tRULE\tMESSAGE"
	}
	fmt.Fprintln(w, header)
	for i := range previews {
		p := &previews[i]
		if opts.WithNamespace {
			fmt.Fprintf(w, "%s\t", p.Namespace)
		}
		expires := "-"
		if t := p.Status.ExpiresAt; t != nil {
			expires = relative(now, t.Time)
		}
		phase := orDash(p.Status.Phase)
		if p.Status.Phase != "" && !previewCurrent(p) {
			phase += " (old spec)"
		}
		fmt.Fprintf(w, "%s\t%s\t%d%%\t%s\t%s\t%s", p.Name, previewSource(p), p.Spec.Percentage, phase, expires, age(now, p.CreationTimestamp.Time))
		if opts.Wide {
			fmt.Fprintf(w, "\t%s\t%s", orDash(p.Status.Rule), orDash(p.Status.Message))
		}
		fmt.Fprintln(w)
	}
	return w.Flush()
}
