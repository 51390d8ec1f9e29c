package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/shadow"
)

// Exit codes of `kubectl tug preview wait`, beside exitFailed (1),
// exitTimeout (3) and exitTrouble (4), which mean what they do for a
// Rollout's wait.
const (
	exitSucceeded = 0 // the analysis passed
	exitNoVerdict = 2 // Inconclusive, Denied or Expired: neither passed nor failed
)

func newPreviewWaitCmd(o *options) *cobra.Command {
	w := waitOptions{every: 2 * time.Second}
	var out *output
	cmd := &cobra.Command{
		Use:   "wait NAME",
		Short: "Wait for a preview's verdict (for CI)",
		Long: `Wait until the preview's phase is final for its spec as it is now (status
observes the Preview's current generation, so a verdict on an older spec
does not count), and print the phase and why; on Failed or Inconclusive,
also each metric and why it failed. Denied ends the wait too: a preview
stays Denied until a mirror policy of the source's namespace allows it.

Exit codes: 0 Succeeded; 1 Failed; 2 Inconclusive, Denied or Expired; 3
timed out with no verdict; 4 could not wait (bad flags, no cluster, no such
Preview). A cluster that refuses the login, or that has not answered once
within --connect-timeout, is a 4; once it has answered, its errors are
retried until --timeout.

-o json or yaml prints the Preview as last seen instead, with the same exit
codes; when wait could not wait (4), nothing is printed on stdout.`,
		Example: `  kubectl tug preview wait pr-42 -n pr-42 --timeout 30m
  kubectl tug preview wait pr-42 -n pr-42 -o json | jq -r .status.message`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: o.completePreview,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := w.check(); err != nil {
				return err
			}
			c, key, err := o.key(args[0])
			if err != nil {
				return err
			}
			p, code, err := waitForPreview(cmd.Context(), c, key, w)
			if err != nil {
				return o.withHost(err)
			}
			says := verdictText(p, code, w.timeout)
			if out.structured() {
				err = out.print(o.streams.Out, p)
			} else {
				err = printVerdict(o.streams.Out, p, code, says)
			}
			if err != nil || code == exitSucceeded {
				return err
			}
			return &exitError{code: code, err: fmt.Errorf("preview %s: %s", key, says)}
		},
	}
	w.flags(cmd, "Preview")
	out = outputFlag(cmd, "json", "yaml")
	return cmd
}

// waitForPreview polls the preview until its phase is final for its
// current generation, or the timeout runs out (exitTimeout, with the
// Preview as last seen), and returns it with the exit code its phase means.
func waitForPreview(ctx context.Context, c client.Client, key types.NamespacedName, o waitOptions) (*v1alpha1.Preview, int, error) {
	p, settled, err := waitUntil(ctx, o, "preview "+key.String(), nil, func(ctx context.Context) (*v1alpha1.Preview, bool, bool, error) {
		p, err := getPreview(ctx, c, key)
		if err != nil {
			return nil, false, false, err
		}
		_, final := previewVerdict(p)
		return p, final, true, nil
	})
	switch {
	case err != nil:
		return nil, exitTrouble, err
	case !settled:
		return p, exitTimeout, nil
	}
	code, _ := previewVerdict(p)
	return p, code, nil
}

// previewVerdict is the exit code of the preview's phase, when that phase
// is final for the current generation. Denied is final for a wait: it
// changes only when a person changes a policy.
func previewVerdict(p *v1alpha1.Preview) (code int, final bool) {
	if !previewCurrent(p) {
		return 0, false
	}
	switch shadow.Phase(p.Status.Phase) {
	case shadow.Succeeded:
		return exitSucceeded, true
	case shadow.Failed:
		return exitFailed, true
	case shadow.Inconclusive, shadow.Denied, shadow.Expired:
		return exitNoVerdict, true
	}
	return 0, false
}

// verdictText says what the wait found.
func verdictText(p *v1alpha1.Preview, code int, timeout time.Duration) string {
	s := p.Status
	switch {
	case code == exitTimeout && !previewCurrent(p):
		return fmt.Sprintf("no verdict after %s: the controller has not yet seen generation %d (status is of generation %d: %s)",
			timeout, p.Generation, s.ObservedGeneration, orDash(s.Phase))
	case code == exitTimeout:
		return fmt.Sprintf("no verdict after %s: %s: %s", timeout, orDash(s.Phase), orDash(s.Message))
	case shadow.Phase(s.Phase) == shadow.Denied:
		return fmt.Sprintf("Denied: %s (the wait ends here: it stays Denied until a mirror policy in namespace %s allows it)",
			orDash(s.Message), p.Spec.Source.Namespace)
	}
	return s.Phase + ": " + orDash(s.Message)
}

// printVerdict prints what the wait found, and why the metrics failed when
// the analysis did not pass.
func printVerdict(out io.Writer, p *v1alpha1.Preview, code int, says string) error {
	if _, err := fmt.Fprintf(out, "preview %s/%s: %s\n", p.Namespace, p.Name, says); err != nil {
		return err
	}
	switch shadow.Phase(p.Status.Phase) {
	case shadow.Failed, shadow.Inconclusive:
		if code != exitTimeout {
			return printPreviewAnalysis(out, p, nil, palette{})
		}
	}
	return nil
}
