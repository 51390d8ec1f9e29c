package examples_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/sandbox/demo"
)

var resultPath = regexp.MustCompile(`^\$\(results\.([a-z0-9-]+)\.path\)$`)

// TestTugboatWaitTask runs examples/ci/tugboat-wait's step, as the
// pipeline's ServiceAccount with only rbac.yaml's rights, against the
// sandbox: after a release within the SLO it exits 0 with the new revision
// in its results; after one outside it, 1 with the reason the Rollout gives;
// while a release is still under way past its timeout, 3; and for a
// Rollout that is not there, 4.
func TestTugboatWaitTask(t *testing.T) {
	task := readTask(t, filepath.Join("ci", "tugboat-wait", "task.yaml"))
	box, tools, admin := podinfoInSandbox(t, "prod")
	c, key := box.Client(), types.NamespacedName{Namespace: box.Namespace, Name: "podinfo"}
	run(t, "", admin, "", "kubectl", "apply", "-n", box.Namespace, "-f", filepath.Join("ci", "tugboat-wait", "rbac.yaml"))
	asPipeline := append(slices.Clone(tools), "KUBECONFIG="+serviceAccountConfig(t, box.Cluster.KubeConfig, "jx", "tekton-bot"))
	script := filepath.Join(t.TempDir(), "wait.sh")
	if err := os.WriteFile(script, []byte(task.Spec.Steps[0].Script), 0o755); err != nil {
		t.Fatal(err)
	}

	// step runs the Task's step and returns its exit code and results.
	step := func(t *testing.T, params map[string]string) (int, map[string]string) {
		t.Helper()
		env, err := task.env(params, nil)
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		for i, e := range env {
			name, value, _ := strings.Cut(e, "=")
			if m := resultPath.FindStringSubmatch(value); m != nil {
				env[i] = name + "=" + filepath.Join(dir, m[1])
			}
		}
		cmd := exec.CommandContext(t.Context(), "bash", script)
		cmd.Env = append(env, asPipeline...)
		out, err := cmd.CombinedOutput()
		code := 0
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			code = exit.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		results := map[string]string{}
		for _, r := range task.Spec.Results {
			b, err := os.ReadFile(filepath.Join(dir, r.Name))
			if err != nil {
				t.Fatalf("result %s not written: %v\n%s", r.Name, err, out)
			}
			results[r.Name] = string(b)
		}
		t.Logf("exit %d, results %v\n%s", code, results, out)
		return code, results
	}
	params := func(timeout string) map[string]string {
		return map[string]string{"namespace": box.Namespace, "rollout": "podinfo", "timeout": timeout, "image": "tugboat-ci"}
	}
	rollout := func() *v1alpha1.Rollout {
		var ro v1alpha1.Rollout
		if err := c.Get(t.Context(), key, &ro); err != nil {
			t.Fatal(err)
		}
		return &ro
	}

	t.Run("a release within the SLO", func(t *testing.T) {
		if _, err := demo.Start(t.Context(), c, key, demo.Releases[0]); err != nil {
			t.Fatal(err)
		}
		code, res := step(t, params("4m"))
		if ro := rollout(); code != 0 || res["phase"] != "Healthy" || res["revision"] != ro.Status.StableRevision || ro.Status.StableRevision == "" {
			t.Errorf("exit %d, results %v; want 0, Healthy at %s", code, res, ro.Status.StableRevision)
		}
	})
	t.Run("the GitHub Actions composite action, the same commands", func(t *testing.T) {
		code, out := runAction(t, filepath.Join("ci", "github-actions", "tugboat-wait", "action.yml"), task.Spec.Steps[0].Script,
			map[string]string{"namespace": box.Namespace, "rollout": "podinfo", "timeout": "1m"}, asPipeline)
		if ro := rollout(); code != 0 || out["phase"] != "Healthy" || out["revision"] != ro.Status.StableRevision || !strings.Contains(out["message"], "is stable") {
			t.Errorf("exit %d, outputs %v; want 0, Healthy at %s", code, out, ro.Status.StableRevision)
		}
	})
	t.Run("released through the trigger endpoint, with no cluster credentials, then waited for", func(t *testing.T) {
		hmacKey := "a key for the sandbox's receiver, 32 bytes or more"
		if err := c.Create(t.Context(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: box.Namespace, Name: "tugboat-receiver-key"},
			StringData: map[string]string{"token": hmacKey}}); err != nil {
			t.Fatal(err)
		}
		run(t, "", admin, "", "kubectl", "apply", "-n", box.Namespace, "-f", filepath.Join("ci", "trigger", "receiver.yaml"))
		trigger := filepath.Join("ci", "github-actions", "tugboat-trigger", "action.yml")
		inputs := map[string]string{
			"endpoint": box.TriggerURL + "/hook/" + box.Namespace + "/ci", "key": hmacKey,
			"action": "setImage", "rollout": "podinfo", "container": "podinfo", "image": "ghcr.io/stefanprodan/podinfo:6.7.3",
		}
		before := rollout()
		inputs["key"] = "not the receiver's key, though just as long"
		if code, out := runAction(t, trigger, "", inputs, tools); code != 4 || !strings.Contains(out["message"], "not signed with this receiver's key") {
			t.Errorf("wrongly signed: exit %d, outputs %v; want 4 with the reason", code, out)
		}
		if after := rollout(); after.Status.CanaryRevision != "" || after.Status.StableRevision != before.Status.StableRevision {
			t.Fatalf("a wrongly signed request started a rollout: %+v", after.Status)
		}
		inputs["key"] = hmacKey
		// tools has no KUBECONFIG: the action reaches only the endpoint.
		if code, out := runAction(t, trigger, "", inputs, tools); code != 0 || !strings.Contains(out["message"], "container podinfo set to ghcr.io/stefanprodan/podinfo:6.7.3") {
			t.Fatalf("exit %d, outputs %v; want 0, the image set", code, out)
		}
		code, out := runAction(t, filepath.Join("ci", "github-actions", "tugboat-wait", "action.yml"), task.Spec.Steps[0].Script,
			map[string]string{"namespace": box.Namespace, "rollout": "podinfo", "timeout": "4m"}, asPipeline)
		if ro := rollout(); code != 0 || out["revision"] == before.Status.StableRevision || out["revision"] != ro.Status.StableRevision {
			t.Errorf("wait after the trigger: exit %d, outputs %v; want 0 at a new revision (was %s)", code, out, before.Status.StableRevision)
		}
	})
	t.Run("a Jenkins X release through the environment repository", func(t *testing.T) {
		pr, promote := readPipelineRun(t, filepath.Join("ci", "jenkins-x", "release.yaml"), "promote")
		if pr.Spec.TaskRunTemplate.ServiceAccountName != "tekton-bot" {
			t.Errorf("the pipeline runs as %q, not tekton-bot (rbac.yaml's)", pr.Spec.TaskRunTemplate.ServiceAccountName)
		}
		waitParams := pr.taskParams(t, "wait-for-rollout")
		if waitParams["namespace"] != box.Namespace || waitParams["rollout"] != "podinfo" {
			t.Fatalf("wait-for-rollout waits for %v", waitParams)
		}
		// Given the environment repository holding podinfo as examples/podinfo has it.
		gitEnv := append(slices.Clone(tools), "GIT_AUTHOR_NAME=dev", "GIT_AUTHOR_EMAIL=dev@example.com", "GIT_COMMITTER_NAME=dev", "GIT_COMMITTER_EMAIL=dev@example.com")
		seed, origin := t.TempDir(), filepath.Join(t.TempDir(), "jx-production.git")
		manifest, err := os.ReadFile(filepath.Join("podinfo", "deployment.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(seed, "config-root", "namespaces", box.Namespace, "podinfo")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "podinfo-deploy.yaml"), manifest, 0o644); err != nil {
			t.Fatal(err)
		}
		run(t, seed, gitEnv, "", "git", "init", "--quiet", "--initial-branch=main")
		run(t, seed, gitEnv, "", "git", "add", ".")
		run(t, seed, gitEnv, "", "git", "commit", "--quiet", "-m", "podinfo")
		run(t, "", gitEnv, "", "git", "clone", "--quiet", "--bare", seed, origin)
		before := rollout().Status.StableRevision

		// When the pipeline's promote step runs, and the boot job applies
		// the repository,
		params := pr.taskParams(t, "promote")
		params["environment-repository"] = "file://" + origin
		env, err := promote.env(params, nil)
		if err != nil {
			t.Fatal(err)
		}
		script := filepath.Join(t.TempDir(), "promote.sh")
		if err := os.WriteFile(script, []byte(promote.Spec.Steps[0].Script), 0o755); err != nil {
			t.Fatal(err)
		}
		out := run(t, "", append(env, gitEnv...), "", "bash", script)
		if !strings.Contains(out, "promoted prod/podinfo to ghcr.io/stefanprodan/podinfo:6.7.6") {
			t.Fatalf("promote: %s", out)
		}
		if again := run(t, "", append(env, gitEnv...), "", "bash", script); !strings.Contains(again, "already runs") {
			t.Errorf("promoting the same image again: %s", again)
		}
		applied := t.TempDir()
		run(t, "", gitEnv, "", "git", "clone", "--quiet", origin, applied)
		run(t, applied, admin, "", "kubectl", "apply", "--server-side", "--force-conflicts", "--field-manager=jx-boot",
			"-n", box.Namespace, "-f", filepath.Join("config-root", "namespaces", box.Namespace, "podinfo"))

		// then the wait step sees the new image rolled out.
		code, res := step(t, waitParams)
		ro := rollout()
		if code != 0 || res["revision"] == before || res["revision"] != ro.Status.StableRevision {
			t.Errorf("wait: exit %d, results %v; want 0 at a new revision (was %s)", code, res, before)
		}
		var d appsv1.Deployment
		if err := c.Get(t.Context(), types.NamespacedName{Namespace: box.Namespace, Name: "podinfo-primary"}, &d); err != nil || d.Spec.Template.Spec.Containers[0].Image != "ghcr.io/stefanprodan/podinfo:6.7.6" {
			t.Errorf("primary runs %v (%v): want the promoted image", d.Spec.Template.Spec.Containers, err)
		}
	})
	t.Run("a release outside it", func(t *testing.T) {
		before := rollout().Status.StableRevision
		if _, err := demo.Start(t.Context(), c, key, demo.Releases[1]); err != nil {
			t.Fatal(err)
		}
		code, res := step(t, params("4m"))
		if code != 1 || res["phase"] != "Degraded" || res["revision"] != before || !strings.Contains(res["message"], "success-rate") || len(res["message"]) > 4000 {
			t.Errorf("exit %d, results %v; want 1, Degraded at %s with the reason", code, res, before)
		}
	})
	t.Run("still under way past the timeout", func(t *testing.T) {
		if _, err := demo.Start(t.Context(), c, key, demo.Release{Name: "slow", Image: "ghcr.io/stefanprodan/podinfo:6.7.5", ErrorRate: "0.001", LatencyMs: "45"}); err != nil {
			t.Fatal(err)
		}
		if code, res := step(t, params("3s")); code != 3 || res["phase"] != "Progressing" {
			t.Errorf("exit %d, results %v; want 3 while Progressing", code, res)
		}
	})
	t.Run("no such Rollout", func(t *testing.T) {
		p := params("10s")
		p["rollout"] = "nope"
		if code, _ := step(t, p); code != 4 {
			t.Errorf("exit %d, want 4", code)
		}
	})
}

// compositeAction is the part of a GitHub composite action that
// examples/ci uses, decoded strictly.
type compositeAction struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Inputs      map[string]struct {
		Description string `json:"description"`
		Required    bool   `json:"required"`
		Default     string `json:"default"`
	} `json:"inputs"`
	Outputs map[string]struct {
		Description string `json:"description"`
		Value       string `json:"value"`
	} `json:"outputs"`
	Runs struct {
		Using string `json:"using"`
		Steps []struct {
			ID    string            `json:"id"`
			If    string            `json:"if"`
			Shell string            `json:"shell"`
			Env   map[string]string `json:"env"`
			Run   string            `json:"run"`
		} `json:"steps"`
	} `json:"runs"`
}

var actionExpr = regexp.MustCompile(`\$\{\{\s*([a-z.-]+)\s*\}\}`)

// runAction runs a composite action's steps as a runner would (bash -e
// -o pipefail, each step's env with its expressions given, $GITHUB_OUTPUT),
// checking first, when script is given, that its first step runs the
// Task's commands; it returns the first step's exit code and the action's
// outputs.
func runAction(t *testing.T, path, script string, inputs map[string]string, env []string) (int, map[string]string) {
	t.Helper()
	var a compositeAction
	decodeFile(t, path, &a, true)
	if a.Runs.Using != "composite" || len(a.Runs.Steps) == 0 {
		t.Fatalf("%s: %s with %d steps", path, a.Runs.Using, len(a.Runs.Steps))
	}
	for name, in := range a.Inputs {
		if _, given := inputs[name]; in.Required && !given {
			t.Fatalf("%s: required input %s not given", path, name)
		}
	}
	if want := strings.TrimPrefix(script, "#!/usr/bin/env bash\n"); script != "" && a.Runs.Steps[0].Run != want {
		t.Fatalf("%s runs other commands than the Task's step:\n%s\nwant\n%s", path, a.Runs.Steps[0].Run, want)
	}
	temp, dir := t.TempDir(), t.TempDir()
	output := filepath.Join(dir, "output")
	steps := map[string]map[string]string{}
	eval := func(s string) string {
		return actionExpr.ReplaceAllStringFunc(s, func(m string) string {
			ref := actionExpr.FindStringSubmatch(m)[1]
			switch {
			case ref == "runner.temp":
				return temp
			case strings.HasPrefix(ref, "inputs."):
				name := strings.TrimPrefix(ref, "inputs.")
				if v, ok := inputs[name]; ok {
					return v
				}
				return a.Inputs[name].Default
			case strings.HasPrefix(ref, "steps."):
				parts := strings.Split(ref, ".") // steps.ID.outputs.NAME
				return steps[parts[1]][parts[3]]
			}
			t.Fatalf("%s: actionExpr %s", path, m)
			return ""
		})
	}
	first := 0
	for i, st := range a.Runs.Steps {
		if st.Shell != "bash" || strings.Contains(st.Run, "${{") {
			t.Fatalf("%s: step %s: shell %q, or an actionExpr in its commands", path, st.ID, st.Shell)
		}
		if i > 0 && first != 0 && st.If != "always()" {
			continue
		}
		if err := os.WriteFile(output, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.CommandContext(t.Context(), "bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", st.Run)
		cmd.Env = append(slices.Clone(env), "GITHUB_OUTPUT="+output)
		for k, v := range st.Env {
			cmd.Env = append(cmd.Env, k+"="+eval(v))
		}
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		switch {
		case errors.As(err, &exit) && i == 0:
			first = exit.ExitCode()
		case err != nil:
			t.Fatalf("%s: step %s: %v\n%s", path, st.ID, err, out)
		}
		t.Logf("step %s:\n%s", st.ID, out)
		steps[st.ID] = githubOutputs(t, output)
	}
	outputs := map[string]string{}
	for name, o := range a.Outputs {
		outputs[name] = eval(o.Value)
	}
	return first, outputs
}

// githubOutputs reads a $GITHUB_OUTPUT file: name=value lines and
// name<<DELIMITER blocks.
func githubOutputs(t *testing.T, path string) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	lines := strings.Split(string(raw), "\n")
	for i := 0; i < len(lines); i++ {
		if name, delim, ok := strings.Cut(lines[i], "<<"); ok {
			var value []string
			for i++; i < len(lines) && lines[i] != delim; i++ {
				value = append(value, lines[i])
			}
			out[name] = strings.TrimSuffix(strings.Join(value, "\n"), "\n")
			continue
		}
		if name, value, ok := strings.Cut(lines[i], "="); ok {
			out[name] = value
		}
	}
	return out
}
