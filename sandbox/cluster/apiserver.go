// Package apiserver starts a real kube-apiserver and etcd (envtest, on the
// binaries `make tools` builds) with Tugboat's CRDs and Istio's installed, for
// integration tests. Every Env picks its own ports and directories, so test
// packages can run in parallel.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	tugboatscheme "github.com/tugboatdev/tugboat/api/scheme"
	"github.com/tugboatdev/tugboat/sandbox/toolchain"
)

// Env is a running API server with a client for it.
type Env struct {
	// Config reaches the API server as an administrator.
	Config *rest.Config
	// KubeConfig is Config as a kubeconfig file's contents.
	KubeConfig []byte
	// Client uses Scheme.
	Client client.Client
	// Scheme knows the built-in kinds, Tugboat's and Istio's networking kinds.
	Scheme *runtime.Scheme

	env *envtest.Environment
}

// Options adjust the API server.
type Options struct {
	// Args are extra kube-apiserver flags, such as {"service-cluster-ip-range": "10.96.0.0/12"}.
	Args map[string]string
	// WithoutTugboat leaves Tugboat's CRDs out (Istio's are always there), for
	// tests that install Tugboat the way users do.
	WithoutTugboat bool
}

// Start starts an API server for the test and stops it when the test ends.
func Start(t testing.TB) *Env {
	t.Helper()
	env, err := New(Options{})
	if err != nil {
		t.Fatalf("start api server: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stop api server: %v", err)
		}
	})
	return env
}

// New starts an API server; the caller must Stop it. TestMain uses it to
// share one server among a package's tests.
func New(o Options) (*Env, error) {
	apiserverPath, err := toolchain.Path(toolchain.KubeAPIServer)
	if err != nil {
		return nil, err
	}
	etcdPath, err := toolchain.Path(toolchain.Etcd)
	if err != nil {
		return nil, err
	}
	istioCRDs, err := IstioCRDs()
	if err != nil {
		return nil, err
	}
	scheme, err := tugboatscheme.New()
	if err != nil {
		return nil, err
	}
	crds := []string{CRDDir(), istioCRDs}
	if o.WithoutTugboat {
		crds = crds[1:]
	}
	te := &envtest.Environment{
		Scheme:                scheme,
		CRDDirectoryPaths:     crds,
		ErrorIfCRDPathMissing: true,
	}
	te.ControlPlane.APIServer = &envtest.APIServer{Path: apiserverPath}
	te.ControlPlane.Etcd = &envtest.Etcd{Path: etcdPath}
	// The default /24 holds only 254 Services; scale tests need more.
	te.ControlPlane.APIServer.Configure().Set("service-cluster-ip-range", "10.96.0.0/12")
	for k, v := range o.Args {
		te.ControlPlane.APIServer.Configure().Set(k, v)
	}
	cfg, err := te.Start()
	if err != nil {
		// envtest leaves the control plane running when, say, a CRD is refused.
		return nil, errors.Join(fmt.Errorf("start envtest: %w", err), te.Stop())
	}
	// Tests create many objects quickly; the default 5 QPS would throttle them.
	cfg.QPS, cfg.Burst = 500, 1000
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("client: %w", err), te.Stop())
	}
	return &Env{Config: cfg, KubeConfig: te.KubeConfig, Client: c, Scheme: scheme, env: te}, nil
}

// Stop stops the API server and etcd and removes their data.
func (e *Env) Stop() error { return e.env.Stop() }

// CRDDir is the directory of Tugboat's generated CRDs.
func CRDDir() string { return filepath.Join(toolchain.Root(), "config", "crd", "bases") }

// IstioCRDs returns the path of the CRD manifest that ships in the istio.io/api
// module, at the version go.mod requires.
func IstioCRDs() (string, error) { return istioCRDs() }

var istioCRDs = sync.OnceValues(func() (string, error) {
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "istio.io/api")
	cmd.Dir = toolchain.Root()
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("locate the istio.io/api module: %w", err)
	}
	return filepath.Join(strings.TrimSpace(string(out)), "kubernetes", "customresourcedefinitions.gen.yaml"), nil
})

// UserConfig returns a config that reaches the API server as the named user
// in groups, who may do only what RBAC grants it; tests use it to run the
// controller with exactly the permissions its ClusterRole gives.
func (e *Env) UserConfig(name string, groups ...string) (*rest.Config, error) {
	u, err := e.env.ControlPlane.AddUser(envtest.User{Name: name, Groups: groups}, e.Config)
	if err != nil {
		return nil, fmt.Errorf("add user %s: %w", name, err)
	}
	cfg := u.Config()
	cfg.QPS, cfg.Burst = e.Config.QPS, e.Config.Burst
	return cfg, nil
}

// WriteKubeConfig writes cfg, one of UserConfig's, as a kubeconfig file whose
// context is in namespace, for a child process (kubectl tug, the controller).
func WriteKubeConfig(cfg *rest.Config, namespace, path string) error {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["sandbox"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["user"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData}
	kc.Contexts["sandbox"] = &clientcmdapi.Context{Cluster: "sandbox", AuthInfo: "user", Namespace: namespace}
	kc.CurrentContext = "sandbox"
	return clientcmd.WriteToFile(*kc, path)
}

// ControllerUser binds config/rbac/role.yaml, the controller's generated
// ClusterRole, to a new user and returns a config that acts as that user,
// so that a test running the controller with it proves the role suffices.
func (e *Env) ControllerUser(ctx context.Context) (*rest.Config, error) {
	raw, err := os.ReadFile(filepath.Join(toolchain.Root(), "config", "rbac", "role.yaml"))
	if err != nil {
		return nil, err
	}
	var role rbacv1.ClusterRole
	if err := yaml.Unmarshal(raw, &role); err != nil {
		return nil, err
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{APIGroup: "rbac.authorization.k8s.io", Kind: "User", Name: "tugboat-controller"}},
	}
	for _, o := range []client.Object{&role, binding} {
		if err := e.Client.Create(ctx, o); err != nil {
			return nil, err
		}
	}
	return e.UserConfig("tugboat-controller")
}
