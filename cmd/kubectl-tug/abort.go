package main

import (
	"github.com/spf13/cobra"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

func newAbortCmd(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "abort NAME",
		Short: "Abort a rollout: all traffic back to stable, canary scaled down",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, key, err := o.key(args[0])
			if err != nil {
				return err
			}
			return request(cmd.Context(), c, key, v1alpha1.AnnotationAbort, token(), o.streams.Out, "abort requested")
		},
	}
}
