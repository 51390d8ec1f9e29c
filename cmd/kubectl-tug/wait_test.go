package main

import (
	"context"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

// TestWaitWithoutACluster: a kubeconfig that does not load, or a cluster
// that never answers, is trouble (4), said at once or after
// --connect-timeout, not a rollout's timeout (3) after the whole --timeout.
func TestWaitWithoutACluster(t *testing.T) {
	dir := t.TempDir()
	refused := writeKubeconfig(t, filepath.Join(dir, "refused"), "https://127.0.0.1:1", nil, clientcmdapi.AuthInfo{Token: "t"})
	silent := writeKubeconfig(t, filepath.Join(dir, "silent"), "https://"+silentServer(t), nil, clientcmdapi.AuthInfo{Token: "t"})
	garbage := filepath.Join(dir, "garbage")
	writeFile(t, garbage, "clusters: [{name: c, cluster: {server: \n")
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{{
		name: "a cluster that refuses connections",
		args: []string{"--kubeconfig", refused, "--connect-timeout", "500ms"},
		want: []string{"no answer from the cluster within 500ms", "connection refused"},
	}, {
		name: "a cluster that takes connections and never answers",
		args: []string{"--kubeconfig", silent, "--connect-timeout", "500ms"},
		want: []string{"no answer from the cluster within 500ms", "context deadline exceeded"},
	}, {
		name: "a kubeconfig that does not parse",
		args: []string{"--kubeconfig", garbage},
		want: []string{"error loading config file", "garbage"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			var c cli
			start := time.Now()
			code := c.run(t, append([]string{"wait", "podinfo", "-o", "json", "--timeout", "2m"}, tc.args...)...)
			took := time.Since(start)
			if code != exitTrouble || took > 30*time.Second {
				t.Errorf("exit %d after %s, want %d well before the 2m timeout\n%s%s", code, took, exitTrouble, c.out.String(), c.errOut.String())
			}
			for _, want := range tc.want {
				if !strings.Contains(c.errOut.String(), want) {
					t.Errorf("stderr lacks %q:\n%s", want, c.errOut.String())
				}
			}
		})
	}
	if f := newWaitCmd(&options{}).Flags().Lookup("connect-timeout"); f == nil || f.DefValue != "30s" {
		t.Errorf("--connect-timeout %+v, want a 30s default", f)
	}
}

// silentServer accepts connections and never answers on them, like a hung
// API server or a load balancer whose backend is gone; it returns its address.
func silentServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

// TestWaitOnARefusedLogin: a cluster that answers 401 or 403 will not
// answer otherwise by waiting, whether it refuses the Rollout or its target.
func TestWaitOnARefusedLogin(t *testing.T) {
	p := newPlugin(t)
	p.given("podinfo", v1alpha1.RolloutStatus{Phase: v1alpha1.PhaseProgressing, StableRevision: "old", CanaryRevision: "new", Conditions: cond("Holding", false)})
	dir := t.TempDir()
	wrongToken := writeKubeconfig(t, filepath.Join(dir, "wrong-token"), p.env.Config.Host, p.env.Config.CAData, clientcmdapi.AuthInfo{Token: "not-a-token"})

	// ci may read Rollouts but not the Deployments they target.
	ci, err := p.env.UserConfig("ci")
	if err != nil {
		t.Fatal(err)
	}
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: p.ns, Name: "rollout-reader"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{v1alpha1.GroupVersion.Group}, Resources: []string{"rollouts"}, Verbs: []string{"get"}}}}
	binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: p.ns, Name: "ci"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects: []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: "ci"}}}
	for _, o := range []client.Object{role, binding} {
		if err := p.env.Client.Create(t.Context(), o); err != nil {
			t.Fatal(err)
		}
	}
	ciClient, err := client.New(ci, client.Options{Scheme: p.env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	// RBAC takes a moment to apply; until it has, ci is refused the Rollout
	// too and the case below would not reach the target.
	if err := wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		return ciClient.Get(ctx, client.ObjectKey{Namespace: p.ns, Name: "podinfo"}, &v1alpha1.Rollout{}) == nil, nil
	}); err != nil {
		t.Fatalf("ci never got to read the rollout: %v", err)
	}
	rolloutsOnly := writeKubeconfig(t, filepath.Join(dir, "rollouts-only"), ci.Host, ci.CAData, clientcmdapi.AuthInfo{ClientCertificateData: ci.CertData, ClientKeyData: ci.KeyData})

	for _, tc := range []struct {
		name, kubeconfig string
		want             []string
	}{
		{"a token the API server does not know", wrongToken, []string{"the server has asked for the client to provide credentials"}},
		{"a user refused the target", rolloutsOnly, []string{`deployments.apps "podinfo" is forbidden`, `User "ci"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := *p
			q.kubeconfig = tc.kubeconfig
			start := time.Now()
			code, out := q.run("wait", "podinfo", "--timeout", "1m")
			if took := time.Since(start); code != exitTrouble || took > 20*time.Second {
				t.Errorf("exit %d after %s, want %d well before the 1m timeout\n%s", code, took, exitTrouble, out)
			}
			for _, want := range tc.want {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

// TestWaitRidesOutAPassingFault: a cluster that has answered and then fails
// for longer than --connect-timeout is waited on, and the wait ends with
// the rollout's result once it answers again.
func TestWaitRidesOutAPassingFault(t *testing.T) {
	p := newPlugin(t)
	ro, rev := p.given("podinfo", v1alpha1.RolloutStatus{Phase: v1alpha1.PhaseProgressing, StableRevision: "old", CanaryRevision: "new",
		CurrentStepIndex: ptr.To[int32](0), Conditions: cond("Holding", false)})
	api := newFlakyAPI(t, p.env.Config, "/rollouts/podinfo")
	q := *p
	q.kubeconfig = writeKubeconfig(t, filepath.Join(t.TempDir(), "flaky"), api.srv.URL, api.caPEM(), clientcmdapi.AuthInfo{})

	const connectTimeout = 500 * time.Millisecond
	type result struct {
		code int
		out  string
	}
	done := make(chan result, 1)
	go func() {
		code, out := q.run("wait", "podinfo", "-o", "json", "--timeout", "1m", "--connect-timeout", connectTimeout.String())
		done <- result{code, out}
	}()
	// The plugin read the Rollout once, then met only errors for more than
	// twice --connect-timeout.
	err := wait.PollUntilContextTimeout(t.Context(), 20*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		select {
		case r := <-done:
			t.Fatalf("wait ended during the fault: exit %d\n%s", r.code, r.out)
		default:
		}
		refused, failingFor := api.failures()
		return refused >= 2 && failingFor > 2*connectTimeout, nil
	})
	if err != nil {
		t.Fatalf("the plugin never met the fault: %v", err)
	}
	ro.Status.Phase, ro.Status.StableRevision, ro.Status.CanaryRevision = v1alpha1.PhaseHealthy, rev, ""
	ro.Status.Conditions = cond("Healthy", true)
	if err := p.env.Client.Status().Update(t.Context(), ro); err != nil {
		t.Fatal(err)
	}
	api.heal()
	select {
	case r := <-done:
		if r.code != exitHealthy || !strings.Contains(r.out, `"result": "Healthy"`) {
			t.Errorf("exit %d, want %d once the cluster answered again\n%s", r.code, exitHealthy, r.out)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("wait did not end 30s after the cluster answered again")
	}
}

// flakyAPI proxies to the API server until the Rollout at path has been
// served once, then answers 503 to everything until healed.
type flakyAPI struct {
	srv *httptest.Server

	mu          sync.Mutex
	served      bool
	healed      bool
	refused     int
	firstRefuse time.Time
}

func newFlakyAPI(t *testing.T, cfg *rest.Config, path string) *flakyAPI {
	t.Helper()
	target, _, err := rest.DefaultServerUrlFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	transport, err := rest.TransportFor(cfg) // the proxy logs in, as kubectl proxy does
	if err != nil {
		t.Fatal(err)
	}
	a := &flakyAPI{}
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = transport
	proxy.ModifyResponse = func(resp *http.Response) error {
		if resp.StatusCode == http.StatusOK && strings.HasSuffix(resp.Request.URL.Path, path) {
			a.mu.Lock()
			a.served = true
			a.mu.Unlock()
		}
		return nil
	}
	a.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		fail := a.served && !a.healed
		if fail {
			if a.refused == 0 {
				a.firstRefuse = time.Now()
			}
			a.refused++
		}
		a.mu.Unlock()
		if fail {
			http.Error(w, "the API server is restarting", http.StatusServiceUnavailable)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(a.srv.Close)
	return a
}

// failures says how many requests were refused and for how long.
func (a *flakyAPI) failures() (int, time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.refused == 0 {
		return 0, 0
	}
	return a.refused, time.Since(a.firstRefuse)
}

func (a *flakyAPI) heal() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.healed = true
}

func (a *flakyAPI) caPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.srv.Certificate().Raw})
}

// writeKubeconfig writes a kubeconfig for one cluster and user to path and
// returns the path.
func writeKubeconfig(t *testing.T, path, server string, ca []byte, user clientcmdapi.AuthInfo) string {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["c"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: ca}
	cfg.AuthInfos["u"] = &user
	cfg.Contexts["c"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
	cfg.CurrentContext = "c"
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}
