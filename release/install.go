package release

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// Index is the multi-architecture image: one digest for the images of
// every architecture, which install.yaml pins.
func Index(images map[string]v1.Image) v1.ImageIndex {
	var adds []mutate.IndexAddendum
	for arch, img := range images {
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	return mutate.AppendManifests(empty.Index, adds...)
}

// Install is config/default (under root) built with kustomize, with the
// controller's image pinned to repository@digest. The build runs on a copy
// of config/ in memory, beside an overlay that sets the image.
func Install(root, repository string, digest v1.Hash) ([]byte, error) {
	fs := filesys.MakeFsInMemory()
	config := filepath.Join(root, "config")
	err := filepath.WalkDir(config, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yaml") {
			return err
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(config, path)
		if err != nil {
			return err
		}
		return fs.WriteFile(filepath.Join("/config", rel), raw)
	})
	if err != nil {
		return nil, err
	}
	k, err := yaml.Marshal(types.Kustomization{
		Resources: []string{"../config/default"},
		Images:    []types.Image{{Name: "ghcr.io/tugboatdev/tugboat", NewName: repository, Digest: digest.String()}},
	})
	if err != nil {
		return nil, err
	}
	if err := fs.WriteFile("/release/kustomization.yaml", k); err != nil {
		return nil, err
	}
	opts := krusty.MakeDefaultOptions()
	opts.LoadRestrictions = types.LoadRestrictionsNone // the overlay names the install beside it
	res, err := krusty.MakeKustomizer(opts).Run(fs, "/release")
	if err != nil {
		return nil, fmt.Errorf("kustomize build: %w", err)
	}
	out, err := res.AsYaml()
	if err != nil {
		return nil, err
	}
	if want := repository + "@" + digest.String(); !strings.Contains(string(out), want) {
		return nil, fmt.Errorf("install.yaml does not pin %s", want)
	}
	return out, nil
}
