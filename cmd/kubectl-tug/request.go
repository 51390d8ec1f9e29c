package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

// request writes an annotation on the Rollout: people steer a rollout
// without editing its spec, which a GitOps tool would revert. A nil value
// removes the annotation. The controller acknowledges requests in status.
func request(ctx context.Context, c client.Client, key types.NamespacedName, annotation string, value *string, out io.Writer, done string) error {
	var ro v1alpha1.Rollout
	if err := c.Get(ctx, key, &ro); err != nil {
		return fmt.Errorf("rollout %s: %w", key, err)
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]*string{annotation: value}}})
	if err != nil {
		return err
	}
	if err := c.Patch(ctx, &ro, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return fmt.Errorf("annotate rollout %s: %w", key, err)
	}
	fmt.Fprintf(out, "rollout %s %s\n", key, done)
	return nil
}

// token makes each request distinct, so that asking twice means twice.
func token() *string {
	t := time.Now().UTC().Format(time.RFC3339Nano)
	return &t
}

// requestCmd is a verb NAME that writes one request annotation: req says
// which, with what value, and what to report once it is written.
func requestCmd(o *options, use, short string, req func() (annotation string, value *string, done string)) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, key, err := o.key(args[0])
			if err != nil {
				return err
			}
			annotation, value, done := req()
			return request(cmd.Context(), c, key, annotation, value, o.streams.Out, done)
		},
	}
}
