// Command tugboat is the Tugboat controller manager: it drives Rollouts,
// moving Istio weights through canary steps.
package main

import (
	"fmt"
	"os"
	_ "time/tzdata" // deployment windows' time zones, whatever the image carries

	// CA roots for HTTPS (Slack, Teams, a Prometheus) where the image has
	// none of its own: it holds the binary alone.
	_ "golang.org/x/crypto/x509roots/fallback"

	"github.com/spf13/cobra"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/tugboatdev/tugboat/version"
)

func main() {
	cmd := &cobra.Command{
		Use:           "tugboat",
		Short:         "Progressive delivery on Istio: the controller",
		Version:       version.Get().String(),
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o, err := loadOptions(cmd.Flags(), os.Getenv)
			if err != nil {
				return err
			}
			return run(ctrl.SetupSignalHandler(), o)
		},
	}
	bindFlags(cmd.Flags())
	if err := cmd.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "tugboat:", err)
		os.Exit(1)
	}
}
