package istio_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/tugboatdev/tugboat/sandbox/cluster"
)

// The integration tests share one API server, started by the first test
// that needs it; each test works in a namespace of its own. The Istio CRDs
// there carry a field that Istio's do not, futureField, as a newer Istio's
// would: the compiled types drop it, so a write that loses it shows.
var (
	apiServer = sync.OnceValues(startAPIServer)
	started   atomic.Pointer[cluster.Env]
)

func TestMain(m *testing.M) {
	code := m.Run()
	if env := started.Load(); env != nil {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stop api server:", err)
			code = 1
		}
	}
	os.Exit(code)
}

func startAPIServer() (*cluster.Env, error) {
	env, err := cluster.New(cluster.Options{})
	if err != nil {
		return nil, err
	}
	started.Store(env)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := addFutureField(ctx, env.Client); err != nil {
		return nil, err
	}
	return env, nil
}

// kubeClient returns a client of the shared API server, and a fresh
// namespace for the test.
func kubeClient(t *testing.T) (client.Client, string) {
	t.Helper()
	env, err := apiServer()
	if err != nil {
		t.Fatalf("api server: %v", err)
	}
	ns := fmt.Sprintf("t%d", namespaces.Add(1))
	if err := env.Client.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatalf("create namespace %s: %v", ns, err)
	}
	return env.Client, ns
}

var namespaces atomic.Int32

// futureFieldAt names, for each Istio CRD, the objects of its spec that get
// futureField; each step but the first is into a list's items.
var futureFieldAt = map[string][][]string{
	"virtualservices.networking.istio.io":  {{"spec", "http"}, {"spec", "http", "route"}},
	"destinationrules.networking.istio.io": {{"spec", "subsets"}},
}

// addFutureField adds futureField to the Istio CRDs' schemas, and waits until
// the API server keeps it.
func addFutureField(ctx context.Context, c client.Client) error {
	for name, paths := range futureFieldAt {
		var crd apiextensionsv1.CustomResourceDefinition
		if err := c.Get(ctx, client.ObjectKey{Name: name}, &crd); err != nil {
			return fmt.Errorf("get crd %s: %w", name, err)
		}
		for _, v := range crd.Spec.Versions {
			for _, path := range paths {
				if err := withFutureField(v.Schema.OpenAPIV3Schema, path); err != nil {
					return fmt.Errorf("crd %s version %s %s: %w", name, v.Name, strings.Join(path, "."), err)
				}
			}
		}
		if err := c.Update(ctx, &crd); err != nil {
			return fmt.Errorf("update crd %s: %w", name, err)
		}
	}
	// The API server serves a changed CRD schema a moment after the update.
	probe := func(ctx context.Context) (bool, error) {
		vs := object(`
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {namespace: default, name: probe}
spec:
  http:
  - futureField: kept
    route: [{destination: {host: probe}, futureField: kept}]
`)
		if err := c.Create(ctx, vs, client.DryRunAll); err != nil {
			return false, err
		}
		dr := object(`
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {namespace: default, name: probe}
spec:
  host: probe
  subsets: [{name: probe, futureField: kept}]
`)
		if err := c.Create(ctx, dr, client.DryRunAll); err != nil {
			return false, err
		}
		return strings.Count(toJSON(vs.Object)+toJSON(dr.Object), `"futureField":"kept"`) == 3, nil
	}
	if err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, probe); err != nil {
		return fmt.Errorf("wait for the api server to keep futureField: %w", err)
	}
	return nil
}

func withFutureField(s *apiextensionsv1.JSONSchemaProps, path []string) error {
	if len(path) == 0 {
		s.Properties["futureField"] = apiextensionsv1.JSONSchemaProps{Type: "string"}
		return nil
	}
	child, ok := s.Properties[path[0]]
	if !ok {
		return errors.New("no property " + path[0])
	}
	next := &child
	if child.Items != nil && child.Items.Schema != nil {
		next = child.Items.Schema
	}
	if err := withFutureField(next, path[1:]); err != nil {
		return err
	}
	s.Properties[path[0]] = child
	return nil
}

// object decodes a manifest; its fields are the API server's, not the
// compiled Istio types'.
func object(manifest string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(manifest), &u.Object); err != nil {
		panic(fmt.Sprintf("manifest %s: %v", manifest, err))
	}
	return u
}

func toJSON(v any) string {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(data)
}
