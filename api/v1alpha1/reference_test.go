package v1alpha1_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tugboatdev/tugboat/sandbox/toolchain"
)

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
		"--renderer", "markdown", "--output-path", got, "--log-level", "ERROR")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("crd-ref-docs: %v\n%s", err, out)
	}
	generated, err := os.ReadFile(got)
	if err != nil {
		t.Fatal(err)
	}
	committed, err := os.ReadFile(filepath.Join(root, "docs", "reference", "api.md"))
	if err != nil {
		t.Fatalf("%v: run make docs", err)
	}
	if diff := cmp.Diff(string(committed), string(generated)); diff != "" {
		t.Errorf("docs/reference/api.md is stale: run make docs (-committed +generated):\n%s", diff)
	}
}
