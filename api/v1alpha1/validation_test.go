package v1alpha1_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/sandbox/cluster"
)

// env is one API server with Tugboat's CRDs, shared by the tests.
var env *cluster.Env

func TestMain(m *testing.M) {
	var err error
	if env, err = cluster.New(cluster.Options{}); err != nil {
		fmt.Fprintln(os.Stderr, "start api server:", err)
		os.Exit(1)
	}
	code := m.Run()
	if err := env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stop api server:", err)
		code = max(code, 1)
	}
	os.Exit(code)
}

// TestSchemaRejectsInvalidManifests applies each manifest under
// testdata/invalid to the real API server and checks that it is refused with
// a message naming the offending field. Each file starts with one or more
// "# want: <text>" lines, all of which the error must contain.
func TestSchemaRejectsInvalidManifests(t *testing.T) {
	ns := namespace(t, "invalid")
	for _, f := range manifests(t, "testdata/invalid", 20) {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".yaml"), func(t *testing.T) {
			obj, wants := read(t, f, true)
			obj.SetNamespace(ns)
			err := env.Client.Create(t.Context(), obj, client.FieldValidation(metav1.FieldValidationStrict), client.DryRunAll)
			checkRefused(t, f, err, wants)
		})
	}
}

// TestSchemaRejectsInvalidStatus does the same for the status of each object
// under testdata/invalid-status: the object is created without it, then the
// status is written, as only the controller (or a person by hand) writes it.
// A status the API server accepts must decode into the Go types, or the
// controller's list of every object of the kind would fail.
func TestSchemaRejectsInvalidStatus(t *testing.T) {
	ns := namespace(t, "invalid-status")
	for _, f := range manifests(t, "testdata/invalid-status", 10) {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".yaml"), func(t *testing.T) {
			obj, wants := read(t, f, true)
			obj.SetNamespace(ns)
			status, ok := obj.Object["status"]
			if !ok {
				t.Fatalf("%s has no status", f)
			}
			delete(obj.Object, "status")
			if err := env.Client.Create(t.Context(), obj, client.FieldValidation(metav1.FieldValidationStrict)); err != nil {
				t.Fatalf("create %s without its status: %v", f, err)
			}
			obj.Object["status"] = status
			err := env.Client.Status().Update(t.Context(), obj, client.FieldValidation(metav1.FieldValidationStrict), client.DryRunAll)
			checkRefused(t, f, err, wants)
		})
	}
}

// TestSchemaAcceptsValidManifests creates each object under testdata/valid,
// writes its status when it has one, and reads it back into its Go type: the
// API server accepts the bounds of every field, and what it accepts decodes.
func TestSchemaAcceptsValidManifests(t *testing.T) {
	ns := namespace(t, "valid")
	for _, f := range manifests(t, "testdata/valid", 5) {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".yaml"), func(t *testing.T) {
			obj, _ := read(t, f, false)
			obj.SetNamespace(ns)
			status, hasStatus := obj.Object["status"]
			if err := env.Client.Create(t.Context(), obj, client.FieldValidation(metav1.FieldValidationStrict)); err != nil {
				t.Fatalf("the API server refused %s: %v", f, err)
			}
			if hasStatus {
				obj.Object["status"] = status
				if err := env.Client.Status().Update(t.Context(), obj, client.FieldValidation(metav1.FieldValidationStrict)); err != nil {
					t.Fatalf("the API server refused the status of %s: %v", f, err)
				}
			}
			typed, err := env.Scheme.New(obj.GroupVersionKind())
			if err != nil {
				t.Fatal(err)
			}
			if err := env.Client.Get(t.Context(), client.ObjectKeyFromObject(obj), typed.(client.Object)); err != nil {
				t.Fatalf("read %s back as %T: %v", f, typed, err)
			}
		})
	}
}

func namespace(t *testing.T, name string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := env.Client.Create(t.Context(), ns); err != nil {
		t.Fatal(err)
	}
	return name
}

// manifests lists the manifests in dir, of which there must be at least least.
func manifests(t *testing.T, dir string, least int) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < least {
		t.Fatalf("want at least %d manifests in %s, found %d", least, dir, len(files))
	}
	return files
}

// read decodes the manifest f and its "# want:" lines, which it must have
// when wantsNeeded.
func read(t *testing.T, f string, wantsNeeded bool) (*unstructured.Unstructured, []string) {
	t.Helper()
	raw, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	wants := wantLines(raw)
	if wantsNeeded && len(wants) == 0 {
		t.Fatalf("%s has no '# want:' line", f)
	}
	obj := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(raw, &obj.Object); err != nil {
		t.Fatalf("decode %s: %v", f, err)
	}
	return obj, wants
}

func checkRefused(t *testing.T, f string, err error, wants []string) {
	t.Helper()
	if err == nil {
		t.Fatalf("the API server accepted %s; want an error containing %q", f, wants)
	}
	for _, w := range wants {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not contain %q:\n%v", w, err)
		}
	}
}

func wantLines(raw []byte) []string {
	var wants []string
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		if w, ok := strings.CutPrefix(sc.Text(), "# want: "); ok {
			wants = append(wants, w)
		}
	}
	return wants
}

// TestRolloutDefaults reads back a Rollout created with no analysis run
// history limit: the API server fills in the default the controller keeps to.
func TestRolloutDefaults(t *testing.T) {
	ns := namespace(t, "defaults")
	obj, _ := read(t, "testdata/valid/rollout-keeps-no-finished-runs.yaml", false)
	obj.SetNamespace(ns)
	unstructured.RemoveNestedField(obj.Object, "spec", "analysisRunHistoryLimit")
	if err := env.Client.Create(t.Context(), obj, client.FieldValidation(metav1.FieldValidationStrict)); err != nil {
		t.Fatal(err)
	}
	var ro v1alpha1.Rollout
	if err := env.Client.Get(t.Context(), client.ObjectKeyFromObject(obj), &ro); err != nil {
		t.Fatal(err)
	}
	if got := ro.Spec.AnalysisRunHistoryLimit; got == nil || *got != 5 {
		t.Errorf("spec.analysisRunHistoryLimit defaults to %v, want 5", ptr.Deref(got, -1))
	}
}
