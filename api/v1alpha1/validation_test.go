package v1alpha1_test

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/tugboatdev/tugboat/sandbox/cluster"
)

// TestSchemaRejectsInvalidManifests applies each manifest under
// testdata/invalid to the real API server and checks that it is refused with
// a message naming the offending field. Each file starts with one or more
// "# want: <text>" lines, all of which the error must contain.
func TestSchemaRejectsInvalidManifests(t *testing.T) {
	env := cluster.Start(t)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "invalid"}}
	if err := env.Client.Create(t.Context(), ns); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob("testdata/invalid/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 20 {
		t.Fatalf("want at least 20 invalid manifests, found %d", len(files))
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".yaml"), func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			wants := wantLines(raw)
			if len(wants) == 0 {
				t.Fatalf("%s has no '# want:' line", f)
			}
			obj := &unstructured.Unstructured{}
			if err := yaml.Unmarshal(raw, &obj.Object); err != nil {
				t.Fatalf("decode %s: %v", f, err)
			}
			obj.SetNamespace(ns.Name)
			err = env.Client.Create(t.Context(), obj, client.FieldValidation(metav1.FieldValidationStrict), client.DryRunAll)
			if err == nil {
				t.Fatalf("the API server accepted %s; want an error containing %q", f, wants)
			}
			for _, w := range wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
		})
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
