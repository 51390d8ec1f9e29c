package examples_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/sandbox/demo"
	"github.com/tugboatdev/tugboat/sandbox/toolchain"
)

// TestPreviewVerdictCI runs the commands of the preview verdict in
// examples/ci, the Tekton Task's step and the GitHub Actions workflow's
// steps, with real kubectl and kubectl-tug, against the sandbox: podinfo in
// production, examples/preview's MirrorPolicy beside it, and each pull
// request's build deployed into a preview namespace of its own (app.yaml
// and analysistemplate.yaml, as jx preview would deploy them; the step
// makes the Preview). The steps act as the pipeline's ServiceAccount with
// only rbac.yaml's rights, bound in the preview namespaces. The builds run
// at once: a good build passes the Task and a bad one fails it with the
// analysis's explanation; the workflow passes a good build and, re-run
// after the bad one replaces it, fails; an untrusted namespace is Denied
// (exit 2), a build never deployed has no verdict in time (3, and its
// Preview is deleted), and production is out of the step's reach (4).
func TestPreviewVerdictCI(t *testing.T) {
	task := readTask(t, filepath.Join("ci", "preview-verdict", "task.yaml"))
	flow := readWorkflow(t, filepath.Join("ci", "github-actions", "preview.yml"))
	verdict := flow.step(t, "Preview verdict")
	if want := strings.TrimPrefix(task.Spec.Steps[0].Script, "#!/usr/bin/env bash\n"); verdict.Run != want {
		t.Errorf("the workflow's step %q runs other commands than the Task's step:\n%s\nwant\n%s", verdict.Name, verdict.Run, want)
	}
	box, tools, admin := podinfoInSandbox(t, "demo")
	c := box.Client()
	if err := demo.AllowPreviews(t.Context(), c, box.Namespace); err != nil {
		t.Fatal(err)
	}

	// Given a preview namespace for each pull request, with its build and
	// rbac.yaml's RoleBinding: pr-4 lacks the label the MirrorPolicy
	// trusts, and pr-5's build was never deployed.
	for _, ns := range []struct {
		name, errorRate string
		trusted         bool
	}{
		{"pr-1", "0.001", true}, {"pr-2", "0.30", true}, {"pr-3", "0.001", true},
		{"pr-4", "0.001", false}, {"pr-5", "", true},
	} {
		namespace := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns.name}}
		if ns.trusted {
			namespace.Labels = map[string]string{demo.PreviewLabel: "true"}
		}
		if err := c.Create(t.Context(), namespace); err != nil {
			t.Fatal(err)
		}
		run(t, "", admin, "", "kubectl", "apply", "-n", ns.name, "-f", filepath.Join("ci", "preview-verdict", "rbac.yaml"))
		if ns.errorRate != "" {
			deployBuild(t, admin, ns.name, ns.errorRate)
		}
	}
	sa := serviceAccountConfig(t, box.Cluster.KubeConfig, "jx", "tekton-bot")
	asPipeline := append(slices.Clone(tools), "KUBECONFIG="+sa)
	params := func(namespace string) map[string]string {
		return map[string]string{
			"preview-namespace": namespace, "production-namespace": box.Namespace, "rollout": "podinfo",
			"service": "podinfo", "port": "9898", "timeout": "4m", "image": "tugboat-ci",
		}
	}
	secret, err := os.ReadFile(sa)
	if err != nil {
		t.Fatal(err)
	}
	// The cases run at once, each in its own namespace (as parallel
	// subtests they would wait for each other beyond -parallel, the number
	// of CPUs).
	var cases sync.WaitGroup
	at := func(name string, f func(t *testing.T)) { cases.Go(func() { t.Run(name, f) }) }
	start := time.Now()
	at("task passes a good build", func(t *testing.T) {
		out, code := task.run(t, params("pr-1"), asPipeline)
		want(t, out, code, 0, "preview pr-1/podinfo: Succeeded: analysis Successful", "Phase:", "verdict: Succeeded")
	})
	at("task fails a bad build and says why", func(t *testing.T) {
		out, code := task.run(t, params("pr-2"), asPipeline)
		want(t, out, code, 1, "preview pr-2/podinfo: Failed: analysis Failed", "success-rate-vs-production", "verdict: Failed")
	})
	at("workflow passes a good build, and a re-run judges its replacement", func(t *testing.T) {
		pr := map[string]string{"github.event.pull_request.number": "3", "secrets.PREVIEW_KUBECONFIG": string(secret)}
		out, code := flow.run(t, pr, tools)
		want(t, out, code, 0, "preview pr-3/podinfo: Succeeded: analysis Successful", "verdict: Succeeded")

		// A new push: the bad build replaces the good one, and the
		// workflow runs again.
		deployBuild(t, admin, "pr-3", "0.30")
		out, code = flow.run(t, pr, tools)
		want(t, out, code, 1, "preview pr-3/podinfo deleted: the mirror is gone", "preview pr-3/podinfo: Failed: analysis Failed", "verdict: Failed")
	})
	at("task has no verdict for an untrusted namespace", func(t *testing.T) {
		out, code := task.run(t, params("pr-4"), asPipeline)
		want(t, out, code, 2, "no verdict: Denied: no mirror policy in namespace demo allows namespace pr-4")
	})
	at("task gives up on a build never deployed, and deletes its Preview", func(t *testing.T) {
		p := params("pr-5")
		p["timeout"] = "20s"
		out, code := task.run(t, p, asPipeline)
		want(t, out, code, 3, "no verdict after 20s: Pending: service pr-5/podinfo not found", "no verdict within 20s", "preview pr-5/podinfo deleted")
		err := c.Get(t.Context(), types.NamespacedName{Namespace: "pr-5", Name: "podinfo"}, &v1alpha1.Preview{})
		if !apierrors.IsNotFound(err) {
			t.Errorf("pr-5's Preview after the step: %v, want it gone", err)
		}
	})
	at("task cannot touch production", func(t *testing.T) {
		out, code := task.run(t, params(box.Namespace), asPipeline)
		want(t, out, code, 4, "forbidden", "could not ask for a verdict")
		var list v1alpha1.PreviewList
		if err := c.List(t.Context(), &list); err != nil {
			t.Fatal(err)
		}
		for _, p := range list.Items {
			if p.Namespace == box.Namespace {
				t.Errorf("a Preview in production: %s", p.Name)
			}
		}
	})
	at("task refuses values that are not names, numbers or durations", func(t *testing.T) {
		p := params("pr-6")
		p["port"], p["rollout"], p["timeout"] = "http", "Podinfo", "soon"
		out, code := task.run(t, p, asPipeline)
		want(t, out, code, 4, `ROLLOUT="Podinfo" (want a Kubernetes name)`, `PORT="http" (want a number)`, `TIMEOUT="soon" (want a duration`)
	})
	cases.Wait()
	t.Logf("the verdicts took %s", time.Since(start).Round(time.Second))
}

// want fails the test unless the step exited with wantCode and its output
// holds each of says.
func want(t *testing.T, out string, code, wantCode int, says ...string) {
	t.Helper()
	t.Logf("the step (exit %d):\n%s", code, out)
	if code != wantCode {
		t.Errorf("exit %d, want %d", code, wantCode)
	}
	for _, s := range says {
		if !strings.Contains(out, s) {
			t.Errorf("the output lacks %q", s)
		}
	}
}

// deployBuild deploys a pull request's build into namespace ns as jx
// preview would, and as an administrator: examples/preview's app.yaml, its
// Deployment answering with errorRate (read by the sandbox's pods), and
// analysistemplate.yaml, but not preview.yaml, which the step makes. It
// returns once the Deployment has rolled out, as helm --wait does.
func deployBuild(t *testing.T, admin []string, ns, errorRate string) {
	t.Helper()
	docs := documents(t, filepath.Join("preview", "app.yaml"))
	var d appsv1.Deployment
	if err := json.Unmarshal(docs[0], &d); err != nil || d.Kind != "Deployment" {
		t.Fatalf("preview/app.yaml: want a Deployment first, got %s (%v)", d.Kind, err)
	}
	env := d.Spec.Template.Spec.Containers[0].Env
	i := slices.IndexFunc(env, func(e corev1.EnvVar) bool { return e.Name == "DEMO_ERROR_RATE" })
	if i < 0 {
		t.Fatal("preview/app.yaml: the Deployment's container has no DEMO_ERROR_RATE")
	}
	env[i].Value = errorRate
	raw, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	docs[0] = raw
	docs = append(docs, documents(t, filepath.Join("preview", "analysistemplate.yaml"))...)
	run(t, "", admin, string(bytes.Join(docs, []byte("\n"))), "kubectl", "apply", "-n", ns, "-f", "-")
	run(t, "", admin, "", "kubectl", "rollout", "status", "deployment/"+d.Name, "-n", ns, "--timeout", "2m")
}

// run runs the Task's step as a TaskRun would: its script, with the
// parameters through the step's environment, and the tools' environment.
func (tk *task) run(t *testing.T, params map[string]string, tools []string) (string, int) {
	t.Helper()
	env, err := tk.env(params, nil)
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(t.TempDir(), "step.sh")
	if err := os.WriteFile(script, []byte(tk.Spec.Steps[0].Script), 0o755); err != nil {
		t.Fatal(err)
	}
	return runCode(t, "", append(env, tools...), "bash", script)
}

// workflow is the part of a GitHub Actions workflow the test reads: its
// trigger, and its one job's environment and steps.
type workflow struct {
	// On is the workflow's "on", which YAML 1.1 (as sigs.k8s.io/yaml reads
	// it) takes for the boolean true; GitHub reads it as the key "on".
	On   map[string]any    `json:"true"`
	Env  map[string]string `json:"env"`
	Jobs map[string]job    `json:"jobs"`
}

type job struct {
	Env   map[string]string `json:"env"`
	Steps []actionStep      `json:"steps"`
}

type actionStep struct {
	Name             string            `json:"name"`
	Uses             string            `json:"uses"`
	Run              string            `json:"run"`
	Shell            string            `json:"shell"`
	WorkingDirectory string            `json:"working-directory"`
	Env              map[string]string `json:"env"`
}

// readWorkflow reads a workflow of one job that runs on pull requests and
// splices no expression into a step's commands (GitHub's advice against
// script injection): expressions go into env.
func readWorkflow(t *testing.T, path string) *workflow {
	t.Helper()
	var w workflow
	decodeFile(t, path, &w, false)
	if _, ok := w.On["pull_request"]; !ok || len(w.Jobs) != 1 {
		t.Fatalf("%s: on %v with %d jobs, want one job on pull_request", path, w.On, len(w.Jobs))
	}
	for _, s := range w.job().Steps {
		if strings.Contains(s.Run, "${{") {
			t.Fatalf("%s: step %q splices an expression into its commands; pass it in env", path, s.Name)
		}
	}
	return &w
}

func (w *workflow) job() job {
	for _, j := range w.Jobs {
		return j
	}
	return job{}
}

// step is the job's step of that name.
func (w *workflow) step(t *testing.T, name string) actionStep {
	t.Helper()
	steps := w.job().Steps
	i := slices.IndexFunc(steps, func(s actionStep) bool { return s.Name == name })
	if i < 0 {
		t.Fatalf("the workflow has no step %q", name)
	}
	return steps[i]
}

// standIns are the actions the workflow uses, each with what the test puts
// in its place: the checkout of Tugboat is the repository itself, Go is the
// one running the test, and kubectl is the sandbox's (on the tools' PATH).
var standIns = []string{"actions/checkout@", "actions/setup-go@", "azure/setup-kubectl@"}

var expression = regexp.MustCompile(`\$\{\{\s*(.*?)\s*\}\}`)

// run runs the job as a runner would, its steps in order until one fails:
// each run step with bash -eo pipefail, in its working directory, with the
// workflow's, job's and step's env, the expressions in them given by
// values, and what earlier steps wrote to $GITHUB_ENV. It returns the
// steps' output and the exit code of the last one run.
func (w *workflow) run(t *testing.T, values map[string]string, tools []string) (string, int) {
	t.Helper()
	workspace, runnerTemp := t.TempDir(), t.TempDir()
	if err := os.Symlink(toolchain.Root(), filepath.Join(workspace, "tugboat")); err != nil {
		t.Fatal(err)
	}
	eval := func(env map[string]string) []string {
		var out []string
		for k, v := range env {
			out = append(out, k+"="+expression.ReplaceAllStringFunc(v, func(m string) string {
				given, ok := values[expression.FindStringSubmatch(m)[1]]
				if !ok {
					t.Fatalf("env %s: no value for %s", k, m)
				}
				return given
			}))
		}
		return out
	}
	// setup-go puts the binaries go install makes on the PATH.
	gobin := t.TempDir()
	path := slices.IndexFunc(tools, func(e string) bool { return strings.HasPrefix(e, "PATH=") })
	base := slices.Clone(tools)
	base[path] = "PATH=" + gobin + string(os.PathListSeparator) + strings.TrimPrefix(tools[path], "PATH=")
	base = append(base, goEnv(t)...)
	githubEnv := filepath.Join(runnerTemp, "github-env")
	base = append(base, "GOBIN="+gobin, "GITHUB_WORKSPACE="+workspace, "RUNNER_TEMP="+runnerTemp, "GITHUB_ENV="+githubEnv)
	base = append(base, eval(w.Env)...)
	base = append(base, eval(w.job().Env)...)

	var out strings.Builder
	for i, s := range w.job().Steps {
		if s.Uses != "" {
			if !slices.ContainsFunc(standIns, func(a string) bool { return strings.HasPrefix(s.Uses, a) }) {
				t.Fatalf("step %d uses %s, for which the test has no stand-in", i, s.Uses)
			}
			continue
		}
		if s.Shell != "" && s.Shell != "bash" {
			t.Fatalf("step %q: shell %s; the test runs bash", s.Name, s.Shell)
		}
		script := filepath.Join(runnerTemp, "step.sh")
		if err := os.WriteFile(script, []byte(s.Run), 0o644); err != nil {
			t.Fatal(err)
		}
		stepOut, code := runCode(t, filepath.Join(workspace, s.WorkingDirectory), append(slices.Clone(base), eval(s.Env)...),
			"bash", "--noprofile", "--norc", "-eo", "pipefail", script)
		out.WriteString(stepOut)
		if code != 0 {
			return out.String(), code
		}
		written, err := os.ReadFile(githubEnv)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(written)), "\n") {
			if line == "" {
				continue
			}
			if !strings.Contains(line, "=") || strings.Contains(line, "<<") {
				t.Fatalf("step %q wrote %q to $GITHUB_ENV; the test reads NAME=value lines", s.Name, line)
			}
			base = append(base, line)
		}
		if err := os.Remove(githubEnv); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}
	return out.String(), 0
}

// goEnv lets go install work offline with another HOME: the module and
// build caches of the Go running the test, and no toolchain download.
func goEnv(t *testing.T) []string {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), "go", "env", "GOMODCACHE", "GOCACHE").Output()
	if err != nil {
		t.Fatalf("go env: %v", err)
	}
	dirs := strings.Fields(string(out))
	if len(dirs) != 2 {
		t.Fatalf("go env GOMODCACHE GOCACHE: %q", out)
	}
	return []string{"GOMODCACHE=" + dirs[0], "GOCACHE=" + dirs[1], "GOPROXY=off", "GOFLAGS=-mod=readonly", "GOTOOLCHAIN=local"}
}

// runCode runs a command with exactly env, within ten minutes, and returns
// its output and exit code; it fails the test only if the command could
// not run.
func runCode(t *testing.T, dir string, env []string, name string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Env = dir, env
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return string(out), exit.ExitCode()
	case err != nil:
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out), 0
}
