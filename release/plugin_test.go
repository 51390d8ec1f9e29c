package release

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

func TestPluginArchivesAndKrewManifest(t *testing.T) {
	dir := t.TempDir()
	bin, license := filepath.Join(dir, "kubectl-tug"), filepath.Join(dir, "LICENSE")
	if err := os.WriteFile(bin, []byte("a plugin binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(license, []byte("Apache-2.0"), 0o644); err != nil {
		t.Fatal(err)
	}
	at := time.Unix(1764547200, 0)
	var archives []PluginArchive
	for _, p := range [][2]string{{"linux", "amd64"}, {"linux", "arm64"}, {"darwin", "amd64"}, {"darwin", "arm64"}} {
		a, err := Archive(bin, license, p[0], p[1], "v0.1.0", dir, at)
		if err != nil {
			t.Fatal(err)
		}
		archives = append(archives, a)
	}
	for _, a := range archives {
		raw, err := os.ReadFile(a.Path)
		if err != nil {
			t.Fatal(err)
		}
		if sum := sha256.Sum256(raw); hex.EncodeToString(sum[:]) != a.SHA256 {
			t.Errorf("%s: checksum %s is not the file's", a.Path, a.SHA256)
		}
		gz, err := gzip.NewReader(strings.NewReader(string(raw)))
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(gz)
		found := map[string]int64{}
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			found[h.Name] = h.Mode
		}
		if found["kubectl-tug"]&0o111 == 0 || found["kubectl_complete-tug"]&0o111 == 0 || found["LICENSE"] == 0 {
			t.Errorf("%s holds %v: want executable kubectl-tug and kubectl_complete-tug, and the LICENSE", a.Path, found)
		}
	}
	again, err := Archive(bin, license, "linux", "amd64", "v0.1.0", t.TempDir(), at)
	if err != nil || again.SHA256 != archives[0].SHA256 {
		t.Errorf("the same inputs made another archive: %s, %s (%v)", again.SHA256, archives[0].SHA256, err)
	}
	sums := string(Checksums(archives))
	if n := strings.Count(sums, "\n"); n != 4 || !strings.Contains(sums, archives[2].SHA256+"  kubectl-tug_v0.1.0_darwin_amd64.tar.gz") {
		t.Errorf("checksums.txt:\n%s", sums)
	}

	raw, err := KrewManifest("v0.1.0", "https://github.com/tugboatdev/tugboat/releases/download/v0.1.0/", archives)
	if err != nil {
		t.Fatal(err)
	}
	var p KrewPlugin
	if err := yaml.UnmarshalStrict(raw, &p); err != nil {
		t.Fatalf("tug.yaml: %v\n%s", err, raw)
	}
	if p.APIVersion != "krew.googlecontainertools.github.com/v1alpha2" || p.Kind != "Plugin" || p.Metadata.Name != "tug" || p.Spec.Version != "v0.1.0" || len(p.Spec.Platforms) != 4 {
		t.Fatalf("tug.yaml: %+v", p)
	}
	for i, pl := range p.Spec.Platforms {
		a := archives[i]
		if pl.SHA256 != a.SHA256 || pl.Bin != "kubectl-tug" || pl.Selector.MatchLabels["os"] != a.OS || pl.Selector.MatchLabels["arch"] != a.Arch ||
			pl.URI != "https://github.com/tugboatdev/tugboat/releases/download/v0.1.0/"+filepath.Base(a.Path) {
			t.Errorf("platform %d: %+v, want %+v", i, pl, a)
		}
	}
}

// kubectl runs kubectl_complete-tug with the words typed after `kubectl
// tug`; the script must hand them, empty last word included, to the plugin.
func TestCompleteScriptHandsWordsToThePlugin(t *testing.T) {
	dir := t.TempDir()
	plugin := "#!/bin/sh\nfor a in \"$@\"; do printf '[%s]' \"$a\"; done\n"
	if err := os.WriteFile(filepath.Join(dir, "kubectl-tug"), []byte(plugin), 0o755); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(dir, "kubectl_complete-tug")
	if err := os.WriteFile(script, []byte(CompleteScript), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(script, "get", "rollout", "w e", "")
	cmd.Env = append(os.Environ(), "PATH="+dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	got, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if want := "[__complete][get][rollout][w e][]"; string(got) != want {
		t.Errorf("the plugin got %s, want %s", got, want)
	}
}
