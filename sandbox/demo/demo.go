// Package demo is the scenario `make demo` shows and the e2e tests check:
// the podinfo example applied to the sandbox, a good release promoted, a bad
// one (errors over the SLO) rolled back, then a person rolling back to the
// first revision, pinned there until a fix ships, with the progress shown
// live.
package demo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/rollout"
	"github.com/tugboatdev/tugboat/sandbox/toolchain"
)

// Outcome is how a release ended.
type Outcome string

// The outcomes a release can have.
const (
	Promoted Outcome = "promoted"
	Aborted  Outcome = "rolled back"
	TimedOut Outcome = "timed out"
)

// Release is a new version of podinfo and how it should end.
type Release struct {
	Name      string
	Image     string
	ErrorRate string
	LatencyMs string
	Want      Outcome
}

// Releases are the demo's: one within the SLO, one well outside it.
var Releases = []Release{
	{Name: "good", Image: "ghcr.io/stefanprodan/podinfo:6.7.1", ErrorRate: "0.001", LatencyMs: "45", Want: Promoted},
	{Name: "bad", Image: "ghcr.io/stefanprodan/podinfo:6.7.2", ErrorRate: "0.15", LatencyMs: "45", Want: Aborted},
}

// Result is how one release went.
type Result struct {
	Release Release
	Got     Outcome
	// Started is when the release began; Took how long until it ended.
	Started time.Time
	Took    time.Duration
	Message string
}

// Apply creates the manifests of examples/<example> in namespace.
func Apply(ctx context.Context, c client.Client, example, namespace string) error {
	files, err := filepath.Glob(filepath.Join(toolchain.Root(), "examples", example, "*.yaml"))
	if err != nil || len(files) == 0 {
		return fmt.Errorf("examples/%s: no manifests (%v)", example, err)
	}
	for _, f := range files {
		if err := applyFile(ctx, c, f, namespace, nil); err != nil {
			return err
		}
	}
	return nil
}

// applyFile creates the manifests of one file in namespace, each changed
// by edit first when it is set.
func applyFile(ctx context.Context, c client.Client, f, namespace string, edit func(*unstructured.Unstructured) error) error {
	raw, err := os.ReadFile(f)
	if err != nil {
		return err
	}
	d := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
	for {
		var ext runtime.RawExtension
		if err := d.Decode(&ext); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("%s: %w", f, err)
		}
		if len(bytes.TrimSpace(ext.Raw)) == 0 {
			continue
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(ext.Raw); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		u.SetNamespace(namespace)
		if edit != nil {
			if err := edit(u); err != nil {
				return fmt.Errorf("%s: %w", f, err)
			}
		}
		if err := c.Create(ctx, u); err != nil {
			return fmt.Errorf("%s: create %s %s: %w", f, u.GetKind(), u.GetName(), err)
		}
	}
}

// WaitHealthy waits until the Rollout is at rest on a stable revision. A
// failed read is tried again, and named if the time runs out.
func WaitHealthy(ctx context.Context, c client.Client, key types.NamespacedName, timeout time.Duration) error {
	var lastErr error
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		var ro v1alpha1.Rollout
		if lastErr = c.Get(ctx, key, &ro); lastErr != nil {
			return false, nil
		}
		return ro.Status.Phase == v1alpha1.PhaseHealthy && ro.Status.StableRevision != "" && ro.Status.CanaryRevision == "", nil
	})
	if err != nil && lastErr != nil {
		return fmt.Errorf("%w (last read: %w)", err, lastErr)
	}
	return err
}

// Start releases r to the target, as CI would, and returns its revision.
func Start(ctx context.Context, c client.Client, key types.NamespacedName, r Release) (string, error) {
	// The Deployment's status moves while we edit its template (its
	// controller and Tugboat both write it), so a conflict is tried again
	// on a fresh read.
	var d appsv1.Deployment
	err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		if err := c.Get(ctx, key, &d); err != nil {
			return err
		}
		ct := &d.Spec.Template.Spec.Containers[0]
		ct.Image = r.Image
		setEnv(ct, "DEMO_ERROR_RATE", r.ErrorRate)
		setEnv(ct, "DEMO_LATENCY_MS", r.LatencyMs)
		return c.Update(ctx, &d)
	})
	if err != nil {
		return "", fmt.Errorf("release %s: %w", r.Name, err)
	}
	return rollout.Revision(d.Spec.Template), nil
}

// Ship releases r to the target and follows the rollout, writing a line to
// out each time something changes, until it is promoted, rolled back, or
// the timeout runs out.
func Ship(ctx context.Context, c client.Client, key types.NamespacedName, r Release, timeout time.Duration, out io.Writer) (Result, error) {
	started := time.Now()
	rev, err := Start(ctx, c, key, r)
	if err != nil {
		return Result{}, err
	}
	fmt.Fprintf(out, "\n▶ release %q: %s, error rate %s, latency %sms (revision %s); want it %s\n", r.Name, r.Image, r.ErrorRate, r.LatencyMs, rev, r.Want)
	start := time.Now()
	res := Result{Release: r, Got: TimedOut, Started: started}
	last := ""
	var final v1alpha1.Rollout
	var lastErr error // a failed read is tried again at the next poll
	err = wait.PollUntilContextTimeout(ctx, time.Second, timeout, true, func(ctx context.Context) (bool, error) {
		var ro v1alpha1.Rollout
		if lastErr = c.Get(ctx, key, &ro); lastErr != nil {
			return false, nil
		}
		var line string
		if line, lastErr = progress(ctx, c, &ro); lastErr != nil {
			return false, nil
		}
		if line != last {
			fmt.Fprintf(out, "  %5s  %s\n", time.Since(start).Round(time.Second), line)
			last = line
		}
		s := ro.Status
		res.Message = s.Message
		final = ro
		switch {
		case s.Phase == v1alpha1.PhaseHealthy && s.StableRevision == rev && s.CanaryRevision == "":
			res.Got = Promoted
		case s.Abort != nil && s.CanaryRevision == rev:
			res.Got = Aborted
		default:
			return false, nil
		}
		return true, nil
	})
	res.Took = time.Since(start)
	if err != nil && !wait.Interrupted(err) {
		return res, err
	}
	if res.Got == TimedOut && lastErr != nil {
		res.Message = fmt.Sprintf("%s (last read: %v)", res.Message, lastErr)
	}
	fmt.Fprintf(out, "  → %s in %s: %s\n", res.Got, res.Took.Round(time.Second), res.Message)
	if res.Got == Aborted {
		explain(out, final.Status.Analysis)
	}
	return res, nil
}

// explain writes, from the Rollout's status, why each metric that decided
// against the release did.
func explain(out io.Writer, analyses []v1alpha1.RolloutAnalysis) {
	for _, a := range analyses {
		for _, m := range a.Metrics {
			if !m.Phase.Completed() || m.Phase == "Successful" {
				continue
			}
			query := strings.Join(strings.Fields(m.Query), " ") // one line
			fmt.Fprintf(out, "    %s %s: value %s, %s\n      query: %s\n", m.Name, m.Phase, m.Value, m.Message, query)
		}
	}
}

func setEnv(c *corev1.Container, name, value string) {
	for i := range c.Env {
		if c.Env[i].Name == name {
			c.Env[i].Value = value
			return
		}
	}
	c.Env = append(c.Env, corev1.EnvVar{Name: name, Value: value})
}

// progress is one line: step, weights, phase and reason, and the latest
// value and phase of each metric of the attempt under way.
func progress(ctx context.Context, c client.Client, ro *v1alpha1.Rollout) (string, error) {
	s := ro.Status
	step := "at rest"
	if s.CurrentStepIndex != nil {
		i := int(*s.CurrentStepIndex)
		step = fmt.Sprintf("step %d/%d", i, len(ro.Spec.Steps))
		if i < len(ro.Spec.Steps) {
			step += " " + stepName(ro.Spec.Steps[i])
		} else {
			step += " promoting"
		}
	}
	reason := ""
	for _, cnd := range s.Conditions {
		if cnd.Type == v1alpha1.ConditionReady {
			reason = cnd.Reason
		}
	}
	var runs v1alpha1.AnalysisRunList
	if err := c.List(ctx, &runs, client.InNamespace(ro.Namespace), client.MatchingLabels{"tugboat.dev/rollout": ro.Name}); err != nil {
		return "", err
	}
	var metrics []string
	for _, run := range runs.Items {
		if s.StartedAt == nil || run.CreationTimestamp.Before(s.StartedAt) {
			continue
		}
		for _, m := range run.Status.MetricResults {
			v := "-"
			if n := len(m.Measurements); n > 0 {
				v = m.Measurements[n-1].Value
			}
			metrics = append(metrics, fmt.Sprintf("%s=%s %s", m.Name, v, m.Phase))
		}
	}
	slices.Sort(metrics)
	line := fmt.Sprintf("%-26s traffic %3d/%-3d %-11s %-22s", step, 100-s.CanaryWeight, s.CanaryWeight, s.Phase, reason)
	if len(metrics) > 0 {
		line += " │ " + strings.Join(metrics, "  ")
	}
	return line, nil
}

func stepName(st v1alpha1.Step) string {
	switch {
	case st.SetWeight != nil:
		return fmt.Sprintf("setWeight %d", *st.SetWeight)
	case st.Pause != nil && st.Pause.Duration != nil:
		return "pause " + rollout.PauseText(st.Pause)
	case st.Pause != nil:
		return "pause"
	case st.Analysis != nil:
		return "analysis"
	case st.SetHeaderRoute != nil:
		return "headerRoute"
	case st.SetMirrorRoute != nil:
		return "mirrorRoute"
	}
	return "scale"
}

// Summarize writes the results as a table and reports whether every release
// ended as it should.
func Summarize(out io.Writer, results []Result) bool {
	ok := len(results) > 0
	fmt.Fprintln(out, "\nSummary")
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "  RELEASE\tWANT\tGOT\tTOOK\t")
	for _, r := range results {
		mark := "✓"
		if r.Got != r.Release.Want {
			mark, ok = "✗", false
		}
		took := r.Took.Round(time.Second)
		if r.Took < time.Second {
			took = r.Took.Round(100 * time.Millisecond)
		}
		fmt.Fprintf(w, "  %s\t%s\t%s\t%s\t%s\n", r.Release.Name, r.Release.Want, r.Got, took, mark)
	}
	w.Flush()
	return ok
}
