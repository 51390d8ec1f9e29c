// Package toolchain finds the real servers that `make tools` builds from the
// modules in hack/tools: kube-apiserver, etcd, Prometheus and the rest, and
// kubectl for the examples that script it. Test helpers use it; it fails with
// the command to run when a binary is missing, rather than falling back to
// whatever is on the machine.
package toolchain

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
)

// Binary names a tool that `make tools` builds.
type Binary string

// The tools the tests and the sandbox run.
const (
	KubeAPIServer         Binary = "kube-apiserver"
	KubeControllerManager Binary = "kube-controller-manager"
	KubeScheduler         Binary = "kube-scheduler"
	Kubectl               Binary = "kubectl"
	Etcd                  Binary = "etcd"
	Prometheus            Binary = "prometheus"
	Promtool              Binary = "promtool"
	Kwok                  Binary = "kwok"
	ControllerGen         Binary = "controller-gen"
	CRDRefDocs            Binary = "crd-ref-docs"
)

// group is the hack/tools module, and versions.env key, each binary comes from.
var group = map[Binary]struct{ dir, versionKey string }{
	KubeAPIServer:         {"kubernetes", "KUBERNETES_VERSION"},
	KubeControllerManager: {"kubernetes", "KUBERNETES_VERSION"},
	KubeScheduler:         {"kubernetes", "KUBERNETES_VERSION"},
	Kubectl:               {"kubernetes", "KUBERNETES_VERSION"},
	Etcd:                  {"etcd", "ETCD_VERSION"},
	Prometheus:            {"prometheus", "PROMETHEUS_VERSION"},
	Promtool:              {"prometheus", "PROMETHEUS_VERSION"},
	Kwok:                  {"kwok", "KWOK_VERSION"},
	ControllerGen:         {"controller-gen", "CONTROLLER_TOOLS_VERSION"},
	CRDRefDocs:            {"crd-ref-docs", "CRD_REF_DOCS_VERSION"},
}

// Root is the repository's root directory.
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Path returns the path of a built tool, or an error that says how to build it.
func Path(b Binary) (string, error) {
	g, ok := group[b]
	if !ok {
		return "", fmt.Errorf("toolchain: unknown tool %q", b)
	}
	dir, err := Dir(b)
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, string(b))
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("toolchain: %s %s is not built (%w); run `make tools`", b, g.versionKey, err)
	}
	return p, nil
}

// Dir returns the directory a tool is built into, whether or not it is built yet.
func Dir(b Binary) (string, error) {
	g, ok := group[b]
	if !ok {
		return "", fmt.Errorf("toolchain: unknown tool %q", b)
	}
	vs, err := versions()
	if err != nil {
		return "", err
	}
	v, ok := vs[g.versionKey]
	if !ok {
		return "", fmt.Errorf("toolchain: hack/tools/versions.env has no %s", g.versionKey)
	}
	base, err := toolsDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(base, g.dir+"-"+v), nil
}

// KwokStages returns the kwok Stage files that `make tools` copies from the
// kwok module: without them kwok exits with "no stages found".
func KwokStages() ([]string, error) {
	dir, err := Dir(Kwok)
	if err != nil {
		return nil, err
	}
	files, err := filepath.Glob(filepath.Join(dir, "stages", "*.yaml"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("toolchain: no kwok stages in %s; run `make tools`", dir)
	}
	return files, nil
}

// toolsDir is TUGBOAT_TOOLS_DIR, which the Makefile sets, or the same default
// the Makefile uses: tugboat-tools beside the Go build cache.
func toolsDir() (string, error) {
	if d := os.Getenv("TUGBOAT_TOOLS_DIR"); d != "" {
		return d, nil
	}
	out, err := exec.Command("go", "env", "GOCACHE").Output()
	if err != nil {
		return "", fmt.Errorf("toolchain: find the Go build cache: %w", err)
	}
	return filepath.Join(filepath.Dir(strings.TrimSpace(string(out))), "tugboat-tools"), nil
}

var versions = sync.OnceValues(func() (map[string]string, error) {
	f, err := os.Open(filepath.Join(Root(), "hack", "tools", "versions.env"))
	if err != nil {
		return nil, fmt.Errorf("toolchain: %w", err)
	}
	defer f.Close()
	vs := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, errors.New("toolchain: versions.env: want KEY=value, got " + line)
		}
		vs[k] = v
	}
	return vs, sc.Err()
})
