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
	cmd := &cobra.Command{
		Use:   "rollback NAME",
		Short: "Go back to a revision from history and pin the rollout there",
		Long: `Ask the controller to serve an earlier revision (kubectl tug history lists
them) and to hold the rollout there while the target's template is the one
rolled back from. The request is an annotation, never an edit of the spec, so
a GitOps tool keeps showing the target in sync. A new template on the target
ends the pin, as does kubectl tug rollback --cancel.

Without --to-revision it goes back to the revision that was stable before
the one serving. It waits for the controller's answer and prints it.

Exit codes: 0 done; 1 refused by the controller (the reason is printed);
2 written but not answered within --timeout; 4 could not ask (no permission
to patch the Rollout, bad flags, no cluster, no such Rollout).`,
		Example: `  kubectl tug rollback web --reason "checkout errors since 10:30"
  kubectl tug rollback web --to-revision 3
  kubectl tug rollback web --cancel`,
		Args: cobra.ExactArgs(1),
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
			return rollback(cmd.Context(), c, key, r, whoami(cmd.Context(), c), o.streams.Out)
		},
	}
	cmd.Flags().Int64Var(&r.toRevision, "to-revision", 0, "the history number to go back to (default: the one stable before the revision serving)")
	cmd.Flags().StringVar(&r.reason, "reason", "", "why, recorded with the rollback")
	cmd.Flags().BoolVar(&r.cancel, "cancel", false, "lift the pin of a rollback, so the target's template rolls out")
	cmd.Flags().DurationVar(&r.timeout, "timeout", 30*time.Second, "how long to wait for the controller's answer")
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

// rollback writes the request, then waits for the controller's answer.
func rollback(ctx context.Context, c client.Client, key types.NamespacedName, r rollbackOptions, user string, out io.Writer) error {
	annotation, id, done := v1alpha1.AnnotationRollbackCancel, *token(), "rollback cancel requested"
	value := id
	if !r.cancel {
		annotation, id = v1alpha1.AnnotationRollback, requestID()
		b, err := json.Marshal(v1alpha1.RollbackRequest{ID: id, ToRevision: r.toRevision, Reason: r.reason, User: user})
		if err != nil {
			return err
		}
		value, done = string(b), "rollback requested (request "+id+")"
	}
	if err := request(ctx, c, key, annotation, &value, out, done); err != nil {
		return err
	}
	var last error // the latest passing fault
	var answer error
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
		answered, answer = judgeRollback(&ro, key, annotation, id, out)
		return answered, nil
	})
	switch {
	case err == nil:
		return answer
	case !wait.Interrupted(err) && ctx.Err() == nil:
		return err
	}
	msg := fmt.Sprintf("rollout %s: request %s is written and pending: the controller has not answered within %s (kubectl tug get rollout %s shows what it does)",
		key, id, r.timeout, key.Name)
	if last != nil {
		msg += "; last error: " + last.Error()
	}
	return &exitError{code: exitPending, err: errors.New(msg)}
}

// judgeRollback reads the controller's answer to request id, if it has
// given one: it prints an acceptance and returns a refusal as the error.
func judgeRollback(ro *v1alpha1.Rollout, key types.NamespacedName, annotation, id string, out io.Writer) (answered bool, _ error) {
	s := ro.Status
	observed := s.ObservedRequests.Rollback
	current := v1alpha1.RollbackRequestID(ro.Annotations[annotation])
	if annotation == v1alpha1.AnnotationRollbackCancel {
		observed, current = s.ObservedRequests.RollbackCancel, ro.Annotations[annotation]
	}
	switch {
	case observed == id:
	case current != id:
		return true, fmt.Errorf("rollout %s: request %s was replaced by %q before the controller answered it (kubectl tug get rollout %s shows what it does)",
			key, id, ro.Annotations[annotation], key.Name)
	default:
		return false, nil
	}
	if annotation == v1alpha1.AnnotationRollbackCancel {
		if s.Rollback != nil {
			return true, &exitError{code: exitRefused, err: fmt.Errorf("rollout %s: still pinned on revision %d (%s) by request %s: %s",
				key, s.Rollback.Number, s.Rollback.Revision, s.Rollback.Request, orDash(s.Message))}
		}
		fmt.Fprintf(out, "rollout %s: not pinned; revision %s serves: %s\n", key, orDash(s.StableRevision), orDash(s.Message))
		return true, nil
	}
	a := s.RollbackRequest
	switch {
	case a == nil || a.ID != id:
		return true, &exitError{code: exitRefused, err: fmt.Errorf("rollout %s: the controller took request %s without an answer", key, id)}
	case !a.Accepted:
		return true, &exitError{code: exitRefused, err: fmt.Errorf("rollout %s: %s", key, orDash(a.Message))}
	}
	fmt.Fprintf(out, "rollout %s: %s\n", key, orDash(a.Message))
	return true, nil
}
