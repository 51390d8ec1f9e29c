package release

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// PluginArchive is kubectl-tug for one platform, packed for krew.
type PluginArchive struct {
	OS, Arch string
	// Path is the archive's file; SHA256 its checksum.
	Path, SHA256 string
}

// CompleteScript is kubectl_complete-tug, which kubectl (1.26 and later)
// runs to complete `kubectl tug ...` when it is on the PATH beside the
// plugin: it hands the words to the plugin's own completion.
const CompleteScript = `#!/bin/sh
# Completes kubectl tug: kubectl runs this when it is on the PATH.
exec kubectl-tug __complete "$@"
`

// Archive packs the plugin binary built for goos/goarch, its completion
// script and the license as dist/kubectl-tug_VERSION_OS_ARCH.tar.gz.
func Archive(bin, license, goos, goarch, version, out string, modified time.Time) (PluginArchive, error) {
	path := filepath.Join(out, fmt.Sprintf("kubectl-tug_%s_%s_%s.tar.gz", version, goos, goarch))
	f, err := os.Create(path)
	if err != nil {
		return PluginArchive{}, err
	}
	defer f.Close()
	h := sha256.New()
	gz := gzip.NewWriter(io.MultiWriter(f, h))
	gz.ModTime = modified
	tw := tar.NewWriter(gz)
	for _, e := range []struct {
		name, src string
		mode      int64
	}{{"kubectl-tug", bin, 0o755}, {"kubectl_complete-tug", "", 0o755}, {"LICENSE", license, 0o644}} {
		raw := []byte(CompleteScript)
		if e.src != "" {
			if raw, err = os.ReadFile(e.src); err != nil {
				return PluginArchive{}, err
			}
		}
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Mode: e.mode, Size: int64(len(raw)), ModTime: modified, Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
			return PluginArchive{}, err
		}
		if _, err := tw.Write(raw); err != nil {
			return PluginArchive{}, err
		}
	}
	if err := tw.Close(); err != nil {
		return PluginArchive{}, err
	}
	if err := gz.Close(); err != nil {
		return PluginArchive{}, err
	}
	if err := f.Close(); err != nil {
		return PluginArchive{}, err
	}
	return PluginArchive{OS: goos, Arch: goarch, Path: path, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// Checksums is a checksums.txt for the archives, as sha256sum writes it.
func Checksums(archives []PluginArchive) []byte {
	var lines []string
	for _, a := range archives {
		lines = append(lines, a.SHA256+"  "+filepath.Base(a.Path))
	}
	sort.Strings(lines)
	return []byte(strings.Join(lines, "\n") + "\n")
}

// KrewPlugin is krew's plugin manifest (krew.googlecontainertools.github.com/v1alpha2).
type KrewPlugin struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		Version          string         `json:"version"`
		Homepage         string         `json:"homepage"`
		ShortDescription string         `json:"shortDescription"`
		Description      string         `json:"description"`
		Platforms        []KrewPlatform `json:"platforms"`
	} `json:"spec"`
}

// KrewPlatform is one platform's archive in a krew manifest.
type KrewPlatform struct {
	Selector struct {
		MatchLabels map[string]string `json:"matchLabels"`
	} `json:"selector"`
	URI    string `json:"uri"`
	SHA256 string `json:"sha256"`
	Bin    string `json:"bin"`
}

// KrewManifest is plugins/tug.yaml for the archives, downloaded from
// baseURL (a release's download address).
func KrewManifest(version, baseURL string, archives []PluginArchive) ([]byte, error) {
	var p KrewPlugin
	p.APIVersion, p.Kind, p.Metadata.Name = "krew.googlecontainertools.github.com/v1alpha2", "Plugin", "tug"
	p.Spec.Version = version
	p.Spec.Homepage = "https://github.com/tugboatdev/tugboat"
	p.Spec.ShortDescription = "Show, steer and wait on Tugboat Rollouts"
	p.Spec.Description = "kubectl tug shows Tugboat's Rollouts and their analysis, promotes, aborts and rolls them back,\nand waits on them in CI with distinct exit codes."
	for _, a := range archives {
		var pl KrewPlatform
		pl.Selector.MatchLabels = map[string]string{"os": a.OS, "arch": a.Arch}
		pl.URI = strings.TrimSuffix(baseURL, "/") + "/" + filepath.Base(a.Path)
		pl.SHA256, pl.Bin = a.SHA256, "kubectl-tug"
		p.Spec.Platforms = append(p.Spec.Platforms, pl)
	}
	return yaml.Marshal(p)
}
