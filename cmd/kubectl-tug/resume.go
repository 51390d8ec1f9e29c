package main

import (
	"github.com/spf13/cobra"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

func newResumeCmd(o *options) *cobra.Command {
	// A nil value removes the paused annotation.
	return requestCmd(o, "resume NAME", "Let a paused rollout continue",
		func() (string, *string, string) { return v1alpha1.AnnotationPaused, nil, "resumed" })
}
