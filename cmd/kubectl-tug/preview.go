package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

func newPreviewCmd(o *options) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "preview",
		Aliases: []string{"previews", "tpv"},
		Short:   "Create, show, wait on and delete previews (production traffic copied to a preview)",
		Long: `A Preview, in a preview environment's namespace, copies a share of a
production route's requests to the preview's Service, throws the preview's
answers away, and judges the preview by analysis. The production namespace
allows it with a MirrorPolicy; without one the preview is Denied.

kubectl tug preview create starts one (or starts it over), wait waits for
its verdict, for CI, and delete removes it once the mirror is gone.`,
		Example: `  kubectl tug preview create pr-42 -n pr-42 --source-namespace prod --rollout web --service web --port 8080 --template success-rate
  kubectl tug preview wait pr-42 -n pr-42 --timeout 30m
  kubectl tug preview get pr-42 -n pr-42
  kubectl tug preview list -A
  kubectl tug preview delete pr-42 -n pr-42`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("kubectl tug preview: no verb %q; there are create, get, list, wait and delete", args[0])
			}
			return errors.New("kubectl tug preview: say what to do: create, get, list, wait or delete")
		},
	}
	cmd.AddCommand(newPreviewCreateCmd(o), newPreviewGetCmd(o), newPreviewListCmd(o), newPreviewWaitCmd(o), newPreviewDeleteCmd(o))
	return cmd
}

// getPreview reads a Preview with its apiVersion and kind set, as -o prints
// it: the client does not promise them on typed objects.
func getPreview(ctx context.Context, c client.Client, key types.NamespacedName) (*v1alpha1.Preview, error) {
	var p v1alpha1.Preview
	if err := c.Get(ctx, key, &p); err != nil {
		return nil, fmt.Errorf("preview %s: %w", key, err)
	}
	p.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("Preview"))
	return &p, nil
}

// previewSource is the production route copied from: as status names it
// once the controller has found it, else as the spec asks for it.
func previewSource(p *v1alpha1.Preview) string {
	src := p.Spec.Source
	switch {
	case p.Status.Source != "":
		return p.Status.Source
	case src.VirtualService != nil:
		return src.Namespace + "/" + src.VirtualService.Name + "/" + src.VirtualService.Route
	}
	return "rollout " + src.Namespace + "/" + src.Rollout
}

// previewCurrent reports whether the preview's status is of its spec as it
// is now: a phase reached for an older generation says nothing of this one.
func previewCurrent(p *v1alpha1.Preview) bool {
	return p.Status.ObservedGeneration == p.Generation
}
