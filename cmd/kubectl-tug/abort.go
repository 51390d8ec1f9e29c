package main

import (
	"github.com/spf13/cobra"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

func newAbortCmd(o *options) *cobra.Command {
	return requestCmd(o, "abort NAME", "Abort a rollout: all traffic back to stable, canary scaled down",
		func() (string, *string, string) { return v1alpha1.AnnotationAbort, token(), "abort requested" })
}
