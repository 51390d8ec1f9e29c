package main

import (
	"github.com/spf13/cobra"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

func newPromoteCmd(o *options) *cobra.Command {
	var full bool
	cmd := requestCmd(o, "promote NAME", "Move a rollout past its current step (a pause, an inconclusive analysis)",
		func() (string, *string, string) {
			if full {
				return v1alpha1.AnnotationPromoteFull, token(), "full promotion requested"
			}
			return v1alpha1.AnnotationPromote, token(), "promotion requested"
		})
	cmd.Long = "Move a rollout past its current step. With --full, skip every remaining step and promote the canary."
	cmd.Example = `  kubectl tug promote web
  kubectl tug promote web --full
  kubectl tug promote web -o json | jq -r '.metadata.annotations["tugboat.dev/promote"]'`
	cmd.Flags().BoolVar(&full, "full", false, "skip the remaining steps and promote")
	return cmd
}
