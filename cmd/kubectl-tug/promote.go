package main

import (
	"github.com/spf13/cobra"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

func newPromoteCmd(o *options) *cobra.Command {
	var full bool
	cmd := &cobra.Command{
		Use:   "promote NAME",
		Short: "Move a rollout past its current step (a pause, an inconclusive analysis)",
		Long:  "Move a rollout past its current step. With --full, skip every remaining step and promote the canary.",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, key, err := o.key(args[0])
			if err != nil {
				return err
			}
			if full {
				return request(cmd.Context(), c, key, v1alpha1.AnnotationPromoteFull, token(), o.streams.Out, "full promotion requested")
			}
			return request(cmd.Context(), c, key, v1alpha1.AnnotationPromote, token(), o.streams.Out, "promotion requested")
		},
	}
	cmd.Flags().BoolVar(&full, "full", false, "skip the remaining steps and promote")
	return cmd
}
