package release

import (
	"bytes"
	"errors"
	"io"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	appsv1 "k8s.io/api/apps/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/tugboatdev/tugboat/sandbox/toolchain"
)

func TestIndexHoldsEveryArchitecture(t *testing.T) {
	images := map[string]v1.Image{}
	for _, arch := range []string{"amd64", "arm64"} {
		img, err := random.Image(64, 1)
		if err != nil {
			t.Fatal(err)
		}
		images[arch] = img
	}
	idx := Index(images)
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]v1.Hash{}
	for _, d := range m.Manifests {
		got[d.Platform.OS+"/"+d.Platform.Architecture] = d.Digest
	}
	for arch, img := range images {
		want, _ := img.Digest()
		if got["linux/"+arch] != want {
			t.Errorf("linux/%s: %v, want %v", arch, got["linux/"+arch], want)
		}
	}
}

func TestInstallPinsTheImageByDigest(t *testing.T) {
	digest := v1.Hash{Algorithm: "sha256", Hex: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}
	out, err := Install(toolchain.Root(), "registry.example.com/tugboat", digest)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	var image string
	d := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(out), 4096)
	for {
		var doc map[string]any
		if err := d.Decode(&doc); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatal(err)
		}
		kind, _ := doc["kind"].(string)
		kinds[kind]++
		if kind == "Deployment" {
			raw, _ := yaml.Marshal(doc)
			var dep appsv1.Deployment
			if err := yaml.Unmarshal(raw, &dep); err != nil {
				t.Fatal(err)
			}
			image = dep.Spec.Template.Spec.Containers[0].Image
		}
	}
	if image != "registry.example.com/tugboat@sha256:"+digest.Hex {
		t.Errorf("the controller runs %q, want the image pinned by digest", image)
	}
	if kinds["CustomResourceDefinition"] != 8 || kinds["Deployment"] != 1 || kinds["ClusterRole"] != 4 {
		t.Errorf("install.yaml holds %v", kinds)
	}
}
