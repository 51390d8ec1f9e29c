package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/tugboatdev/tugboat/sandbox"
	"github.com/tugboatdev/tugboat/sandbox/demo"
	"github.com/tugboatdev/tugboat/sandbox/toolchain"
)

func execute(ctx context.Context, args []string) int {
	dir := filepath.Join(toolchain.Root(), "tmp", "sandbox")
	var keep bool
	root := &cobra.Command{Use: "tugboat-sandbox", Short: "Tugboat at work on one machine", SilenceUsage: true}
	root.PersistentFlags().StringVar(&dir, "dir", dir, "where the sandbox keeps its kubeconfig, logs and data")

	demoCmd := &cobra.Command{
		Use:   "demo",
		Short: "Bring the sandbox up, promote a good release and roll back a bad one",
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := up(cmd.Context(), dir)
			if err != nil {
				return err
			}
			defer func() {
				fmt.Println("\nstopping the sandbox")
				_ = s.Down()
				_ = os.Remove(pidFile(dir))
			}()
			ok, err := runDemo(cmd.Context(), s)
			if err != nil {
				return err
			}
			if keep {
				explore(cmd.Context(), s)
			}
			if !ok {
				return errors.New("a release did not end as it should (see the summary)")
			}
			return nil
		},
	}
	demoCmd.Flags().BoolVar(&keep, "keep", false, "leave the sandbox running afterwards, until Ctrl-C or `make sandbox-down`")

	upCmd := &cobra.Command{
		Use:   "up",
		Short: "Bring the sandbox up with the podinfo example, and keep it running",
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := up(cmd.Context(), dir)
			if err != nil {
				return err
			}
			defer func() { _ = s.Down(); _ = os.Remove(pidFile(dir)) }()
			key := types.NamespacedName{Namespace: s.Namespace, Name: "podinfo"}
			if err := demo.Apply(cmd.Context(), s.Client(), "podinfo", s.Namespace); err != nil {
				return err
			}
			if err := demo.ConnectNotifications(cmd.Context(), s.Client(), s.Namespace, s.Sink.URL); err != nil {
				return err
			}
			if err := demo.WaitHealthy(cmd.Context(), s.Client(), key, 3*time.Minute); err != nil {
				return fmt.Errorf("podinfo never became healthy: %w\n%s", err, s.ControllerLog(20))
			}
			explore(cmd.Context(), s)
			return nil
		},
	}

	downCmd := &cobra.Command{
		Use:   "down",
		Short: "Stop a sandbox left running",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return down(cmd.Context(), dir)
		},
	}
	root.AddCommand(demoCmd, upCmd, downCmd)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		return 1
	}
	return 0
}

func up(ctx context.Context, dir string) (*sandbox.Sandbox, error) {
	if pid, err := readPid(dir); err == nil && syscall.Kill(pid, 0) == nil {
		return nil, fmt.Errorf("a sandbox is already running (pid %d); stop it with `make sandbox-down`", pid)
	}
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	start := time.Now()
	s, err := sandbox.Up(ctx, sandbox.Options{Dir: dir, Log: func(f string, a ...any) {
		fmt.Printf("  %5s  %s\n", time.Since(start).Round(time.Second), fmt.Sprintf(f, a...))
	}})
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(pidFile(dir), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return nil, errors.Join(err, s.Down())
	}
	fmt.Printf("  %5s  sandbox up (logs in %s)\n", time.Since(start).Round(time.Second), dir)
	return s, nil
}

func runDemo(ctx context.Context, s *sandbox.Sandbox) (bool, error) {
	key := types.NamespacedName{Namespace: s.Namespace, Name: "podinfo"}
	fmt.Println("\n▶ applying examples/podinfo: Deployment, VirtualService, AnalysisTemplates, Rollout")
	if err := demo.Apply(ctx, s.Client(), "podinfo", s.Namespace); err != nil {
		return false, err
	}
	fmt.Println("▶ applying examples/notifications: a Slack and a CloudEvents receiver, both the sandbox's sink")
	if err := demo.ConnectNotifications(ctx, s.Client(), s.Namespace, s.Sink.URL); err != nil {
		return false, err
	}
	if err := demo.WaitHealthy(ctx, s.Client(), key, 3*time.Minute); err != nil {
		return false, fmt.Errorf("podinfo never became healthy: %w\n%s", err, s.ControllerLog(20))
	}
	fmt.Println("  podinfo-primary is Ready and serves all traffic; the emulator sends 50 requests/s")
	var results []demo.Result
	for _, r := range demo.Releases {
		res, err := demo.Ship(ctx, s.Client(), key, r, 4*time.Minute, os.Stdout)
		if err != nil {
			return false, err
		}
		results = append(results, res)
	}
	gate, err := demo.ReplayGate(ctx, s.Prometheus.URL, key, results[1], os.Stdout)
	if err != nil {
		return false, err
	}
	results = append(results, gate)
	res, err := demo.RollBack(ctx, s.Client(), key, 1, "the good release is blamed for checkout errors", 2*time.Minute, os.Stdout)
	if err != nil {
		return false, err
	}
	results = append(results, res)
	if err := demo.WaitQuiet(ctx, s.Prometheus.URL, key, "30s", 2*time.Minute, os.Stdout); err != nil {
		return false, err
	}
	if res, err = demo.Ship(ctx, s.Client(), key, demo.Fix, 4*time.Minute, os.Stdout); err != nil {
		return false, err
	}
	results = append(results, res)
	// Revision 1 is two back now, further than fastTrackRevisions: it goes
	// through the steps again, as a canary from history, gated by analysis.
	if res, err = demo.RollBack(ctx, s.Client(), key, 1, demo.ThroughStepsReason, 3*time.Minute, os.Stdout); err != nil {
		return false, err
	}
	results = append(results, res)
	previews, err := runPreviews(ctx, s, key)
	if err != nil {
		return false, err
	}
	results = append(results, previews...)
	demo.PrintNotifications(os.Stdout, s.Sink.Notifications())
	return demo.Summarize(os.Stdout, results), nil
}

// runPreviews is the last act: two pull requests' builds, each in its own
// preview namespace, receive copies of production's requests at once; the
// good one is Succeeded, the bad one Failed with the explanation, and
// production's success rate is what it was before.
func runPreviews(ctx context.Context, s *sandbox.Sandbox, key types.NamespacedName) ([]demo.Result, error) {
	fmt.Println("\n▶ previews: examples/preview's MirrorPolicy lets namespaces labelled tugboat.dev/preview=true copy 10% of podinfo's GET and HEAD requests")
	if err := demo.AllowPreviews(ctx, s.Client(), s.Namespace); err != nil {
		return nil, err
	}
	start := time.Now()
	for _, b := range demo.PreviewBuilds {
		fmt.Printf("  deploying %s into %s (error rate %s) with its Preview\n", b.Name, b.Namespace, b.ErrorRate)
		if err := demo.DeployPreview(ctx, s.Client(), s.Namespace, b); err != nil {
			return nil, err
		}
	}
	var results []demo.Result
	for _, b := range demo.PreviewBuilds {
		fmt.Printf("\n▶ %s: want it %s\n", b.Name, b.Want)
		res, _, err := demo.FollowPreview(ctx, s.Client(), b, 3*time.Minute, os.Stdout)
		if err != nil {
			return nil, err
		}
		results = append(results, res)
	}
	end := time.Now()
	before, err := demo.ProductionSuccessRate(ctx, s.Prometheus.URL, key, start.Add(-end.Sub(start)), start)
	if err != nil {
		return nil, err
	}
	during, err := demo.ProductionSuccessRate(ctx, s.Prometheus.URL, key, start, end)
	if err != nil {
		return nil, err
	}
	fmt.Printf("\n  production's success rate: %.4f before the previews, %.4f while they received copies\n", before, during)
	res := demo.Result{Release: demo.Release{Name: "production while mirrored", Want: "unchanged"}, Got: "unchanged", Took: end.Sub(start),
		Message: fmt.Sprintf("%.4f before, %.4f during", before, during)}
	if d := during - before; d < -0.005 || d > 0.005 {
		res.Got = "changed"
	}
	return append(results, res), nil
}

// explore prints how to reach the sandbox and waits for Ctrl-C or `down`.
func explore(ctx context.Context, s *sandbox.Sandbox) {
	fmt.Printf(`
The sandbox is running. In another terminal:

  export KUBECONFIG=%s
  go run ./cmd/kubectl-tug -n %s get rollout podinfo -w
  go run ./cmd/kubectl-tug -n %s list
  open %s/graph to query Prometheus (Tugboat's alerts: %s/alerts)

The controller's metrics are at %s; Prometheus scrapes them and
evaluates config/prometheus/tugboat-rules.yaml, so config/grafana/tugboat.json
works against it.

Stop it with Ctrl-C here, or `+"`make sandbox-down`"+`.
`, s.Cluster.KubeConfigPath, s.Namespace, s.Namespace, s.Prometheus.URL, s.Prometheus.URL, s.MetricsURL)
	<-ctx.Done()
}

func pidFile(dir string) string { return filepath.Join(dir, "sandbox.pid") }

func readPid(dir string) (int, error) {
	b, err := os.ReadFile(pidFile(dir))
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// down signals the sandbox's process and waits until it has stopped
// everything it started.
func down(ctx context.Context, dir string) error {
	pid, err := readPid(dir)
	if err != nil {
		fmt.Println("no sandbox is running")
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		_ = os.Remove(pidFile(dir))
		fmt.Println("no sandbox is running")
		return nil
	}
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		return syscall.Kill(pid, 0) != nil, nil
	})
	if err != nil {
		return fmt.Errorf("sandbox (pid %d) did not stop: %w", pid, err)
	}
	fmt.Println("sandbox stopped")
	return nil
}
