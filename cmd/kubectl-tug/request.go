package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

// request writes an annotation on the Rollout: people steer a rollout
// without editing its spec, which a GitOps tool would revert. A nil value
// removes the annotation. The controller acknowledges requests in status.
// It returns the Rollout as annotated.
func request(ctx context.Context, c client.Client, key types.NamespacedName, annotation string, value *string) (*v1alpha1.Rollout, error) {
	ro, err := getRollout(ctx, c, key)
	if err != nil {
		return nil, err
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]*string{annotation: value}}})
	if err != nil {
		return nil, err
	}
	if err := c.Patch(ctx, ro, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return nil, fmt.Errorf("annotate rollout %s: %w", key, err)
	}
	ro.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("Rollout"))
	return ro, nil
}

// token makes each request distinct, so that asking twice means twice.
func token() *string {
	t := time.Now().UTC().Format(time.RFC3339Nano)
	return &t
}

// requestCmd is a verb NAME that writes one request annotation: req says
// which, with what value, and what to report once it is written. -o json or
// yaml prints the Rollout as annotated, as kubectl annotate does.
func requestCmd(o *options, use, short string, req func() (annotation string, value *string, done string)) *cobra.Command {
	verb, _, _ := strings.Cut(use, " ")
	var out *output
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Example: fmt.Sprintf(`  kubectl tug %s web
  kubectl tug %s web -o json`, verb, verb),
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: o.completeRollout,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, key, err := o.key(args[0])
			if err != nil {
				return err
			}
			annotation, value, done := req()
			ro, err := request(cmd.Context(), c, key, annotation, value)
			if err != nil {
				return err
			}
			if out.structured() {
				return out.print(o.streams.Out, ro)
			}
			fmt.Fprintf(o.streams.Out, "rollout %s %s\n", key, done)
			return nil
		},
	}
	out = outputFlag(cmd, "json", "yaml")
	return cmd
}
