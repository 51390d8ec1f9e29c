package v1alpha1_test

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tugboatdev/tugboat/sandbox/toolchain"
)

var update = flag.Bool("update", false, "rewrite docs/reference/api.md from the types (make docs)")

// TestAPIReference fails when docs/reference/api.md is not what
// crd-ref-docs writes from this package's types; make docs rewrites it.
func TestAPIReference(t *testing.T) {
	bin, err := toolchain.Path(toolchain.CRDRefDocs)
	if err != nil {
		t.Fatal(err)
	}
	root := toolchain.Root()
	got := filepath.Join(t.TempDir(), "api.md")
	cmd := exec.Command(bin, "--config", filepath.Join(root, "hack", "crd-ref-docs.yaml"), "--source-path", ".",
		"--renderer", "markdown", "--output-path", got, "--log-level", "ERROR",
		"--max-depth", "20") // the default, 10, stops short of a Rollout's inline templates' fields
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("crd-ref-docs: %v\n%s", err, out)
	}
	generated, err := os.ReadFile(got)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(root, "docs", "reference", "api.md")
	if *update {
		if err := os.WriteFile(path, generated, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	committed, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v: run make docs", err)
	}
	if diff := cmp.Diff(string(committed), string(generated)); diff != "" {
		t.Errorf("docs/reference/api.md is stale: run make docs (-committed +generated):\n%s", diff)
	}
}
