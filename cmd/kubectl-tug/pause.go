package main

import (
	"github.com/spf13/cobra"
	"k8s.io/utils/ptr"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

func newPauseCmd(o *options) *cobra.Command {
	return requestCmd(o, "pause NAME", "Hold a rollout where it is until resumed",
		func() (string, *string, string) { return v1alpha1.AnnotationPaused, ptr.To("true"), "paused" })
}
