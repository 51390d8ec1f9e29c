package release

import (
	"archive/tar"
	"debug/elf"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/tugboatdev/tugboat/sandbox/toolchain"
)

// TestControllerImage builds the controller for this machine's
// architecture, makes its image, writes it as a tarball and reads it back:
// a static binary run as nonroot, its entrypoint, no shell, the version
// stamped, and the same digest from the same inputs.
func TestControllerImage(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "tugboat")
	build := exec.CommandContext(t.Context(), "go", "build", "-trimpath", "-o", bin,
		"-ldflags", "-s -w -X github.com/tugboatdev/tugboat/version.version=v0.0.0-test", "./cmd/tugboat")
	build.Dir = toolchain.Root()
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the controller: %v\n%s", err, out)
	}
	o := ImageOptions{Binary: bin, Arch: runtime.GOARCH, Version: "v0.0.0-test", Revision: "abc", Created: time.Unix(1764547200, 0).UTC()}
	img, err := Image(o)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "image.tar")
	if err := tarball.WriteToFile(path, name.MustParseReference("ghcr.io/tugboatdev/tugboat:v0.0.0-test"), img); err != nil {
		t.Fatal(err)
	}
	loaded, err := tarball.ImageFromPath(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := loaded.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if c.User != "65532:65532" || !slices.Equal(c.Entrypoint, []string{"/tugboat"}) || cf.OS != "linux" || cf.Architecture != runtime.GOARCH ||
		c.Labels["org.opencontainers.image.version"] != "v0.0.0-test" {
		t.Errorf("config: user %q, entrypoint %v, %s/%s, labels %v", c.User, c.Entrypoint, cf.OS, cf.Architecture, c.Labels)
	}

	// The filesystem: the binary and the user's entries, no shell.
	files := map[string]*tar.Header{}
	r := mutate.Extract(loaded)
	defer r.Close()
	tr := tar.NewReader(r)
	extracted := filepath.Join(dir, "tugboat-from-image")
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		files[strings.TrimSuffix(h.Name, "/")] = h
		if h.Name == "tugboat" {
			f, err := os.OpenFile(extracted, os.O_CREATE|os.O_WRONLY, 0o755)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(f, tr); err != nil {
				t.Fatal(err)
			}
			f.Close()
		}
	}
	for _, want := range []string{"tugboat", "etc/passwd", "etc/group", "tmp", "home/nonroot"} {
		if files[want] == nil {
			t.Errorf("the image lacks %s", want)
		}
	}
	for n := range files {
		if strings.HasPrefix(n, "bin/") || strings.HasPrefix(n, "usr/") || strings.HasSuffix(n, "/sh") {
			t.Errorf("the image holds %s: it should hold the binary alone", n)
		}
	}
	if h := files["tugboat"]; h == nil || h.Mode&0o111 == 0 || h.Uid != 0 {
		t.Errorf("tugboat: %+v, want executable, owned by root (and so not writable by the user it runs as)", h)
	}
	e, err := elf.Open(extracted)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range e.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary is dynamically linked: it would not start in an image without libc")
		}
	}
	e.Close()
	if out, err := exec.CommandContext(t.Context(), extracted, "--version").CombinedOutput(); err != nil || !strings.Contains(string(out), "v0.0.0-test") {
		t.Errorf("tugboat --version from the image: %v: %s", err, out)
	}

	again, err := Image(o)
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := img.Digest()
	d2, _ := again.Digest()
	if d1 != d2 {
		t.Errorf("the same inputs made two digests: %s, %s", d1, d2)
	}
}
