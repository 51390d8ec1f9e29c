package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/rollout"
)

// Exit codes of `kubectl tug wait`, for CI.
const (
	exitHealthy = 0 // healthy at the wanted revision
	exitFailed  = 1 // aborted, or stalled on an invalid spec (the reason is printed)
	exitPaused  = 2 // waiting for a person to promote
	exitTimeout = 3 // still progressing when the timeout ran out
	// exitTrouble is every verb's code when it could not do what was asked
	// (bad flags or input, no cluster, an object not found), so that a script
	// never reads trouble as a rollout's or a template's verdict.
	exitTrouble = 4
)

// waitResult is what `wait` found, as -o json prints it.
type waitResult struct {
	Name           string `json:"name"`
	Namespace      string `json:"namespace"`
	Result         string `json:"result"`
	ExitCode       int    `json:"exitCode"`
	WantRevision   string `json:"wantRevision"`
	StableRevision string `json:"stableRevision,omitempty"`
	CanaryRevision string `json:"canaryRevision,omitempty"`
	Phase          string `json:"phase,omitempty"`
	Reason         string `json:"reason,omitempty"`
	Message        string `json:"message,omitempty"`
}

func newWaitCmd(o *options) *cobra.Command {
	var (
		timeout  time.Duration
		revision string
		output   string
	)
	cmd := &cobra.Command{
		Use:   "wait NAME",
		Short: "Wait until a rollout is healthy at a revision (for CI)",
		Long: `Wait until the rollout is healthy at the wanted revision: by default the
target Deployment's current pod template, or --for-revision.

Exit codes: 0 healthy at the revision; 1 aborted or degraded (the reason is
printed); 2 paused, waiting for a person to promote; 3 timed out; 4 could
not wait (bad flags, no cluster, no such Rollout).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "" && output != "json" {
				return fmt.Errorf("-o: want json, got %q", output)
			}
			c, key, err := o.key(args[0])
			if err != nil {
				return err
			}
			res, err := waitFor(cmd.Context(), c, key, revision, timeout, 2*time.Second)
			if err != nil {
				return err
			}
			if err := printResult(o.streams.Out, res, output); err != nil {
				return err
			}
			if res.ExitCode != exitHealthy {
				return &exitError{code: res.ExitCode, err: errors.New(res.Result + ": " + res.Message)}
			}
			return nil
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Minute, "how long to wait")
	cmd.Flags().StringVar(&revision, "for-revision", "", "the revision to wait for (default: the target's current one)")
	cmd.Flags().StringVarP(&output, "output", "o", "", "json for a machine-readable result")
	return cmd
}

// waitFor polls the rollout until it settles on the wanted revision, fails,
// needs a person, or the timeout runs out.
func waitFor(ctx context.Context, c client.Client, key types.NamespacedName, want string, timeout, every time.Duration) (waitResult, error) {
	res := waitResult{Name: key.Name, Namespace: key.Namespace}
	err := wait.PollUntilContextTimeout(ctx, every, timeout, true, func(ctx context.Context) (bool, error) {
		var ro v1alpha1.Rollout
		if err := c.Get(ctx, key, &ro); err != nil {
			if apierrors.IsNotFound(err) || apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) {
				return false, fmt.Errorf("rollout %s: %w", key, err)
			}
			return false, nil // a passing fault: ask again
		}
		res.WantRevision = want
		if want == "" {
			var target appsv1.Deployment
			if err := c.Get(ctx, types.NamespacedName{Namespace: key.Namespace, Name: ro.Spec.TargetRef.Name}, &target); err != nil {
				if apierrors.IsNotFound(err) {
					return false, fmt.Errorf("target of rollout %s: %w", key, err)
				}
				return false, nil
			}
			res.WantRevision = rollout.Revision(target.Spec.Template)
		}
		judge(&ro, &res)
		return res.Result != "", nil
	})
	if err != nil && res.Result == "" {
		if ctx.Err() != nil || !wait.Interrupted(err) {
			return res, err
		}
		res.Result, res.ExitCode = "Timeout", exitTimeout
		res.Message = fmt.Sprintf("not healthy at revision %s after %s", res.WantRevision, timeout)
	}
	return res, nil
}

// judge fills in the result when the rollout has settled; a rollout still
// working on the wanted revision, or not yet started on it, leaves it empty.
func judge(ro *v1alpha1.Rollout, res *waitResult) {
	s := ro.Status
	res.StableRevision, res.CanaryRevision, res.Phase, res.Message = s.StableRevision, s.CanaryRevision, string(s.Phase), s.Message
	res.Result, res.ExitCode, res.Reason = "", 0, ""
	current := s.ObservedGeneration == ro.Generation
	onWanted := s.CanaryRevision == res.WantRevision
	switch {
	case current && s.Phase == v1alpha1.PhaseHealthy && s.StableRevision == res.WantRevision && s.CanaryRevision == "":
		res.Result, res.ExitCode = "Healthy", exitHealthy
	case current && s.Abort != nil && onWanted:
		res.Result, res.ExitCode, res.Reason = "Aborted", exitFailed, s.Abort.Reason
	case current && s.Phase == v1alpha1.PhaseDegraded && s.Abort == nil:
		res.Result, res.ExitCode = "Degraded", exitFailed
	case current && s.Phase == v1alpha1.PhasePaused && onWanted:
		res.Result, res.ExitCode = "Paused", exitPaused
	}
	for _, c := range s.Conditions {
		if c.Type == v1alpha1.ConditionReady && res.Reason == "" {
			res.Reason = c.Reason
		}
	}
}

func printResult(out io.Writer, res waitResult, format string) error {
	if format == "json" {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(res)
	}
	_, err := fmt.Fprintf(out, "rollout %s/%s: %s at revision %s (%s): %s\n", res.Namespace, res.Name, res.Result, res.WantRevision, res.Reason, res.Message)
	return err
}
