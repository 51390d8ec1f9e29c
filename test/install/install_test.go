// Package install installs Tugboat the two ways a release offers, the
// manifest dist/install.yaml and the Helm chart, onto a cluster that has
// never seen it, then runs the controller they describe (the binary built
// here, since no registry is reachable) with the Deployment's arguments and
// environment and as its service account, and has it take a Rollout to its
// first canary step.
package install_test

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/loader"
	"helm.sh/helm/v4/pkg/kube"
	networkingv1 "istio.io/api/networking/v1"
	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/release"
	"github.com/tugboatdev/tugboat/sandbox/cluster"
	"github.com/tugboatdev/tugboat/sandbox/process"
	"github.com/tugboatdev/tugboat/sandbox/toolchain"
)

// TestInstallYAML: given a cluster without Tugboat, when install.yaml (as
// make release writes it) is applied as kubectl apply --server-side does,
// then the controller it describes reconciles a Rollout.
func TestInstallYAML(t *testing.T) {
	c := cluster.StartCluster(t, cluster.ClusterOptions{Nodes: 1, WithoutTugboat: true})
	digest := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("0", 64)}
	manifest, err := release.Install(toolchain.Root(), "ghcr.io/tugboatdev/tugboat", digest)
	if err != nil {
		t.Fatal(err)
	}
	objs := decode(t, manifest)
	// kubectl's order: Namespaces and CRDs before what lives in them.
	slices.SortStableFunc(objs, func(a, b *unstructured.Unstructured) int { return cmp.Compare(applyOrder(a), applyOrder(b)) })
	for _, u := range objs {
		if err := c.Client.Patch(t.Context(), u, client.Apply, client.FieldOwner("kubectl"), client.ForceOwnership); err != nil {
			t.Fatalf("apply %s %s: %v", u.GetKind(), u.GetName(), err)
		}
		if u.GetKind() == "CustomResourceDefinition" {
			established(t, c, u.GetName())
		}
	}
	controllerReconciles(t, c, "tugboat-system", "ghcr.io/tugboatdev/tugboat@"+digest.String())
}

// TestHelmChart: given a cluster without Tugboat, when the chart is
// installed as helm install --create-namespace --wait does, then the
// controller it describes reconciles a Rollout.
func TestHelmChart(t *testing.T) {
	c := cluster.StartCluster(t, cluster.ClusterOptions{Nodes: 1, WithoutTugboat: true})
	ns := "tugboat"
	flags := genericclioptions.NewConfigFlags(false)
	flags.KubeConfig, flags.Namespace = &c.KubeConfigPath, &ns
	cfg := action.NewConfiguration()
	if err := cfg.Init(flags, ns, "secret"); err != nil {
		t.Fatal(err)
	}
	chart, err := loader.Load(filepath.Join(toolchain.Root(), "charts", "tugboat"))
	if err != nil {
		t.Fatal(err)
	}
	install := action.NewInstall(cfg)
	install.ReleaseName, install.Namespace, install.CreateNamespace = "tugboat", ns, true
	// Wait as helm install --wait does: the controller's Deployment must
	// become available on the cluster's (fake) nodes.
	install.WaitStrategy, install.Timeout = kube.StatusWatcherStrategy, 2*time.Minute
	values := map[string]any{"logLevel": "debug", "image": map[string]any{"tag": "v0.1.0"}}
	if _, err := install.RunWithContext(t.Context(), chart, values); err != nil {
		t.Fatalf("helm install: %v\n%s", err, c.Logs(20))
	}
	controllerReconciles(t, c, ns, "ghcr.io/tugboatdev/tugboat:v0.1.0")
}

// controllerReconciles runs the binary built from this checkout the way the
// installed Deployment in ns would run its image: with its arguments (the
// addresses moved to free loopback ports), its environment, and as its
// service account, so that only the installed RBAC stands behind it; then
// releases a new version of an application and waits for the first step.
func controllerReconciles(t *testing.T, c *cluster.Cluster, ns, image string) {
	t.Helper()
	ctx := t.Context()
	var d appsv1.Deployment
	if err := c.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "tugboat-controller"}, &d); err != nil {
		t.Fatal(err)
	}
	if d.Spec.Template.Spec.ServiceAccountName != "tugboat-controller" {
		t.Fatalf("the controller runs as %q", d.Spec.Template.Spec.ServiceAccountName)
	}
	container := d.Spec.Template.Spec.Containers[0]
	if container.Image != image {
		t.Errorf("the controller's image is %s; want %s", container.Image, image)
	}

	health := freePort(t)
	var args []string
	for _, a := range container.Args {
		switch name, _, _ := strings.Cut(a, "="); name {
		case "--metrics-address":
			a = name + "=" + freePort(t)
		case "--health-address":
			a = name + "=" + health
		}
		args = append(args, a)
	}
	if !slices.Contains(args, "--leader-elect=true") {
		t.Errorf("args %q: the installed controller does not elect a leader", args)
	}
	for _, e := range container.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.namespace":
			t.Setenv(e.Name, ns)
		case e.ValueFrom == nil:
			t.Setenv(e.Name, e.Value)
		default:
			t.Fatalf("env %s: no way to run it here", e.Name)
		}
	}
	user, err := c.UserConfig("system:serviceaccount:"+ns+":tugboat-controller",
		"system:serviceaccounts", "system:serviceaccounts:"+ns, "system:authenticated")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := cluster.WriteKubeConfig(user, ns, kubeconfig); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "tugboat")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/tugboat")
	build.Dir = toolchain.Root()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the controller: %v\n%s", err, out)
	}
	proc, err := process.Start("tugboat", bin, append(args, "--kubeconfig="+kubeconfig), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := proc.Stop(10 * time.Second); err != nil {
			t.Errorf("stop the controller: %v", err)
		}
		if t.Failed() {
			t.Logf("controller log:\n%s", proc.Tail(40))
		}
	})
	poll(t, time.Minute, "the controller ready", func() error {
		if exited, err := proc.Exited(); exited {
			return fmt.Errorf("exited: %v", err)
		}
		resp, err := http.Get("http://" + health + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("readyz: %s", resp.Status)
		}
		return nil
	})

	// An application as its own repository holds it, and its Rollout.
	app := "shop"
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: app}},
		&appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Namespace: app, Name: "web"},
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr.To[int32](2),
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
					Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "example.com/web:1"}}},
				},
			},
		},
		&istiov1.VirtualService{
			ObjectMeta: metav1.ObjectMeta{Namespace: app, Name: "web"},
			Spec: networkingv1.VirtualService{Hosts: []string{"web"}, Http: []*networkingv1.HTTPRoute{{
				Name: "primary",
				Route: []*networkingv1.HTTPRouteDestination{
					{Destination: &networkingv1.Destination{Host: "web-stable"}, Weight: 100},
					{Destination: &networkingv1.Destination{Host: "web-canary"}},
				},
			}}},
		},
		&v1alpha1.Rollout{
			ObjectMeta: metav1.ObjectMeta{Namespace: app, Name: "web"},
			Spec: v1alpha1.RolloutSpec{
				TargetRef:      v1alpha1.TargetRef{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
				Service:        v1alpha1.ServiceSpec{Port: 80},
				TrafficRouting: v1alpha1.TrafficRouting{Istio: v1alpha1.IstioTrafficRouting{VirtualService: v1alpha1.IstioVirtualService{Name: "web", Routes: []string{"primary"}}}},
				Steps:          []v1alpha1.Step{{SetWeight: ptr.To[int32](20)}, {Pause: &v1alpha1.Pause{}}},
			},
		},
	}
	for _, o := range objs {
		if err := c.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	ro := &v1alpha1.Rollout{}
	poll(t, 2*time.Minute, "the Rollout healthy on its first version", func() error {
		if err := c.Client.Get(ctx, client.ObjectKey{Namespace: app, Name: "web"}, ro); err != nil {
			return err
		}
		if ro.Status.ObservedGeneration != ro.Generation || ro.Status.Phase != v1alpha1.PhaseHealthy || ro.Status.StableRevision == "" {
			return fmt.Errorf("status %+v", ro.Status)
		}
		return nil
	})

	// A release: the application's own Deployment gets a new image.
	patch := []byte(`{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"example.com/web:2"}]}}}}`)
	target := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: app, Name: "web"}}
	if err := c.Client.Patch(ctx, target, client.RawPatch("application/strategic-merge-patch+json", patch)); err != nil {
		t.Fatal(err)
	}
	poll(t, 2*time.Minute, "20% of the traffic on the canary, paused", func() error {
		if err := c.Client.Get(ctx, client.ObjectKey{Namespace: app, Name: "web"}, ro); err != nil {
			return err
		}
		var vs istiov1.VirtualService
		if err := c.Client.Get(ctx, client.ObjectKey{Namespace: app, Name: "web"}, &vs); err != nil {
			return err
		}
		var weights []int32
		for _, d := range vs.Spec.GetHttp()[0].GetRoute() {
			weights = append(weights, d.GetWeight())
		}
		if ro.Status.Phase != v1alpha1.PhasePaused || ro.Status.CanaryWeight != 20 || !slices.Equal(weights, []int32{80, 20}) {
			return fmt.Errorf("phase %s, canary weight %d, route weights %v", ro.Status.Phase, ro.Status.CanaryWeight, weights)
		}
		return nil
	})
}

func decode(t *testing.T, manifest []byte) []*unstructured.Unstructured {
	t.Helper()
	var objs []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(manifest), 4096)
	for {
		var u unstructured.Unstructured
		if err := dec.Decode(&u.Object); errors.Is(err, io.EOF) {
			return objs
		} else if err != nil {
			t.Fatal(err)
		}
		if u.Object != nil {
			objs = append(objs, &u)
		}
	}
}

func applyOrder(u *unstructured.Unstructured) int {
	switch u.GetKind() {
	case "Namespace":
		return 0
	case "CustomResourceDefinition":
		return 1
	}
	return 2
}

func established(t *testing.T, c *cluster.Cluster, name string) {
	t.Helper()
	poll(t, time.Minute, "CRD "+name+" established", func() error {
		var crd unstructured.Unstructured
		crd.SetAPIVersion("apiextensions.k8s.io/v1")
		crd.SetKind("CustomResourceDefinition")
		if err := c.Client.Get(t.Context(), client.ObjectKey{Name: name}, &crd); err != nil {
			return err
		}
		conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
		for _, cond := range conds {
			if m, _ := cond.(map[string]any); m["type"] == "Established" && m["status"] == "True" {
				return nil
			}
		}
		return errors.New("not established")
	})
}

// poll checks cond until it holds or timeout passes, and fails the test with
// cond's last answer then.
func poll(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(t.Context(), 200*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		last = cond()
		return last == nil, nil
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v (last: %v)", what, err, last)
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
