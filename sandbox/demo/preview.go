package demo

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/sandbox/toolchain"
)

// The verdicts a preview can end with, as the demo's summary shows them.
const (
	PreviewSucceeded Outcome = "Succeeded"
	PreviewFailed    Outcome = "Failed"
)

// PreviewBuild is a pull request's build, deployed into its own preview
// namespace, and the verdict its Preview should get.
type PreviewBuild struct {
	Name      string
	Namespace string
	ErrorRate string
	Want      Outcome
}

// PreviewBuilds are the demo's: a good build and one that answers 30% of
// requests with errors.
var PreviewBuilds = []PreviewBuild{
	{Name: "preview pr-1 (good build)", Namespace: "preview-pr-1", ErrorRate: "0.001", Want: PreviewSucceeded},
	{Name: "preview pr-2 (bad build)", Namespace: "preview-pr-2", ErrorRate: "0.30", Want: PreviewFailed},
}

// PreviewLabel marks the namespaces examples/preview's MirrorPolicy trusts.
const PreviewLabel = "tugboat.dev/preview"

// AllowPreviews applies examples/preview's MirrorPolicy in the production
// namespace.
func AllowPreviews(ctx context.Context, c client.Client, production string) error {
	return applyFile(ctx, c, previewFile("mirrorpolicy.yaml"), production, nil)
}

func previewFile(name string) string {
	return filepath.Join(toolchain.Root(), "examples", "preview", name)
}

// DeployPreview does what CI does for a pull request: a namespace labelled
// as a preview environment, the build (with the error rate the sandbox's
// emulator gives its answers), the analysis template, and the Preview of
// the production namespace's podinfo Rollout.
func DeployPreview(ctx context.Context, c client.Client, production string, b PreviewBuild) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: b.Namespace, Labels: map[string]string{PreviewLabel: "true"}}}
	if err := c.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", b.Namespace, err)
	}
	withErrorRate := func(u *unstructured.Unstructured) error {
		if u.GetKind() != "Deployment" {
			return nil
		}
		containers, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
		c0 := containers[0].(map[string]any)
		env, _ := c0["env"].([]any)
		for _, e := range env {
			if m := e.(map[string]any); m["name"] == "DEMO_ERROR_RATE" {
				m["value"] = b.ErrorRate
			}
		}
		return unstructured.SetNestedSlice(u.Object, containers, "spec", "template", "spec", "containers")
	}
	fromProduction := func(u *unstructured.Unstructured) error {
		return unstructured.SetNestedField(u.Object, production, "spec", "source", "namespace")
	}
	for _, f := range []struct {
		name string
		edit func(*unstructured.Unstructured) error
	}{{"app.yaml", withErrorRate}, {"analysistemplate.yaml", nil}, {"preview.yaml", fromProduction}} {
		if err := applyFile(ctx, c, previewFile(f.name), b.Namespace, f.edit); err != nil {
			return err
		}
	}
	return nil
}

// FollowPreview follows a build's Preview until it has a verdict, writing a
// line each time its phase or message changes.
func FollowPreview(ctx context.Context, c client.Client, b PreviewBuild, timeout time.Duration, out io.Writer) (Result, *v1alpha1.Preview, error) {
	key := types.NamespacedName{Namespace: b.Namespace, Name: "podinfo"}
	start := time.Now()
	res := Result{Release: Release{Name: b.Name, ErrorRate: b.ErrorRate, Want: b.Want}, Got: TimedOut}
	last := ""
	var p v1alpha1.Preview
	var lastErr error
	err := wait.PollUntilContextTimeout(ctx, time.Second, timeout, true, func(ctx context.Context) (bool, error) {
		if lastErr = c.Get(ctx, key, &p); lastErr != nil {
			return false, nil
		}
		line := fmt.Sprintf("%s: %s", p.Status.Phase, p.Status.Message)
		if line != last && p.Status.Phase != "" {
			fmt.Fprintf(out, "  %5s  %s\n", time.Since(start).Round(time.Second), line)
			last = line
		}
		res.Message = p.Status.Message
		switch p.Status.Phase {
		case "Succeeded", "Failed", "Inconclusive", "Expired", "Denied":
			res.Got = Outcome(p.Status.Phase)
			return p.Status.ObservedGeneration == p.Generation, nil
		}
		return false, nil
	})
	res.Took = time.Since(start)
	if err != nil && !wait.Interrupted(err) {
		return res, &p, err
	}
	if res.Got == TimedOut && lastErr != nil {
		res.Message = fmt.Sprintf("%s (last read: %v)", res.Message, lastErr)
	}
	fmt.Fprintf(out, "  → %s in %s\n", res.Got, res.Took.Round(time.Second))
	if a := p.Status.Analysis; a != nil && res.Got != PreviewSucceeded {
		explain(out, []v1alpha1.RolloutAnalysis{*a})
	}
	return res, &p, nil
}

// ProductionSuccessRate is the share of production's requests to the
// Rollout's primary answered without a 5xx, between from and to, as its
// clients' proxies report it.
func ProductionSuccessRate(ctx context.Context, prometheus string, key types.NamespacedName, from, to time.Time) (float64, error) {
	c, err := api.NewClient(api.Config{Address: prometheus})
	if err != nil {
		return 0, err
	}
	window := fmt.Sprintf("%ds", max(1, int(to.Sub(from).Seconds())))
	sel := fmt.Sprintf(`reporter="source", destination_workload=%q, destination_workload_namespace=%q`, key.Name+"-primary", key.Namespace)
	q := fmt.Sprintf(`sum(increase(istio_requests_total{%s, response_code!~"5.."}[%s])) / sum(increase(istio_requests_total{%s}[%s]))`, sel, window, sel, window)
	v, _, _, err := promv1.NewAPI(c).Query(ctx, q, to)
	if err != nil {
		return 0, err
	}
	vec, ok := v.(model.Vector)
	if !ok || len(vec) == 0 {
		return 0, fmt.Errorf("no requests to %s-primary between %s and %s", key.Name, from.Format(time.TimeOnly), to.Format(time.TimeOnly))
	}
	return float64(vec[0].Value), nil
}
