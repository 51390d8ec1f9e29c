package config_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/sandbox/cluster"
	"github.com/tugboatdev/tugboat/sandbox/toolchain"
)

// TestEditorsPromoteAndViewersRead: with config/rbac/people_roles.yaml
// installed, a namespace's editors (the built-in edit role, which
// kube-controller-manager aggregates tugboat-edit into) can kubectl tug
// promote, and its viewers can read the Rollout and not promote it.
func TestEditorsPromoteAndViewersRead(t *testing.T) {
	c := cluster.StartCluster(t, cluster.ClusterOptions{Nodes: 1})
	ctx := t.Context()
	raw, err := os.ReadFile(filepath.Join("rbac", "people_roles.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	d := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
	for {
		var role rbacv1.ClusterRole
		if err := d.Decode(&role); err != nil {
			break
		}
		if err := c.Client.Create(ctx, &role); err != nil {
			t.Fatal(err)
		}
	}
	ns := "team"
	if err := c.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	ro := &v1alpha1.Rollout{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"}, Spec: v1alpha1.RolloutSpec{
		TargetRef:      v1alpha1.TargetRef{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
		Service:        v1alpha1.ServiceSpec{Port: 80},
		TrafficRouting: v1alpha1.TrafficRouting{Istio: v1alpha1.IstioTrafficRouting{VirtualService: v1alpha1.IstioVirtualService{Name: "web", Routes: []string{"primary"}}}},
		Steps:          []v1alpha1.Step{{SetWeight: ptr.To[int32](10)}, {Pause: &v1alpha1.Pause{}}},
	}}
	if err := c.Client.Create(ctx, ro); err != nil {
		t.Fatal(err)
	}
	kubeconfig := map[string]string{}
	for user, role := range map[string]string{"alice": "edit", "bob": "view"} {
		if err := c.Client.Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: user},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects: []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}}}); err != nil {
			t.Fatal(err)
		}
		cfg, err := c.UserConfig(user)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), user)
		if err := cluster.WriteKubeConfig(cfg, ns, path); err != nil {
			t.Fatal(err)
		}
		kubeconfig[user] = path
	}
	// kube-controller-manager aggregates the roles in a moment.
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		var edit rbacv1.ClusterRole
		if err := c.Client.Get(ctx, client.ObjectKey{Name: "edit"}, &edit); err != nil {
			return false, nil
		}
		return slices.ContainsFunc(edit.Rules, func(r rbacv1.PolicyRule) bool {
			return slices.Contains(r.APIGroups, "tugboat.dev") && slices.Contains(r.Resources, "rollouts") && slices.Contains(r.Verbs, "patch")
		}), nil
	})
	if err != nil {
		t.Fatalf("tugboat-edit was never aggregated into edit: %v", err)
	}

	bin := filepath.Join(t.TempDir(), "kubectl-tug")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/kubectl-tug")
	build.Dir = toolchain.Root()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build kubectl-tug: %v\n%s", err, out)
	}
	tug := func(user string, args ...string) (int, string) {
		cmd := exec.CommandContext(ctx, bin, append(args, "--kubeconfig", kubeconfig[user])...)
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatal(err)
		}
		return cmd.ProcessState.ExitCode(), string(out)
	}
	annotation := func() string {
		var got v1alpha1.Rollout
		if err := c.Client.Get(ctx, client.ObjectKeyFromObject(ro), &got); err != nil {
			t.Fatal(err)
		}
		return got.Annotations[v1alpha1.AnnotationPromote]
	}

	if code, out := tug("bob", "get", "rollout", "web", "-o", "name"); code != 0 {
		t.Errorf("a viewer cannot read the rollout: exit %d\n%s", code, out)
	}
	if code, out := tug("bob", "promote", "web"); code == 0 || annotation() != "" {
		t.Errorf("a viewer promoted: exit %d\n%s", code, out)
	}
	if code, out := tug("alice", "promote", "web"); code != 0 || annotation() == "" {
		t.Errorf("an editor could not promote: exit %d\n%s", code, out)
	}
}
