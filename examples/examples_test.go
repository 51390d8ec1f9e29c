// Package examples holds runnable manifests; this test keeps them from rotting.
package examples_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/rollout/windows"
	"github.com/tugboatdev/tugboat/sandbox/cluster"
)

// TestExamplesApply decodes every manifest under examples/ into its Go type
// (strictly, so a field the types lack fails) and creates it on the real API
// server with strict field validation, each example in its own namespace.
// Pipelines for CI systems sit one folder deeper, in examples/ci/, since
// this server has no CRDs for their kinds (Tekton's): the test of each, such
// as TestRollbackRevertTask, decodes them strictly and runs them.
func TestExamplesApply(t *testing.T) {
	env := cluster.Start(t)
	dirs, err := filepath.Glob("*")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, dir := range dirs {
		files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
		if len(files) == 0 {
			continue
		}
		n++
		t.Run(dir, func(t *testing.T) {
			ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "example-" + dir}}
			if err := env.Client.Create(t.Context(), ns); err != nil {
				t.Fatal(err)
			}
			for _, f := range files {
				create(t, env, f, ns.Name)
			}
		})
	}
	if n == 0 {
		t.Fatal("no examples found")
	}
}

// create decodes each manifest in file into its Go type, strictly, and
// creates it in namespace ns (cluster-scoped kinds aside) with strict field
// validation.
func create(t *testing.T, env *cluster.Env, file, ns string) {
	t.Helper()
	codecs := serializer.NewCodecFactory(env.Scheme, serializer.EnableStrict)
	for i, doc := range documents(t, file) {
		obj, gvk, err := codecs.UniversalDeserializer().Decode(doc, nil, nil)
		if err != nil {
			t.Fatalf("%s document %d: %v", file, i, err)
		}
		if gvk.Group == v1alpha1.GroupVersion.Group {
			checkTugboatKind(t, obj)
		}
		u := &unstructured.Unstructured{}
		if err := runtime.DecodeInto(unstructured.UnstructuredJSONScheme, doc, u); err != nil {
			t.Fatalf("%s document %d: %v", file, i, err)
		}
		if u.GetKind() != "ClusterAnalysisTemplate" {
			u.SetNamespace(ns)
		}
		if err := env.Client.Create(t.Context(), u, client.FieldValidation(metav1.FieldValidationStrict)); err != nil {
			t.Errorf("%s: create %s %s: %v", file, u.GetKind(), u.GetName(), err)
		}
	}
}

// checkTugboatKind checks that a decoded Tugboat object is one of the API's kinds.
func checkTugboatKind(t *testing.T, obj runtime.Object) {
	t.Helper()
	switch o := obj.(type) {
	case *v1alpha1.Rollout:
		// What only the controller checks: the windows' schedules and zone.
		if _, err := windows.Parse(o.Spec.Windows); err != nil {
			t.Errorf("rollout %s: %v", o.Name, err)
		}
	case *v1alpha1.AnalysisTemplate, *v1alpha1.ClusterAnalysisTemplate, *v1alpha1.AnalysisRun, *v1alpha1.Preview, *v1alpha1.MirrorPolicy, *v1alpha1.NotificationProvider:
	default:
		t.Errorf("unexpected Tugboat kind %T", obj)
	}
}

// documents splits a YAML file into its documents, as JSON.
func documents(t *testing.T, path string) [][]byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	d := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
	var docs [][]byte
	for {
		var ext runtime.RawExtension
		if err := d.Decode(&ext); err != nil {
			if errors.Is(err, io.EOF) {
				return docs
			}
			t.Fatalf("%s: %v", path, err)
		}
		if len(bytes.TrimSpace(ext.Raw)) > 0 {
			docs = append(docs, ext.Raw)
		}
	}
}
