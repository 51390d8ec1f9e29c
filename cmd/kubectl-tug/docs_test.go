package main

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/cobra/doc"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/tugboatdev/tugboat/sandbox/toolchain"
)

var update = flag.Bool("update", false, "rewrite docs/reference/cli from the commands (make docs)")

// TestCLIReference fails when docs/reference/cli is not what the commands'
// help says; make docs rewrites it.
func TestCLIReference(t *testing.T) {
	dir := filepath.Join(toolchain.Root(), "docs", "reference", "cli")
	got := t.TempDir()
	root := newRootCmd(&options{flags: genericclioptions.NewConfigFlags(true), streams: genericiooptions.NewTestIOStreamsDiscard()})
	// The one default that depends on the machine: the home directory.
	root.PersistentFlags().Lookup("cache-dir").DefValue = "$HOME/.kube/cache"
	root.DisableAutoGenTag = true
	if err := doc.GenMarkdownTree(root, got); err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		if err := os.CopyFS(dir, os.DirFS(got)); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := readTree(dir)
	if err != nil {
		t.Fatalf("%v: run make docs", err)
	}
	generated, err := readTree(got)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, generated); diff != "" {
		t.Errorf("docs/reference/cli is stale: run make docs (-committed +generated):\n%s", diff)
	}
}

// readTree is the files of dir by name.
func readTree(dir string) (map[string]string, error) {
	files := map[string]string{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		files[e.Name()] = string(b)
	}
	return files, nil
}
