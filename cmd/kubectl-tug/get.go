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
)

func newGetCmd(o *options) *cobra.Command {
	get := &cobra.Command{Use: "get", Short: "Show a rollout"}
	var watch bool
	ro := &cobra.Command{
		Use:     "rollout NAME",
		Aliases: []string{"rollouts", "ro", "tro"},
		Short:   "Show a rollout's steps, weights, conditions and recent events",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, key, err := o.key(args[0])
			if err != nil {
				return err
			}
			if watch {
				return watchRollout(cmd.Context(), c, key, time.Second, o.streams.Out)
			}
			return describe(cmd.Context(), c, key, time.Now(), o.streams.Out)
		},
	}
	ro.Flags().BoolVarP(&watch, "watch", "w", false, "keep showing the rollout as it changes")
	get.AddCommand(ro)
	return get
}

// watchRollout shows the rollout again each time it changes, until ctx ends.
func watchRollout(ctx context.Context, c client.Client, key types.NamespacedName, every time.Duration, out io.Writer) error {
	var last []byte
	err := wait.PollUntilContextCancel(ctx, every, true, func(ctx context.Context) (bool, error) {
		var b bytes.Buffer
		// Ages are left out of the comparison: only a change of state redraws.
		if err := describe(ctx, c, key, time.Time{}, &b); err != nil {
			return false, err
		}
		if bytes.Equal(b.Bytes(), last) {
			return false, nil
		}
		last = b.Bytes()
		fmt.Fprintf(out, "── %s ──\n", time.Now().Format(time.TimeOnly))
		return false, describe(ctx, c, key, time.Now(), out)
	})
	if ctx.Err() != nil {
		return nil
	}
	return err
}
