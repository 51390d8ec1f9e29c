package main

import (
	"github.com/spf13/cobra"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

func newRetryCmd(o *options) *cobra.Command {
	return requestCmd(o, "retry NAME", "Start an aborted rollout again from its first step",
		func() (string, *string, string) { return v1alpha1.AnnotationRetry, token(), "retry requested" })
}
