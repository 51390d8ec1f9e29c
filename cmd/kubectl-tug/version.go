package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tugboatdev/tugboat/version"
)

func newVersionCmd(o *options) *cobra.Command {
	var out *output
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the plugin's version",
		Long: `Print the version of this kubectl tug: the release it was built from, the
git revision and the Go version. It reads no kubeconfig. -o json or yaml
prints them as fields (version, revision, modified, goVersion).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := version.Get()
			if out.structured() {
				return out.print(o.streams.Out, v)
			}
			fmt.Fprintf(o.streams.Out, "kubectl tug %s\n", v)
			return nil
		},
	}
	out = outputFlag(cmd, "json", "yaml")
	return cmd
}
