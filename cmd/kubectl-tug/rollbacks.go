package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/printers"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

// rolledBackImage is one image's rollbacks across Rollouts, as rollbacks
// prints it. An entry of status.rollbacks that names no image counts under
// its revision's hash.
type rolledBackImage struct {
	Image string `json:"image"`
	// Rollouts counts the Rollouts that rolled back from it; In names them
	// (namespace/name).
	Rollouts  int      `json:"rollouts"`
	Aborted   int64    `json:"aborted"`
	Requested int64    `json:"requested"`
	In        []string `json:"in"`
}

func newRollbacksCmd(o *options) *cobra.Command {
	var all bool
	var out *output
	cmd := &cobra.Command{
		Use:   "rollbacks",
		Short: "List the versions rolled back most, across rollouts",
		Long: `List the images rolled back from most often across the namespace's rollouts
(or every namespace's, with -A): rollouts of them aborted, by analysis, a
deadline or a person, and rollbacks requested after they were promoted. One
version rolled back in many places points to a widespread problem. With -A
the first three rollouts each image was rolled back in are shown; -o wide
shows them all, and -o json and yaml print every count and rollout.`,
		Example: `  kubectl tug rollbacks -n prod
  kubectl tug rollbacks -A -o wide
  kubectl tug rollbacks -A -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, ns, err := o.client()
			if err != nil {
				return err
			}
			if all {
				ns = ""
			}
			images, err := rollbacks(cmd.Context(), c, ns)
			if err != nil {
				return err
			}
			if out.structured() {
				return out.print(o.streams.Out, images)
			}
			if len(images) == 0 {
				where := "namespace " + ns
				if all {
					where = "any namespace"
				}
				fmt.Fprintf(o.streams.ErrOut, "no rollbacks recorded in %s\n", where)
				return nil
			}
			return printRollbacks(o.streams.Out, images, printers.PrintOptions{WithNamespace: all, Wide: out.wide()})
		},
	}
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, "count the rollouts of every namespace")
	out = outputFlag(cmd, "json", "yaml", "wide")
	return cmd
}

// rollbacks sums the Rollouts' status.rollbacks by image, most first.
func rollbacks(ctx context.Context, c client.Client, ns string) ([]rolledBackImage, error) {
	var rollouts v1alpha1.RolloutList
	if err := c.List(ctx, &rollouts, client.InNamespace(ns)); err != nil {
		if ns == "" {
			return nil, fmt.Errorf("list rollouts: %w", err)
		}
		return nil, fmt.Errorf("list rollouts in namespace %s: %w", ns, err)
	}
	byImage := map[string]*rolledBackImage{}
	for _, ro := range rollouts.Items {
		name := ro.Namespace + "/" + ro.Name
		for _, n := range ro.Status.Rollbacks {
			if n.Aborted == 0 && n.Requested == 0 {
				continue
			}
			keys := dedupe(n.Images)
			if len(keys) == 0 {
				keys = dedupe([]string{n.Revision})
			}
			for _, k := range keys {
				img := byImage[k]
				if img == nil {
					img = &rolledBackImage{Image: k, In: []string{}}
					byImage[k] = img
				}
				img.Aborted += int64(n.Aborted)
				img.Requested += int64(n.Requested)
				if !slices.Contains(img.In, name) {
					img.In = append(img.In, name)
				}
			}
		}
	}
	images := make([]rolledBackImage, 0, len(byImage))
	for _, img := range byImage {
		slices.Sort(img.In)
		img.Rollouts = len(img.In)
		images = append(images, *img)
	}
	slices.SortFunc(images, func(a, b rolledBackImage) int {
		return cmp.Or(cmp.Compare(b.Aborted+b.Requested, a.Aborted+a.Requested), cmp.Compare(b.Rollouts, a.Rollouts), cmp.Compare(a.Image, b.Image))
	})
	return images, nil
}

// dedupe drops repeats, as of an image two containers run.
func dedupe(s []string) []string {
	out := make([]string, 0, len(s))
	for _, v := range s {
		if v != "" && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// printRollbacks prints the images as a table. The rollouts each was rolled
// back in are listed with WithNamespace (the first three) or Wide (all):
// within one namespace they are only counted.
func printRollbacks(out io.Writer, images []rolledBackImage, opts printers.PrintOptions) error {
	w := printers.GetNewTabWriter(out)
	seen := opts.WithNamespace || opts.Wide
	header := "IMAGE\tROLLOUTS\tABORTED\tREQUESTED"
	if seen {
		header += "\tSEEN IN"
	}
	fmt.Fprintln(w, header)
	for _, img := range images {
		fmt.Fprintf(w, "%s\t%d\t%d\t%d", img.Image, img.Rollouts, img.Aborted, img.Requested)
		if seen {
			shown := img.In
			if !opts.Wide {
				shown = img.In[:min(3, len(img.In))]
			}
			in := strings.Join(shown, ", ")
			if more := len(img.In) - len(shown); more > 0 {
				in += fmt.Sprintf(" and %d more", more)
			}
			fmt.Fprintf(w, "\t%s", in)
		}
		fmt.Fprintln(w)
	}
	return w.Flush()
}
