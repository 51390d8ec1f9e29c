package main

import (
	"github.com/spf13/cobra"
	"k8s.io/utils/ptr"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

func newPauseCmd(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "pause NAME",
		Short: "Hold a rollout where it is until resumed",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, key, err := o.key(args[0])
			if err != nil {
				return err
			}
			return request(cmd.Context(), c, key, v1alpha1.AnnotationPaused, ptr.To("true"), o.streams.Out, "paused")
		},
	}
}
