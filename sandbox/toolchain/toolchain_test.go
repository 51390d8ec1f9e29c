package toolchain

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/modfile"
)

// TestVersionsMatchToolModules checks that versions.env, which names the
// directories tools are cached in, agrees with the modules they are built from:
// otherwise a bump would build a new version into the old version's directory.
func TestVersionsMatchToolModules(t *testing.T) {
	vs, err := versions()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ dir, module, key string }{
		{"kubernetes", "k8s.io/kubernetes", "KUBERNETES_VERSION"},
		{"etcd", "go.etcd.io/etcd/server/v3", "ETCD_VERSION"},
		{"prometheus", "github.com/prometheus/prometheus", "PROMETHEUS_VERSION"},
		{"kwok", "sigs.k8s.io/kwok", "KWOK_VERSION"},
		{"controller-gen", "sigs.k8s.io/controller-tools", "CONTROLLER_TOOLS_VERSION"},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			path := filepath.Join(Root(), "hack", "tools", tc.dir, "go.mod")
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			f, err := modfile.ParseLax(path, raw, nil)
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			for _, r := range f.Require {
				if r.Mod.Path == tc.module {
					got = r.Mod.Version
				}
			}
			if got != vs[tc.key] {
				t.Errorf("%s requires %s %s; versions.env has %s=%s", path, tc.module, got, tc.key, vs[tc.key])
			}
		})
	}
}

func TestPathNamesTheMissingStep(t *testing.T) {
	t.Setenv("TUGBOAT_TOOLS_DIR", t.TempDir())
	_, err := Path(KubeAPIServer)
	if err == nil {
		t.Fatal("want an error for a tool that is not built")
	}
	if want := "run `make tools`"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
}
