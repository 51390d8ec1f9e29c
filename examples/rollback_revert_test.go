package examples_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/sandbox/demo"
)

// TestRollbackRevertTask runs the step of the Tekton Task in
// ci/rollback-revert as a TaskRun would, with real kubectl, kubectl-tug and
// git, against the sandbox: podinfo is released with a new image and
// promoted, a person rolls back to revision 1 with `kubectl tug rollback`,
// and the Task, as its ServiceAccount, turns that into a branch of the
// GitOps repository and a pull request (to a stand-in for GitHub's API).
// Applying the branch's manifest, as a GitOps tool would after the merge,
// ends the pin with revision 1 serving and nothing rolled out.
func TestRollbackRevertTask(t *testing.T) {
	task := readTask(t, filepath.Join("ci", "rollback-revert", "task.yaml"))
	tools := kubectlTug(t)
	box := upSandbox(t, "prod")
	c, key := box.Client(), types.NamespacedName{Namespace: box.Namespace, Name: "podinfo"}
	admin := append(slices.Clone(tools), "KUBECONFIG="+box.Cluster.KubeConfigPath)

	// Given podinfo promoted to a new image, which git holds.
	manifest, err := os.ReadFile(filepath.Join("podinfo", "deployment.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var d appsv1.Deployment
	if err := json.Unmarshal(documents(t, filepath.Join("podinfo", "deployment.yaml"))[0], &d); err != nil {
		t.Fatal(err)
	}
	if err := demo.Apply(t.Context(), c, "podinfo", box.Namespace); err != nil {
		t.Fatal(err)
	}
	if err := demo.WaitHealthy(t.Context(), c, key, 3*time.Minute); err != nil {
		t.Fatalf("podinfo never became healthy: %v\n%s", err, box.ControllerLog(30))
	}
	// Only the image changes, so that the revert is the whole of revision 1.
	release, old := demo.Releases[0], d.Spec.Template.Spec.Containers[0].Image
	for _, e := range d.Spec.Template.Spec.Containers[0].Env {
		switch e.Name {
		case "DEMO_ERROR_RATE":
			release.ErrorRate = e.Value
		case "DEMO_LATENCY_MS":
			release.LatencyMs = e.Value
		}
	}
	var log strings.Builder
	if res, err := demo.Ship(t.Context(), c, key, release, 4*time.Minute, &log); err != nil || res.Got != demo.Promoted {
		t.Fatalf("release %s: %s (%v)\n%s\n%s", release.Image, res.Got, err, log.String(), box.ControllerLog(30))
	}
	origin := filepath.Join(t.TempDir(), "gitops")
	released := bytes.Replace(manifest, []byte("image: "+old), []byte("image: "+release.Image), 1)
	if bytes.Equal(released, manifest) {
		t.Fatalf("podinfo/deployment.yaml has no line image: %s", old)
	}
	if err := os.MkdirAll(filepath.Join(origin, "deploy"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(origin, "deploy", "podinfo.yaml"), released, 0o644); err != nil {
		t.Fatal(err)
	}
	gitIn := func(args ...string) string {
		t.Helper()
		return run(t, origin, append(slices.Clone(tools), "GIT_AUTHOR_NAME=dev", "GIT_AUTHOR_EMAIL=dev@example.com",
			"GIT_COMMITTER_NAME=dev", "GIT_COMMITTER_EMAIL=dev@example.com"), "", "git", args...)
	}
	gitIn("init", "--quiet", "--initial-branch=main")
	gitIn("add", ".")
	gitIn("commit", "--quiet", "-m", "podinfo "+release.Image)
	main := gitIn("rev-parse", "main")

	// When a person rolls back to revision 1, with a reason JSON must escape.
	reason := `checkout 500s since 6.7.1 ("payment" \ "cart")`
	run(t, "", admin, "", "kubectl", "tug", "rollback", "podinfo", "--to-revision", "1", "--reason", reason, "-n", box.Namespace)
	var ro v1alpha1.Rollout
	if err := c.Get(t.Context(), key, &ro); err != nil {
		t.Fatal(err)
	}
	pin := ro.Status.Rollback
	if pin == nil || pin.Number != 1 || pin.Reason != reason {
		t.Fatalf("after the rollback: pin %+v, status %+v", pin, ro.Status)
	}
	var event string
	poll(t, time.Minute, "the RolledBack event", func(ctx context.Context) (bool, error) {
		var evs eventsv1.EventList
		if err := c.List(ctx, &evs, client.InNamespace(key.Namespace)); err != nil {
			return false, err
		}
		for _, ev := range evs.Items {
			if ev.Reason == "RolledBack" && strings.Contains(ev.Annotations[v1alpha1.AnnotationRolledBack], pin.Request) {
				event = ev.Annotations[v1alpha1.AnnotationRolledBack]
			}
		}
		return event != "", nil
	})

	// Then the Task, as its ServiceAccount, pushes a branch that reverts git
	// to revision 1 and opens a pull request for it.
	create(t, box.Cluster.Env, filepath.Join("ci", "rollback-revert", "rbac.yaml"), box.Namespace)
	github := newGitHub(t)
	params := map[string]string{
		"rollout": "podinfo", "repo": origin, "manifest": "deploy/podinfo.yaml", "image": "tugboat-ci",
		"github-repo": "tugboatdev/gitops", "github-api": github.URL,
	}
	env, err := task.env(params, map[string]map[string]string{"github-token": {"token": "t0ken"}})
	if err != nil {
		t.Fatal(err)
	}
	env = append(env, tools...)
	env = append(env, "KUBECONFIG="+serviceAccountConfig(t, box.Cluster.KubeConfig, box.Namespace, "tugboat-rollback-revert"))
	script := filepath.Join(t.TempDir(), "revert.sh")
	if err := os.WriteFile(script, []byte(task.Spec.Steps[0].Script), 0o755); err != nil {
		t.Fatal(err)
	}
	out := run(t, "", env, "", "bash", script)
	t.Logf("the Task's step:\n%s", out)

	branches := strings.Fields(gitIn("for-each-ref", "--format=%(refname:short)", "refs/heads/"))
	if len(branches) != 2 || branches[0] != "main" || !strings.HasPrefix(branches[1], "tugboat/revert-podinfo-to-1-") {
		t.Fatalf("branches %q, want main and tugboat/revert-podinfo-to-1-...\n%s", branches, out)
	}
	branch := branches[1]
	if got := gitIn("rev-parse", "main"); got != main {
		t.Errorf("main moved from %s to %s", main, got)
	}
	if got := gitIn("show", branch+":deploy/podinfo.yaml") + "\n"; got != string(manifest) {
		t.Errorf("%s holds\n%s\nwant revision 1's, as podinfo/deployment.yaml has it:\n%s", branch, got, manifest)
	}
	msg := gitIn("log", "-1", "--format=%B", branch)
	for _, want := range []string{
		fmt.Sprintf("Revert podinfo to revision 1 (%s)\n", pin.Revision),
		fmt.Sprintf("back to revision 1 (%s) from revision 2 (%s)", pin.Revision, pin.From),
		"on request of " + pin.RequestedBy + ": " + reason,
		"podinfo: " + release.Image + " -> " + old,
		"Tugboat-Rollback-Request: " + pin.Request,
		"Tugboat-Rolled-Back: " + event,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("commit message lacks %q:\n%s", want, msg)
		}
	}
	subject, body, _ := strings.Cut(msg, "\n\n")
	pr := github.pulls(t, 1)[0]
	if want := (pullRequest{Title: subject, Head: branch, Base: "main", Body: body, Auth: "Bearer t0ken"}); pr != want {
		t.Errorf("pull request\n%+v\nwant\n%+v", pr, want)
	}

	// A second run, as when a TaskRun is retried, finds the branch pushed.
	if out := run(t, "", env, "", "bash", script); !strings.Contains(out, "already pushed") {
		t.Errorf("second run:\n%s", out)
	}
	github.pulls(t, 1)

	// And the revert, once merged and applied, ends the pin on revision 1.
	run(t, "", admin, gitIn("show", branch+":deploy/podinfo.yaml"), "kubectl", "apply", "-n", box.Namespace, "-f", "-")
	poll(t, time.Minute, "the pin to end with revision 1 serving", func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, key, &ro); err != nil {
			return false, err
		}
		s := ro.Status
		return s.Rollback == nil && s.StableRevision == pin.Revision && s.CanaryRevision == "" && s.Phase == v1alpha1.PhaseHealthy, nil
	})
}

// pullRequest is what a request to GitHub's "create a pull request" asked for.
type pullRequest struct {
	Title, Head, Base, Body string
	Auth                    string `json:"-"`
}

// gitHub stands in for GitHub's API: it takes pull requests and records them.
type gitHub struct {
	*httptest.Server
	mu   sync.Mutex
	got  []pullRequest
	errs []error
}

func newGitHub(t *testing.T) *gitHub {
	g := &gitHub{}
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var pr pullRequest
		d := json.NewDecoder(r.Body)
		d.DisallowUnknownFields()
		err := d.Decode(&pr)
		if err == nil && (r.Method != http.MethodPost || r.URL.Path != "/repos/tugboatdev/gitops/pulls") {
			err = fmt.Errorf("%s %s, want POST /repos/tugboatdev/gitops/pulls", r.Method, r.URL.Path)
		}
		pr.Auth = r.Header.Get("Authorization")
		g.mu.Lock()
		defer g.mu.Unlock()
		if err != nil {
			g.errs = append(g.errs, err)
			http.Error(w, err.Error(), http.StatusUnprocessableEntity)
			return
		}
		g.got = append(g.got, pr)
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"url":"%[1]s/repos/tugboatdev/gitops/pulls/%[2]d","html_url":"https://github.com/tugboatdev/gitops/pull/%[2]d"}`, g.URL, len(g.got))
	}))
	t.Cleanup(g.Close)
	return g
}

// pulls returns the pull requests asked for, failing unless there are n.
func (g *gitHub) pulls(t *testing.T, n int) []pullRequest {
	t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, err := range g.errs {
		t.Errorf("github: %v", err)
	}
	if len(g.got) != n {
		t.Fatalf("%d pull requests, want %d: %+v", len(g.got), n, g.got)
	}
	return g.got
}
