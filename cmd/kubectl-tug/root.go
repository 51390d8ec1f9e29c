package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tugboatdev/tugboat/api/scheme"
)

// options are shared by every verb: kubectl's connection flags and the
// streams output goes to.
type options struct {
	flags   *genericclioptions.ConfigFlags
	streams genericiooptions.IOStreams
	log     *slog.Logger
}

// palette colours the text for people only on a terminal, never with
// NO_COLOR.
func (o *options) palette() palette { return paletteFor(o.streams.Out, os.Getenv) }

// client connects with kubectl's flags (--kubeconfig, --context, -n, ...).
func (o *options) client() (client.WithWatch, string, error) {
	cfg, err := o.flags.ToRESTConfig()
	if err != nil {
		return nil, "", err
	}
	ns, _, err := o.flags.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return nil, "", err
	}
	s, err := scheme.New()
	if err != nil {
		return nil, "", err
	}
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: s})
	return c, ns, err
}

// key is the Rollout a verb acts on.
func (o *options) key(name string) (client.WithWatch, types.NamespacedName, error) {
	c, ns, err := o.client()
	return c, types.NamespacedName{Namespace: ns, Name: name}, err
}

// exitError ends the command with a specific exit code.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func newRootCmd(o *options) *cobra.Command {
	root := &cobra.Command{
		Use:           "kubectl-tug",
		Annotations:   map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl tug"},
		Short:         "Show, steer and wait on Tugboat Rollouts",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	o.flags.AddFlags(root.PersistentFlags())
	o.registerConnectionCompletion(root)
	root.AddCommand(
		newGetCmd(o), newListCmd(o),
		newPromoteCmd(o), newAbortCmd(o), newRetryCmd(o), newPauseCmd(o), newResumeCmd(o),
		newWaitCmd(o), newAnalysisCmd(o), newHistoryCmd(o), newRollbackCmd(o), newRollbacksCmd(o), newSetCmd(o),
		newPreviewCmd(o), newTriggerCmd(o), newConvertCmd(o), newVersionCmd(o),
	)
	return root
}

// execute runs the plugin and returns its exit code.
func execute(ctx context.Context, args []string, streams genericiooptions.IOStreams) int {
	o := &options{
		flags:   genericclioptions.NewConfigFlags(true),
		streams: streams,
		log:     slog.New(slog.NewTextHandler(streams.ErrOut, nil)),
	}
	root := newRootCmd(o)
	root.SetArgs(args)
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintln(streams.ErrOut, "error:", err)
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return exitTrouble
}
