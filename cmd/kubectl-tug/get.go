package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

func newGetCmd(o *options) *cobra.Command {
	get := &cobra.Command{Use: "get", Short: "Show a rollout"}
	var watch bool
	var out *output
	ro := &cobra.Command{
		Use:     "rollout NAME",
		Aliases: []string{"rollouts", "ro", "tro"},
		Short:   "Show a rollout's steps, weights, conditions and recent events",
		Long: `Show a rollout for people: its steps with the current one marked, the
weights, its analysis, conditions and recent events. With -o json, yaml or
name, print the Rollout object itself, as kubectl get does. With -w, show it
again each time it changes.`,
		Example: `  kubectl tug get rollout web
  kubectl tug get rollout web -w
  kubectl tug get rollout web -o yaml
  kubectl tug get rollout web -o json | jq .status.phase`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, key, err := o.key(args[0])
			if err != nil {
				return err
			}
			switch {
			case watch && out.structured():
				return watchObject(cmd.Context(), c, key, time.Second, out, o.streams.Out)
			case watch:
				return watchRollout(cmd.Context(), c, key, time.Second, o.streams.Out)
			case out.structured():
				ro, err := getRollout(cmd.Context(), c, key)
				if err != nil {
					return err
				}
				return out.print(o.streams.Out, ro)
			}
			return describe(cmd.Context(), c, key, time.Now(), o.streams.Out)
		},
	}
	ro.Flags().BoolVarP(&watch, "watch", "w", false, "keep showing the rollout as it changes")
	out = outputFlag(ro, "json", "yaml", "name")
	get.AddCommand(ro)
	return get
}

// getRollout reads a Rollout with its apiVersion and kind set, as -o prints
// it: the client does not promise them on typed objects.
func getRollout(ctx context.Context, c client.Client, key types.NamespacedName) (*v1alpha1.Rollout, error) {
	var ro v1alpha1.Rollout
	if err := c.Get(ctx, key, &ro); err != nil {
		return nil, fmt.Errorf("rollout %s: %w", key, err)
	}
	ro.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("Rollout"))
	return &ro, nil
}

// watchRollout shows the rollout again each time it changes, until ctx ends.
func watchRollout(ctx context.Context, c client.Client, key types.NamespacedName, every time.Duration, out io.Writer) error {
	return watch(ctx, every, func(ctx context.Context) ([]byte, error) {
		// Ages are left out of the comparison: only a change of state redraws.
		var b bytes.Buffer
		err := describe(ctx, c, key, time.Time{}, &b)
		return b.Bytes(), err
	}, func(ctx context.Context) error {
		fmt.Fprintf(out, "── %s ──\n", time.Now().Format(time.TimeOnly))
		return describe(ctx, c, key, time.Now(), out)
	})
}

// watchObject prints the Rollout object again each time it changes (each
// new resourceVersion, as kubectl get -w does), until ctx ends.
func watchObject(ctx context.Context, c client.Client, key types.NamespacedName, every time.Duration, o *output, out io.Writer) error {
	var ro *v1alpha1.Rollout
	return watch(ctx, every, func(ctx context.Context) ([]byte, error) {
		var err error
		if ro, err = getRollout(ctx, c, key); err != nil {
			return nil, err
		}
		return []byte(ro.ResourceVersion), nil
	}, func(context.Context) error {
		return o.print(out, ro)
	})
}

// watch polls state and calls show each time it differs from the last,
// until ctx ends.
func watch(ctx context.Context, every time.Duration, state func(context.Context) ([]byte, error), show func(context.Context) error) error {
	var last []byte
	err := wait.PollUntilContextCancel(ctx, every, true, func(ctx context.Context) (bool, error) {
		now, err := state(ctx)
		if err != nil {
			return false, err
		}
		if last != nil && bytes.Equal(now, last) {
			return false, nil
		}
		last = now
		return false, show(ctx)
	})
	if ctx.Err() != nil {
		return nil
	}
	return err
}
