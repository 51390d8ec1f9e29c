package examples_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"github.com/tugboatdev/tugboat/sandbox"
	"github.com/tugboatdev/tugboat/sandbox/demo"
	"github.com/tugboatdev/tugboat/sandbox/toolchain"
)

// kubectlTug is the environment a CI step's commands run in: a PATH with
// the sandbox's kubectl and kubectl-tug built from cmd/kubectl-tug, and a
// HOME and TMPDIR of their own.
func kubectlTug(t *testing.T) []string {
	t.Helper()
	kubectl, err := toolchain.Path(toolchain.Kubectl)
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	build := exec.CommandContext(t.Context(), "go", "build", "-o", filepath.Join(bin, "kubectl-tug"), "./cmd/kubectl-tug")
	build.Dir = toolchain.Root()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build kubectl-tug: %v\n%s", err, out)
	}
	home := t.TempDir()
	return []string{
		"PATH=" + bin + string(os.PathListSeparator) + filepath.Dir(kubectl) + string(os.PathListSeparator) + os.Getenv("PATH"),
		"HOME=" + home, "TMPDIR=" + home, "GIT_CONFIG_NOSYSTEM=1",
	}
}

// upSandbox starts the sandbox with its applications in namespace, and
// stops it when the test ends.
func upSandbox(t *testing.T, namespace string) *sandbox.Sandbox {
	t.Helper()
	box, err := sandbox.Up(t.Context(), sandbox.Options{Dir: t.TempDir(), Namespace: namespace})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := box.Down(); err != nil {
			t.Errorf("sandbox down: %v", err)
		}
	})
	return box
}

// task is the part of a Tekton v1 Task that examples/ci uses. It is decoded
// strictly: a field Tekton's Task lacks, or this one, fails the test.
type task struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec taskSpec `json:"spec"`
}

// taskSpec is a Task's spec, or a pipeline's inline taskSpec.
type taskSpec struct {
	Description string `json:"description"`
	Params      []struct {
		Name        string  `json:"name"`
		Description string  `json:"description"`
		Default     *string `json:"default"`
	} `json:"params"`
	Results []struct {
		Name        string `json:"name"`
		Description string `json:"description"`
	} `json:"results"`
	Steps []struct {
		Name   string          `json:"name"`
		Image  string          `json:"image"`
		Env    []corev1.EnvVar `json:"env"`
		Script string          `json:"script"`
	} `json:"steps"`
}

// readTask decodes a one-step Task whose script takes its parameters only
// through the step's environment, as Tekton advises.
func readTask(t *testing.T, path string) *task {
	t.Helper()
	var tk task
	decodeFile(t, path, &tk, true)
	switch {
	case tk.APIVersion != "tekton.dev/v1" || tk.Kind != "Task":
		t.Fatalf("%s: %s %s, want a tekton.dev/v1 Task", path, tk.APIVersion, tk.Kind)
	case len(tk.Spec.Steps) != 1:
		t.Fatalf("%s: %d steps, want 1", path, len(tk.Spec.Steps))
	case strings.Contains(tk.Spec.Steps[0].Script, "$(params."):
		t.Fatalf("%s: the script splices a parameter into its text; pass it in env", path)
	}
	if _, err := tk.substitute(tk.Spec.Steps[0].Image, nil); err != nil {
		t.Fatalf("%s: image: %v", path, err)
	}
	return &tk
}

var param = regexp.MustCompile(`\$\(params\.([a-z0-9-]+)\)`)

// substitute replaces $(params.NAME) in s, as Tekton does, with the value
// given or else the parameter's default.
func (tk *task) substitute(s string, given map[string]string) (string, error) {
	var err error
	out := param.ReplaceAllStringFunc(s, func(m string) string {
		name := param.FindStringSubmatch(m)[1]
		for _, p := range tk.Spec.Params {
			switch {
			case p.Name != name:
				continue
			case given[name] != "":
				return given[name]
			case p.Default != nil:
				return *p.Default
			case given == nil: // only checking that the parameter exists
				return ""
			}
			err = fmt.Errorf("parameter %s has no value and no default", name)
			return ""
		}
		err = fmt.Errorf("no parameter %s", name)
		return ""
	})
	return out, err
}

// env is the environment of the Task's step: its variables with the
// parameters substituted, and those from Secrets (secret name, key, value)
// that exist.
func (tk *task) env(params map[string]string, secrets map[string]map[string]string) ([]string, error) {
	var env []string
	for _, e := range tk.Spec.Steps[0].Env {
		if e.ValueFrom == nil {
			value, err := tk.substitute(e.Value, params)
			if err != nil {
				return nil, fmt.Errorf("env %s: %w", e.Name, err)
			}
			env = append(env, e.Name+"="+value)
			continue
		}
		ref := e.ValueFrom.SecretKeyRef
		if ref == nil {
			return nil, fmt.Errorf("env %s: only secretKeyRef is supported here", e.Name)
		}
		name, err := tk.substitute(ref.Name, params)
		if err != nil {
			return nil, fmt.Errorf("env %s: %w", e.Name, err)
		}
		switch v, ok := secrets[name][ref.Key]; {
		case ok:
			env = append(env, e.Name+"="+v)
		case ref.Optional == nil || !*ref.Optional:
			return nil, fmt.Errorf("env %s: no key %s in Secret %s", e.Name, ref.Key, name)
		}
	}
	return env, nil
}

// serviceAccountConfig writes a kubeconfig that acts, through the admin's
// impersonation, as the ServiceAccount, with its namespace as the default,
// as kubectl is configured in a TaskRun's pod.
func serviceAccountConfig(t *testing.T, admin []byte, namespace, name string) string {
	t.Helper()
	cfg, err := clientcmd.Load(admin)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range cfg.AuthInfos {
		u.Impersonate = "system:serviceaccount:" + namespace + ":" + name
	}
	for _, c := range cfg.Contexts {
		c.Namespace = namespace
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// run runs a command with exactly env, and stdin, within two minutes, and
// fails the test unless it succeeds; it returns the output, trimmed.
func run(t *testing.T, dir string, env []string, stdin, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Env, cmd.Stdin = dir, env, strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// poll waits up to timeout for done; a failed read is tried again, and
// named if the time runs out.
func poll(t *testing.T, timeout time.Duration, what string, done func(context.Context) (bool, error)) {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(t.Context(), 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		ok, err := done(ctx)
		last = err
		return ok, nil
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v (last error: %v)", what, err, last)
	}
}

// podinfoInSandbox brings up the sandbox with examples/podinfo healthy in
// namespace, and returns it with the environment that runs kubectl and
// kubectl-tug (tools), and that as the sandbox's administrator (admin).
func podinfoInSandbox(t *testing.T, namespace string) (box *sandbox.Sandbox, tools, admin []string) {
	t.Helper()
	tools = kubectlTug(t)
	box = upSandbox(t, namespace)
	key := types.NamespacedName{Namespace: box.Namespace, Name: "podinfo"}
	admin = append(slices.Clone(tools), "KUBECONFIG="+box.Cluster.KubeConfigPath)
	if err := demo.Apply(t.Context(), box.Client(), "podinfo", box.Namespace); err != nil {
		t.Fatal(err)
	}
	if err := demo.WaitHealthy(t.Context(), box.Client(), key, 3*time.Minute); err != nil {
		t.Fatalf("podinfo never became healthy: %v\n%s", err, box.ControllerLog(30))
	}
	return box, tools, admin
}

// decodeFile decodes a YAML file into v, strictly (a field v lacks fails)
// or not, and fails the test naming the file.
func decodeFile(t *testing.T, path string, v any, strict bool) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	decode := yaml.Unmarshal
	if strict {
		decode = yaml.UnmarshalStrict
	}
	if err := decode(raw, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
