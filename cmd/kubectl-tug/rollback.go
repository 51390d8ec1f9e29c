package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

// Exit codes of `kubectl tug rollback`; 4 (exitTrouble) is, as for every
// verb, a request that could not be made.
const (
	exitRolledBack = 0 // the controller carried the request out
	exitRefused    = 1 // the controller refused it (the reason is printed)
	exitPending    = 2 // written, but not answered within --timeout
)

// rollbackResult is the controller's answer to a rollback request (or to
// --cancel), as -o prints it; ExitCode is the code rollback exits with.
type rollbackResult struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	// Request is the request's id, which the controller answers in
	// status.rollbackRequest (also for --cancel, once
	// status.observedRequests.rollbackCancel takes it).
	Request string `json:"request"`
	Cancel  bool   `json:"cancel,omitempty"`
	// Result is RolledBack, Unpinned (--cancel), Refused, Pending, or, for a
	// rollback through the steps, RollingBack (still on its way at the
	// timeout), Aborted or Ended (cancelled or replaced on its way).
	Result         string `json:"result"`
	ExitCode       int    `json:"exitCode"`
	Message        string `json:"message"`
	StableRevision string `json:"stableRevision,omitempty"`
	// Pinned is the rollback that holds the rollout, when one does.
	Pinned *v1alpha1.RolloutRollback `json:"pinned,omitempty"`
}

// rollbackOptions say what `rollback` asks for and how long it waits.
type rollbackOptions struct {
	toRevision int64
	reason     string
	cancel     bool
	timeout    time.Duration
	every      time.Duration
}

func newRollbackCmd(o *options) *cobra.Command {
	r := rollbackOptions{every: 500 * time.Millisecond}
	var out *output
	cmd := &cobra.Command{
		Use:   "rollback NAME",
		Short: "Go back to a revision from history and pin the rollout there",
		Long: `Ask the controller to serve an earlier revision (kubectl tug history lists
them) and to hold the rollout there while the target's template is the one
rolled back from. The request is an annotation, never an edit of the spec, so
a GitOps tool keeps showing the target in sync. A new template on the target
ends the pin, as does kubectl tug rollback --cancel.

Without --to-revision it goes back to the revision that was stable before
the one serving. It waits for the controller's answer and prints it. A
revision within spec.rollback.fastTrackRevisions serves at once; one further
back goes through the steps again, as a canary gated by analysis, and
rollback waits until it holds (exit 0), is aborted or ended on its way
(exit 1), or --timeout runs out while it is on its way (exit 2).

-o json or yaml prints the answer (result, exitCode, message, the revision
serving and the pin) with the same exit codes; when rollback could not ask
(4), nothing is printed on stdout.

Exit codes: 0 done; 1 refused by the controller (the reason is printed);
2 written but not answered within --timeout; 4 could not ask (no permission
to patch the Rollout, bad flags, no cluster, no such Rollout).`,
		Example: `  kubectl tug rollback web --reason "checkout errors since 10:30"
  kubectl tug rollback web --to-revision 3
  kubectl tug rollback web --to-revision 3 -o json
  kubectl tug rollback web --to-revision 1 --timeout 15m   # through the steps
  kubectl tug rollback web --cancel`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: o.completeRollout,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case r.cancel && (r.toRevision != 0 || r.reason != ""):
				return errors.New("--cancel takes neither --to-revision nor --reason")
			case r.toRevision < 0:
				return fmt.Errorf("--to-revision: want a revision number from kubectl tug history, got %d", r.toRevision)
			case len(r.reason) > 1024:
				return fmt.Errorf("--reason: at most 1024 bytes, got %d", len(r.reason))
			case r.timeout <= 0:
				return fmt.Errorf("--timeout: want a positive duration, got %s", r.timeout)
			}
			c, key, err := o.key(args[0])
			if err != nil {
				return err
			}
			if err := mayPatch(cmd.Context(), c, key); err != nil {
				return err
			}
			progress := o.streams.Out // the request is written: the wait has begun
			if out.structured() {
				progress = o.streams.ErrOut
			}
			res, err := rollback(cmd.Context(), c, key, r, whoami(cmd.Context(), c), progress)
			switch {
			case err != nil:
				return err
			case out.structured():
				err = out.print(o.streams.Out, res)
			case res.ExitCode == exitRolledBack:
				_, err = fmt.Fprintf(o.streams.Out, "rollout %s: %s\n", key, res.Message)
			}
			if err != nil || res.ExitCode == exitRolledBack {
				return err
			}
			return &exitError{code: res.ExitCode, err: fmt.Errorf("rollout %s: %s", key, res.Message)}
		},
	}
	cmd.Flags().Int64Var(&r.toRevision, "to-revision", 0, "the history number to go back to (default: the one stable before the revision serving)")
	cmd.Flags().StringVar(&r.reason, "reason", "", "why, recorded with the rollback")
	cmd.Flags().BoolVar(&r.cancel, "cancel", false, "lift the pin of a rollback, so the target's template rolls out")
	cmd.Flags().DurationVar(&r.timeout, "timeout", 30*time.Second, "how long to wait for the controller's answer")
	out = outputFlag(cmd, "json", "yaml")
	return cmd
}

// mayPatch asks the API server whether the user may patch the Rollout, so
// that a refusal names the permission and nothing is written.
func mayPatch(ctx context.Context, c client.Client, key types.NamespacedName) error {
	review := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Namespace: key.Namespace, Verb: "patch", Group: v1alpha1.GroupVersion.Group, Resource: "rollouts", Name: key.Name,
		}}}
	if err := c.Create(ctx, review); err != nil {
		return fmt.Errorf("rollout %s: check that you may patch it: %w", key, err)
	}
	if !review.Status.Allowed {
		return fmt.Errorf("rollout %s: you may not patch rollouts.%s in namespace %s (ask for a role that grants it); nothing was requested",
			key, v1alpha1.GroupVersion.Group, key.Namespace)
	}
	return nil
}

// whoami is the user's name as the API server knows it (what `kubectl auth
// whoami` prints), or empty where it will not say.
func whoami(ctx context.Context, c client.Client) string {
	review := &authenticationv1.SelfSubjectReview{}
	if err := c.Create(ctx, review); err != nil {
		return ""
	}
	return review.Status.UserInfo.Username
}

// requestID makes a rollback request's id: when, and a random part so two
// people asking at once are two requests.
func requestID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return time.Now().UTC().Format("20060102T150405.000000000Z") + "-" + hex.EncodeToString(b)
}

// rollback writes the request, says so on progress, then waits for the
// controller's answer. A request that could not be made, or that was
// replaced before it was answered, is an error.
func rollback(ctx context.Context, c client.Client, key types.NamespacedName, r rollbackOptions, user string, progress io.Writer) (rollbackResult, error) {
	res := rollbackResult{Name: key.Name, Namespace: key.Namespace, Cancel: r.cancel}
	annotation, done := v1alpha1.AnnotationRollbackCancel, "rollback cancel requested"
	res.Request = *token()
	value := res.Request
	if !r.cancel {
		annotation, res.Request = v1alpha1.AnnotationRollback, requestID()
		b, err := json.Marshal(v1alpha1.RollbackRequest{ID: res.Request, ToRevision: r.toRevision, Reason: r.reason, User: user})
		if err != nil {
			return res, err
		}
		value, done = string(b), "rollback requested (request "+res.Request+")"
	}
	if _, err := request(ctx, c, key, annotation, &value); err != nil {
		return res, err
	}
	fmt.Fprintf(progress, "rollout %s %s\n", key, done)
	var last error // the latest passing fault
	var replaced error
	err := wait.PollUntilContextTimeout(ctx, r.every, r.timeout, true, func(ctx context.Context) (bool, error) {
		var ro v1alpha1.Rollout
		if err := c.Get(ctx, key, &ro); err != nil {
			if apierrors.IsNotFound(err) || apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) {
				return false, fmt.Errorf("rollout %s: %w", key, err)
			}
			last = err
			return false, nil
		}
		var answered bool
		answered, replaced = judgeRollback(&ro, key, annotation, &res)
		return answered, nil
	})
	switch {
	case err == nil:
		return res, replaced
	case !wait.Interrupted(err) && ctx.Err() == nil:
		return res, err
	}
	if res.Result == "RollingBack" {
		res.ExitCode = exitPending
		res.Message = fmt.Sprintf("request %s accepted, still going through the steps after %s: %s (kubectl tug wait %s follows it)", res.Request, r.timeout, res.Message, key.Name)
		return res, nil
	}
	res.Result, res.ExitCode = "Pending", exitPending
	res.Message = fmt.Sprintf("request %s is written and pending: the controller has not answered within %s (kubectl tug get rollout %s shows what it does)",
		res.Request, r.timeout, key.Name)
	if last != nil {
		res.Message += "; last error: " + last.Error()
	}
	return res, nil
}

// judgeRollback reads the controller's answer to res's request, if it has
// given one, into res. A request replaced by another before it was answered
// is an error.
func judgeRollback(ro *v1alpha1.Rollout, key types.NamespacedName, annotation string, res *rollbackResult) (answered bool, _ error) {
	s := ro.Status
	res.StableRevision, res.Pinned = s.StableRevision, s.Rollback
	observed := s.ObservedRequests.Rollback
	current := v1alpha1.RollbackRequestID(ro.Annotations[annotation])
	if res.Cancel {
		observed, current = s.ObservedRequests.RollbackCancel, ro.Annotations[annotation]
	}
	switch {
	case observed == res.Request:
	case current != res.Request:
		return true, fmt.Errorf("rollout %s: request %s was replaced by %q before the controller answered it (kubectl tug get rollout %s shows what it does)",
			key, res.Request, ro.Annotations[annotation], key.Name)
	default:
		return false, nil
	}
	a := s.RollbackRequest
	switch {
	case res.Cancel && a != nil && a.ID == res.Request && (a.Accepted || s.Rollback == nil):
		// Lifted, or nothing to lift: either way no rollback pins it.
		res.Result, res.ExitCode, res.Message = "Unpinned", exitRolledBack, orDash(a.Message)
	case res.Cancel && s.Rollback != nil:
		res.Result, res.ExitCode = "Refused", exitRefused
		res.Message = fmt.Sprintf("still pinned on revision %d (%s) by request %s: %s", s.Rollback.Number, s.Rollback.Revision, s.Rollback.Request, orDash(s.Message))
	case res.Cancel:
		res.Result, res.ExitCode = "Unpinned", exitRolledBack
		res.Message = fmt.Sprintf("not pinned; revision %s serves: %s", orDash(s.StableRevision), orDash(s.Message))
	case a == nil || a.ID != res.Request:
		res.Result, res.ExitCode, res.Message = "Refused", exitRefused, "the controller took request "+res.Request+" without an answer"
	case !a.Accepted:
		res.Result, res.ExitCode, res.Message = "Refused", exitRefused, orDash(a.Message)
	case s.Rollback != nil && s.Rollback.Request == res.Request && s.Rollback.ThroughSteps && s.Abort != nil:
		res.Result, res.ExitCode = "Aborted", exitRefused
		res.Message = "the rollback through the steps was aborted: " + s.Abort.Message + " (kubectl tug retry or kubectl tug rollback --cancel)"
	case s.Rollback != nil && s.Rollback.Request == res.Request && s.Rollback.ThroughSteps:
		// Accepted, and on its way: answered once promoted and pinned.
		res.Result, res.Message = "RollingBack", orDash(a.Message)+"; "+orDash(s.Message)
		return false, nil
	case res.Result == "RollingBack" && (s.Rollback == nil || s.Rollback.Request != res.Request):
		// Seen on its way, and gone: cancelled, lifted or replaced.
		res.Result, res.ExitCode = "Ended", exitRefused
		res.Message = "the rollback no longer holds: " + orDash(s.Message)
	default:
		res.Result, res.ExitCode, res.Message = "RolledBack", exitRolledBack, orDash(a.Message)
	}
	return true, nil
}
