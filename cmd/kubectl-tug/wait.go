package main

import (
	"context"
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

// waitResult is what `wait` found, as -o prints it.
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
	w := waitOptions{every: 2 * time.Second}
	var out *output
	cmd := &cobra.Command{
		Use:   "wait NAME",
		Short: "Wait until a rollout is healthy at a revision (for CI)",
		Long: `Wait until the rollout is healthy at the wanted revision: by default the
target Deployment's current pod template, or --for-revision.

Exit codes: 0 healthy at the revision; 1 aborted or degraded (the reason is
printed); 2 paused, waiting for a person to promote; 3 timed out; 4 could
not wait (bad flags, no cluster, no such Rollout). A cluster that refuses the
login, or that has not answered once within --connect-timeout, is a 4; once it
has answered, its errors are retried until --timeout.

-o json or yaml prints the result (result, exitCode, the revisions, reason
and message) for a script, with the same exit codes; when wait could not
wait (4), nothing is printed on stdout.`,
		Example: `  kubectl tug wait web --timeout 20m
  kubectl tug wait web --for-revision "$rev" -o json
  kubectl tug wait web -o yaml`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: o.completeRollout,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := w.check(); err != nil {
				return err
			}
			c, key, err := o.key(args[0])
			if err != nil {
				return err
			}
			res, err := waitFor(cmd.Context(), c, key, w)
			if err != nil {
				return o.withHost(err)
			}
			if err := printResult(o.streams.Out, res, out); err != nil {
				return err
			}
			if res.ExitCode != exitHealthy {
				return &exitError{code: res.ExitCode, err: errors.New(res.Result + ": " + res.Message)}
			}
			return nil
		},
	}
	w.flags(cmd, "Rollout")
	cmd.Flags().StringVar(&w.want, "for-revision", "", "the revision to wait for (default: the target's current one)")
	out = outputFlag(cmd, "json", "yaml")
	return cmd
}

// waitOptions say what `wait` waits for and how patiently.
type waitOptions struct {
	// want is the revision to wait for; empty means the target's current one.
	want string
	// timeout bounds the whole wait.
	timeout time.Duration
	// firstAnswer bounds how long the cluster may take to serve the Rollout
	// once. Until it has, an error more likely means a wrong kubeconfig or an
	// unreachable cluster than a passing fault, and waiting out the timeout
	// would only make CI slow to say so. It also bounds each request after.
	firstAnswer time.Duration
	// every is the time between polls.
	every time.Duration
}

// flags gives cmd --timeout and --connect-timeout, for waiting on a kind.
func (w *waitOptions) flags(cmd *cobra.Command, kind string) {
	cmd.Flags().DurationVar(&w.timeout, "timeout", 30*time.Minute, "how long to wait")
	cmd.Flags().DurationVar(&w.firstAnswer, "connect-timeout", 30*time.Second,
		"how long the cluster may take to first serve the "+kind+" (exit 4 if it does not), and each request after")
}

func (w waitOptions) check() error {
	if w.firstAnswer <= 0 {
		return fmt.Errorf("--connect-timeout: want a positive duration, got %s", w.firstAnswer)
	}
	return nil
}

// withHost names the cluster in an error that cannot: no answer from it.
func (o *options) withHost(err error) error {
	if cfg, cerr := o.flags.ToRESTConfig(); errors.Is(err, errNoAnswer) && cerr == nil {
		return fmt.Errorf("%s: %w", cfg.Host, err)
	}
	return err
}

// errNoAnswer is why wait gives up on a cluster that never served the
// Rollout: it could not wait, which is not the rollout's timeout.
var errNoAnswer = errors.New("no answer from the cluster")

// waitFor polls the rollout until it settles on the wanted revision, fails,
// needs a person, or the timeout runs out.
func waitFor(ctx context.Context, c client.Client, key types.NamespacedName, o waitOptions) (waitResult, error) {
	start := waitResult{Name: key.Name, Namespace: key.Namespace, WantRevision: o.want}
	res, settled, err := waitUntil(ctx, o, "rollout "+key.String(), start, func(ctx context.Context) (waitResult, bool, bool, error) {
		got := start // each poll's own: one given up on may outlive the wait
		answered, err := poll(ctx, c, key, o.want, &got)
		return got, got.Result != "", answered, err
	})
	if err != nil || settled {
		return res, err
	}
	res.Result, res.ExitCode = "Timeout", exitTimeout
	res.Message = fmt.Sprintf("not healthy at revision %s after %s", res.WantRevision, o.timeout)
	return res, nil
}

// waitUntil calls poll until it reports the object settled or the timeout
// runs out (settled false, no error), and returns what the last poll that
// worked found (start if none did). A refused login, a missing object, or a
// cluster that does not answer within o.firstAnswer is an error; other
// errors after the first answer are passing faults, asked again. answered,
// from poll, reports whether the cluster served the object, even if what
// poll read next failed.
func waitUntil[R any](ctx context.Context, o waitOptions, what string, start R, poll func(context.Context) (res R, settled, answered bool, err error)) (R, bool, error) {
	res, settled := start, false
	answerBy := time.Now().Add(o.firstAnswer)
	answered := false
	var last, failed error // the latest passing fault; why wait cannot go on
	stop := func(err error) (bool, error) {
		failed = err
		return false, err
	}
	noAnswer := func(within time.Duration) error {
		return fmt.Errorf("%w within %s: %w", errNoAnswer, within, last)
	}
	err := wait.PollUntilContextTimeout(ctx, o.every, o.timeout, true, func(ctx context.Context) (bool, error) {
		if !answered && last != nil && !time.Now().Before(answerBy) {
			return stop(noAnswer(o.firstAnswer))
		}
		deadline := answerBy
		if answered {
			deadline = time.Now().Add(o.firstAnswer)
		}
		ctx, cancel := context.WithDeadline(ctx, deadline)
		defer cancel()
		got, done, ok, err := pollBy(ctx, what, poll)
		answered = answered || ok
		switch {
		case err == nil:
			res, settled = got, done
			return done, nil
		case apierrors.IsNotFound(err) || apierrors.IsUnauthorized(err) || apierrors.IsForbidden(err):
			return stop(err)
		}
		last = err
		if !answered && !time.Now().Before(answerBy) {
			return stop(noAnswer(o.firstAnswer))
		}
		return false, nil // a passing fault: ask again
	})
	switch {
	case failed != nil:
		return res, false, failed
	case err == nil || settled:
		return res, settled, nil
	case ctx.Err() != nil || !wait.Interrupted(err):
		return res, false, err
	case !answered:
		return res, false, noAnswer(o.timeout)
	}
	return res, false, nil
}

// poll reads the rollout and its target once and judges them. answered
// reports whether the cluster served the Rollout, even if reading the
// target then failed.
func poll(ctx context.Context, c client.Client, key types.NamespacedName, want string, res *waitResult) (answered bool, err error) {
	var ro v1alpha1.Rollout
	if err := c.Get(ctx, key, &ro); err != nil {
		return false, fmt.Errorf("rollout %s: %w", key, err)
	}
	res.WantRevision = want
	if want == "" {
		var target appsv1.Deployment
		if err := c.Get(ctx, types.NamespacedName{Namespace: key.Namespace, Name: ro.Spec.TargetRef.Name}, &target); err != nil {
			return true, fmt.Errorf("target of rollout %s: %w", key, err)
		}
		res.WantRevision = rollout.Revision(target.Spec.Template)
	}
	judge(&ro, res)
	return true, nil
}

// pollBy is poll, waited on only until ctx ends. The REST mapper's discovery,
// which the first Get runs, takes no context (controller-runtime's apiutil),
// so a cluster that takes connections and never answers would hold poll past
// the first-answer limit. A poll given up on ends with its request timeout.
func pollBy[R any](ctx context.Context, what string, poll func(context.Context) (R, bool, bool, error)) (res R, settled, answered bool, err error) {
	type polled struct {
		res               R
		settled, answered bool
		err               error
	}
	done := make(chan polled, 1)
	go func() {
		var p polled
		p.res, p.settled, p.answered, p.err = poll(ctx)
		done <- p
	}()
	select {
	case got := <-done:
		return got.res, got.settled, got.answered, got.err
	case <-ctx.Done():
		return res, false, false, fmt.Errorf("%s: %w", what, ctx.Err())
	}
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

func printResult(out io.Writer, res waitResult, o *output) error {
	if o.structured() {
		return o.print(out, res)
	}
	_, err := fmt.Fprintf(out, "rollout %s/%s: %s at revision %s (%s): %s\n", res.Namespace, res.Name, res.Result, res.WantRevision, res.Reason, res.Message)
	return err
}
