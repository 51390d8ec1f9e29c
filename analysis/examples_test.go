package analysis

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

// TestExampleQueriesRender renders every query of every example template,
// so that a template whose query does not parse cannot ship.
func TestExampleQueriesRender(t *testing.T) {
	_, self, _, _ := runtime.Caller(0)
	files, err := filepath.Glob(filepath.Join(filepath.Dir(self), "..", "examples", "*", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		d := utilyaml.NewDocumentDecoder(io.NopCloser(bytes.NewReader(raw)))
		buf := make([]byte, 1<<20)
		for {
			k, err := d.Read(buf)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			var tmpl v1alpha1.AnalysisTemplate
			if err := yaml.Unmarshal(buf[:k], &tmpl); err != nil || (tmpl.Kind != "AnalysisTemplate" && tmpl.Kind != "ClusterAnalysisTemplate") {
				continue
			}
			args := map[string]string{}
			for _, a := range tmpl.Spec.Args {
				args[a.Name] = "x"
				if a.Value != nil {
					args[a.Name] = *a.Value
				}
			}
			for _, m := range tmpl.Spec.Metrics {
				n++
				var err error
				switch {
				case m.Provider.Prometheus != nil:
					_, err = Render(m.Provider.Prometheus.Query, args)
				case m.Provider.Web != nil:
					// Arguments without a value stand for a URL here, which
					// fits wherever one goes in a URL.
					web := map[string]string{}
					for _, a := range tmpl.Spec.Args {
						web[a.Name] = "https://example.com"
						if a.Value != nil {
							web[a.Name] = *a.Value
						}
					}
					_, err = Args{Values: web}.RenderWeb(*m.Provider.Web)
				case m.Provider.Job != nil:
					_, err = Args{Values: args}.RenderJob(*m.Provider.Job)
				}
				if err != nil {
					t.Errorf("%s: %s/%s: %v", filepath.Base(f), tmpl.Name, m.Name, err)
				}
			}
		}
	}
	if n < 4 {
		t.Fatalf("found %d example metrics; want the examples' templates", n)
	}
}
