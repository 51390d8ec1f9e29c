package cluster

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tugboatdev/tugboat/sandbox/process"
	"github.com/tugboatdev/tugboat/sandbox/toolchain"
)

// Cluster is a whole Kubernetes control plane minus kubelets: the API server
// and etcd, kube-controller-manager, kube-scheduler, and kwok playing the
// kubelets of fake nodes. Deployments get ReplicaSets, pods are scheduled and
// become Ready with IPs, as on a real cluster, in about half a second.
type Cluster struct {
	*Env
	// KubeConfigPath is KubeConfig written to a file, for child processes.
	KubeConfigPath string
	// Dir holds the kubeconfig and the logs of the processes.
	Dir string

	procs []*process.Process
}

// ClusterOptions size the cluster.
type ClusterOptions struct {
	// Nodes is the number of fake nodes (default 2).
	Nodes int
	// PodsPerNode is each node's pod capacity (default 1000).
	PodsPerNode int
	// Dir receives the kubeconfig and process logs (default: a new temporary directory).
	Dir string
	// WithoutTugboat leaves Tugboat's CRDs out, as Options.WithoutTugboat.
	WithoutTugboat bool
}

// StartCluster starts a cluster for the test and stops it when the test ends.
func StartCluster(t testing.TB, o ClusterOptions) *Cluster {
	t.Helper()
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	c, err := NewCluster(t.Context(), o)
	if err != nil {
		t.Fatalf("start cluster: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Errorf("stop cluster: %v", err)
		}
	})
	return c
}

// NewCluster starts a cluster; the caller must Stop it.
func NewCluster(ctx context.Context, o ClusterOptions) (_ *Cluster, err error) {
	if o.Nodes == 0 {
		o.Nodes = 2
	}
	if o.PodsPerNode == 0 {
		o.PodsPerNode = 1000
	}
	if o.Dir == "" {
		if o.Dir, err = os.MkdirTemp("", "tugboat-cluster-"); err != nil {
			return nil, err
		}
	}
	env, err := New(Options{WithoutTugboat: o.WithoutTugboat})
	if err != nil {
		return nil, err
	}
	c := &Cluster{Env: env, Dir: o.Dir, KubeConfigPath: filepath.Join(o.Dir, "kubeconfig")}
	defer func() {
		if err != nil {
			err = errors.Join(err, c.Stop())
		}
	}()
	if err := os.WriteFile(c.KubeConfigPath, env.KubeConfig, 0o600); err != nil {
		return nil, err
	}
	if err := c.startControllers(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	// The service-account controller creating "default" shows that the
	// controller manager is up and has leadership.
	if err := c.procs[0].WaitFor(ctx, func(ctx context.Context) error {
		return c.Client.Get(ctx, types.NamespacedName{Namespace: "default", Name: "default"}, &corev1.ServiceAccount{})
	}); err != nil {
		return nil, err
	}
	for i := range o.Nodes {
		if err := c.addNode(ctx, fmt.Sprintf("kwok-node-%d", i), o.PodsPerNode); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (c *Cluster) startControllers() error {
	kcm, err := toolchain.Path(toolchain.KubeControllerManager)
	if err != nil {
		return err
	}
	sched, err := toolchain.Path(toolchain.KubeScheduler)
	if err != nil {
		return err
	}
	kwok, err := toolchain.Path(toolchain.Kwok)
	if err != nil {
		return err
	}
	stages, err := c.stages()
	if err != nil {
		return err
	}
	kwokArgs := []string{
		"--kubeconfig=" + c.KubeConfigPath,
		"--manage-all-nodes=true",
		// Pod IPs come from here; the default /24 runs out at 254 pods.
		"--cidr=10.192.0.0/10",
		"--node-ip=10.191.0.1",
	}
	for _, s := range stages {
		kwokArgs = append(kwokArgs, "--config="+s)
	}
	for _, p := range []struct {
		name, path string
		args       []string
	}{
		{"kube-controller-manager", kcm, []string{
			"--kubeconfig=" + c.KubeConfigPath,
			// Node lifecycle would mark fake nodes NotReady and evict their
			// pods; IPAM and token signing need what a sandbox lacks.
			"--controllers=*,-serviceaccount-token,-nodeipam,-nodelifecycle",
			"--leader-elect=false",
			"--secure-port=0",
			"--use-service-account-credentials=false",
			// The default 20 QPS makes the cluster, not the code under test,
			// the bottleneck when hundreds of Deployments roll at once.
			"--kube-api-qps=300",
			"--kube-api-burst=600",
			"--concurrent-deployment-syncs=20",
			"--concurrent-replicaset-syncs=20",
		}},
		{"kube-scheduler", sched, []string{
			"--kubeconfig=" + c.KubeConfigPath,
			"--leader-elect=false",
			"--secure-port=0",
			"--kube-api-qps=300",
			"--kube-api-burst=600",
		}},
		{"kwok", kwok, kwokArgs},
	} {
		proc, err := process.Start(p.name, p.path, p.args, c.Dir)
		if err != nil {
			return err
		}
		c.procs = append(c.procs, proc)
	}
	return nil
}

// addNode registers a fake node for kwok and waits until it is Ready and
// schedulable.
func (c *Cluster) addNode(ctx context.Context, name string, pods int) error {
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("1000"),
		corev1.ResourceMemory: resource.MustParse("4Ti"),
		corev1.ResourcePods:   *resource.NewQuantity(int64(pods), resource.DecimalSI),
	}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Annotations: map[string]string{"kwok.x-k8s.io/node": "fake"},
			Labels: map[string]string{
				"type":                   "kwok",
				"kubernetes.io/hostname": name,
				"kubernetes.io/os":       "linux",
				"kubernetes.io/arch":     "amd64",
			},
		},
		Status: corev1.NodeStatus{Capacity: capacity, Allocatable: capacity},
	}
	if err := c.Client.Create(ctx, node); err != nil {
		return fmt.Errorf("create node %s: %w", name, err)
	}
	return wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		var n corev1.Node
		if err := c.Client.Get(ctx, client.ObjectKeyFromObject(node), &n); err != nil {
			return false, client.IgnoreNotFound(err)
		}
		// The API server taints new nodes not-ready, and with node lifecycle
		// off nothing would lift the taint.
		if len(n.Spec.Taints) > 0 {
			n.Spec.Taints = nil
			if err := c.Client.Update(ctx, &n); err != nil && !apierrors.IsConflict(err) {
				return false, err
			}
			return false, nil
		}
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
}

// Stop stops the controllers and kwok, then the API server and etcd.
func (c *Cluster) Stop() error {
	var errs []error
	for i := len(c.procs) - 1; i >= 0; i-- {
		errs = append(errs, c.procs[i].Stop(10*time.Second))
	}
	c.procs = nil
	errs = append(errs, c.Env.Stop())
	return errors.Join(errs...)
}

// Logs returns the tails of the processes' logs, for a failing test to print.
func (c *Cluster) Logs(lines int) string {
	var b strings.Builder
	for _, p := range c.procs {
		fmt.Fprintf(&b, "--- %s ---\n%s\n", p.Name, p.Tail(lines))
	}
	return b.String()
}

// ownStages replace kwok's stages of the same file name: Job pods complete,
// or fail when annotated sandbox.tugboat.dev/exit-code.
//
//go:embed stages/*.yaml
var ownStages embed.FS

// stages are the files of kwok's stages, the sandbox's own in place of
// kwok's where they share a name.
func (c *Cluster) stages() ([]string, error) {
	shipped, err := toolchain.KwokStages()
	if err != nil {
		return nil, err
	}
	own, err := ownStages.ReadDir("stages")
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(c.Dir, "kwok-stages")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	replaced := map[string]bool{}
	var out []string
	for _, e := range own {
		b, err := ownStages.ReadFile("stages/" + e.Name())
		if err != nil {
			return nil, err
		}
		f := filepath.Join(dir, e.Name())
		if err := os.WriteFile(f, b, 0o644); err != nil {
			return nil, err
		}
		replaced[e.Name()] = true
		out = append(out, f)
	}
	for _, f := range shipped {
		if !replaced[filepath.Base(f)] {
			out = append(out, f)
		}
	}
	return out, nil
}
