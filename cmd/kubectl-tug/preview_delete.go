package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

func newPreviewDeleteCmd(o *options) *cobra.Command {
	var (
		wait, ignoreNotFound bool
		timeout              time.Duration
		out                  *output
	)
	cmd := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a preview and wait until its mirror is gone",
		Long: `Delete the Preview. The controller holds it until the mirror is off the
production route, so by default delete waits, up to --timeout, until the
Preview is gone, and then says the mirror is gone; --wait=false returns once
the deletion is accepted. -o name prints the Preview's name once done, as
kubectl delete does.

Exit codes: 0 deleted (gone, or accepted with --wait=false); 3 still there
at --timeout (the controller has not removed the mirror: is it running?); 4
could not delete (no such Preview, unless --ignore-not-found; no
permission; no cluster).`,
		Example: `  kubectl tug preview delete pr-42 -n pr-42
  kubectl tug preview delete pr-42 -n pr-42 --wait=false
  kubectl tug preview delete pr-42 -n pr-42 --ignore-not-found --timeout 5m`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: o.completePreview,
		RunE: func(cmd *cobra.Command, args []string) error {
			if wait && timeout <= 0 {
				return fmt.Errorf("--timeout: want a positive duration, got %s", timeout)
			}
			c, key, err := o.key(args[0])
			if err != nil {
				return err
			}
			p := &v1alpha1.Preview{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}}
			p.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("Preview"))
			done, err := deletePreview(cmd.Context(), c, key, wait, timeout)
			switch {
			case apierrors.IsNotFound(err) && ignoreNotFound:
				return nil
			case err != nil:
				return err
			case out.structured():
				return out.print(o.streams.Out, p)
			}
			_, err = fmt.Fprintf(o.streams.Out, "preview %s %s\n", key, done)
			return err
		},
	}
	cmd.Flags().BoolVar(&wait, "wait", true, "wait until the Preview, and so its mirror, is gone")
	cmd.Flags().DurationVar(&timeout, "timeout", time.Minute, "how long to wait until it is gone")
	cmd.Flags().BoolVar(&ignoreNotFound, "ignore-not-found", false, "a Preview that does not exist is no error")
	out = outputFlag(cmd, "name")
	return cmd
}

// deletePreview deletes the preview and, if wait, waits until it is gone,
// with wait's bounded retries; it returns what to say once done. A Preview
// of the same name created meanwhile is another: this one is gone.
func deletePreview(ctx context.Context, c client.Client, key types.NamespacedName, wait bool, timeout time.Duration) (string, error) {
	p, err := getPreview(ctx, c, key)
	if err != nil {
		return "", err
	}
	if err := c.Delete(ctx, p, client.Preconditions{UID: &p.UID}); err != nil {
		return "", fmt.Errorf("delete preview %s: %w", key, err)
	}
	if !wait {
		return "deleted; the controller removes the mirror, then the Preview", nil
	}
	o := waitOptions{timeout: timeout, firstAnswer: 30 * time.Second, every: 200 * time.Millisecond}
	last, gone, err := waitUntil(ctx, o, "preview "+key.String(), p, func(ctx context.Context) (*v1alpha1.Preview, bool, bool, error) {
		now, err := getPreview(ctx, c, key)
		switch {
		case apierrors.IsNotFound(err):
			return p, true, true, nil
		case err != nil:
			return nil, false, false, err
		}
		return now, now.UID != p.UID, true, nil
	})
	switch {
	case err != nil:
		return "", err
	case !gone:
		return "", &exitError{code: exitTimeout, err: fmt.Errorf("preview %s is still there after %s, held by %s: the controller has not removed the mirror (is it running?)",
			key, timeout, orDash(strings.Join(last.Finalizers, ", ")))}
	}
	return "deleted: the mirror is gone", nil
}
