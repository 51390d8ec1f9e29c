package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

func newGetCmd(o *options) *cobra.Command {
	get := &cobra.Command{Use: "get", Short: "Show a rollout"}
	var follow bool
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
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: o.completeRollout,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, key, err := o.key(args[0])
			if err != nil {
				return err
			}
			switch {
			case follow && out.structured():
				return watchObject(cmd.Context(), c, key, out, o.streams.Out)
			case follow:
				return watchRollout(cmd.Context(), c, key, o.palette(), o.streams.Out)
			case out.structured():
				ro, err := getRollout(cmd.Context(), c, key)
				if err != nil {
					return err
				}
				return out.print(o.streams.Out, ro)
			}
			return describe(cmd.Context(), c, key, time.Now(), o.palette(), o.streams.Out)
		},
	}
	ro.Flags().BoolVarP(&follow, "watch", "w", false, "keep showing the rollout as it changes")
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

// watchRollout shows the rollout, and again each time it or one of its
// AnalysisRuns changes, until ctx ends.
func watchRollout(ctx context.Context, c client.WithWatch, key types.NamespacedName, paint palette, out io.Writer) error {
	var last []byte
	return watchChanges(ctx, c, key, true, func(ctx context.Context, _ *v1alpha1.Rollout) error {
		// Ages are left out of the comparison: only a change of what people
		// read redraws (a status write that changed nothing shown does not).
		var b bytes.Buffer
		if err := describe(ctx, c, key, time.Time{}, palette{}, &b); err != nil {
			return err
		}
		if last != nil && bytes.Equal(b.Bytes(), last) {
			return nil
		}
		last = b.Bytes()
		fmt.Fprintf(out, "── %s ──\n", time.Now().Format(time.TimeOnly))
		return describe(ctx, c, key, time.Now(), paint, out)
	})
}

// watchObject prints the Rollout object, and again at each new version of
// it, as kubectl get -w does, until ctx ends.
func watchObject(ctx context.Context, c client.WithWatch, key types.NamespacedName, o *output, out io.Writer) error {
	return watchChanges(ctx, c, key, false, func(_ context.Context, ro *v1alpha1.Rollout) error {
		return o.print(out, ro)
	})
}

// watchChanges calls show with the Rollout, then again each time the API
// server reports a change of it (and, with runs, of an AnalysisRun it
// started), until ctx ends. The watches resume from the last version seen
// when a connection drops; the Rollout's deletion ends it with an error.
func watchChanges(ctx context.Context, c client.WithWatch, key types.NamespacedName, runs bool, show func(context.Context, *v1alpha1.Rollout) error) error {
	ro, err := getRollout(ctx, c, key)
	if err != nil {
		return err
	}
	if err := show(ctx, ro); err != nil {
		return err
	}
	byName := fields.OneTermEqualSelector("metadata.name", key.Name).String()
	rollouts, err := resumingWatch(ctx, c, &v1alpha1.RolloutList{}, ro.ResourceVersion, key.Namespace, func(o *metav1.ListOptions) { o.FieldSelector = byName })
	if err != nil {
		return err
	}
	defer rollouts.Stop()
	var analysis <-chan watch.Event // nil without runs: never ready
	if runs {
		ours := labels.SelectorFromSet(labels.Set{v1alpha1.LabelRollout: key.Name}).String()
		var existing v1alpha1.AnalysisRunList
		if err := c.List(ctx, &existing, client.InNamespace(key.Namespace), &client.ListOptions{Raw: &metav1.ListOptions{LabelSelector: ours}}); err != nil {
			return fmt.Errorf("analysis runs of %s: %w", key, err)
		}
		w, err := resumingWatch(ctx, c, &v1alpha1.AnalysisRunList{}, existing.ResourceVersion, key.Namespace, func(o *metav1.ListOptions) { o.LabelSelector = ours })
		if err != nil {
			return err
		}
		defer w.Stop()
		analysis = w.ResultChan()
	}
	for {
		var ev watch.Event
		var open bool
		select {
		case <-ctx.Done():
			return nil
		case ev, open = <-rollouts.ResultChan():
		case ev, open = <-analysis:
		}
		switch {
		case !open:
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("watch of %s ended", key)
		case ev.Type == watch.Error:
			return fmt.Errorf("watch of %s: %w", key, apierrors.FromObject(ev.Object))
		case ev.Type == watch.Deleted:
			if _, isRollout := ev.Object.(*v1alpha1.Rollout); isRollout {
				return fmt.Errorf("rollout %s was deleted", key)
			}
		}
		if got, isRollout := ev.Object.(*v1alpha1.Rollout); isRollout {
			ro = got
			ro.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("Rollout"))
		}
		if err := show(ctx, ro); err != nil {
			return err
		}
	}
}

// resumingWatch watches list's kind in namespace from version, with the
// options set by narrow, and resumes from the last version seen when the
// connection drops.
func resumingWatch(ctx context.Context, c client.WithWatch, list client.ObjectList, version, namespace string, narrow func(*metav1.ListOptions)) (*watchtools.RetryWatcher, error) {
	w, err := watchtools.NewRetryWatcherWithContext(ctx, version, &cache.ListWatch{
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			narrow(&opts)
			return c.Watch(ctx, list, client.InNamespace(namespace), &client.ListOptions{Raw: &opts})
		},
	})
	if err != nil {
		return nil, fmt.Errorf("watch: %w", err)
	}
	return w, nil
}
