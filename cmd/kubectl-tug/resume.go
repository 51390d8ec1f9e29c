package main

import (
	"github.com/spf13/cobra"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

func newResumeCmd(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "resume NAME",
		Short: "Let a paused rollout continue",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, key, err := o.key(args[0])
			if err != nil {
				return err
			}
			return request(cmd.Context(), c, key, v1alpha1.AnnotationPaused, nil, o.streams.Out, "resumed")
		},
	}
}
