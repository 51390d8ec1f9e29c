package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tugboatdev/tugboat/convert"
)

// examples are the peers' documented examples that convert's tests use.
func examples(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("../../convert/testdata/*.yaml")
	if err != nil || len(files) < 10 {
		t.Fatalf("examples: %v (found %d)", err, len(files))
	}
	return files
}

// runConvert runs the plugin with no cluster at all.
func runConvert(stdin string, args ...string) (code int, out, errOut string) {
	var o, e bytes.Buffer
	code = execute(context.Background(), args, genericiooptions.IOStreams{In: strings.NewReader(stdin), Out: &o, ErrOut: &e})
	return code, o.String(), e.String()
}

func TestConvertCLI(t *testing.T) {
	file := "../../convert/testdata/flagger-istio-podinfo.yaml"
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	res, err := convert.Convert(raw)
	if err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runConvert("", "convert", "-f", file)
	if code != 0 {
		t.Fatalf("convert -f: exit %d: %s", code, errOut)
	}
	if n := strings.Count("\n"+out, "\napiVersion: "); n != len(res.Objects) {
		t.Errorf("convert -f printed %d objects, want %d:\n%s", n, len(res.Objects), out)
	}
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	wantSummary := fmt.Sprintf("converted 1 documents into %d objects; %d findings", len(res.Objects), len(res.Findings))
	if lines[0] != wantSummary || len(lines) != 1+len(res.Findings) {
		t.Errorf("stderr:\n%s\nwant the summary %q and %d findings", errOut, wantSummary, len(res.Findings))
	}
	for _, f := range res.Findings {
		if !strings.Contains(errOut, f.String()+"\n") {
			t.Errorf("stderr lacks the finding %q", f)
		}
	}
	if strings.Contains(out, "Tugboat") {
		t.Errorf("findings went to stdout:\n%s", out)
	}

	code, fromStdin, _ := runConvert(string(raw), "convert", "-f", "-")
	if code != 0 || fromStdin != out {
		t.Errorf("convert -f - (exit %d) printed something else than convert -f FILE:\n%s", code, fromStdin)
	}

	code, js, errOut := runConvert("", "convert", "-f", file, "-f", "../../convert/testdata/flagger-metrictemplate-prometheus.yaml", "-o", "json")
	var list unstructured.UnstructuredList
	if code != 0 {
		t.Fatalf("convert -o json: exit %d: %s", code, errOut)
	}
	if err := list.UnmarshalJSON([]byte(js)); err != nil || len(list.Items) != len(res.Objects)+1 {
		t.Errorf("convert -f -f -o json: %v; %d items, want %d:\n%s", err, len(list.Items), len(res.Objects)+1, js)
	}
	if !strings.HasPrefix(errOut, "converted 2 documents") {
		t.Errorf("two files: stderr %q, want 2 documents", errOut)
	}

	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("kind: [\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"convert", "-f", filepath.Join(t.TempDir(), "missing.yaml")}, "no such file"},
		{[]string{"convert", "-f", bad}, "document 1"},
		{[]string{"convert"}, `"filename" not set`},
		{[]string{"convert", "-f", file, "-o", "name"}, "want yaml or json"},
	} {
		code, out, errOut := runConvert("", tc.args...)
		if code != exitTrouble || !strings.Contains(errOut, tc.want) || out != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit %d and %q", tc.args, code, out, errOut, exitTrouble, tc.want)
		}
	}
}

// TestConvertAcceptedByAPIServer converts every example and creates all that
// comes out (Deployments, Rollouts, templates, the Istio objects) on a real
// API server with Tugboat's CRDs, and checks that the server kept every
// field: a field its schema does not know would be pruned without an error.
func TestConvertAcceptedByAPIServer(t *testing.T) {
	p := newPlugin(t)
	ctx := t.Context()
	created := map[string]int{}
	for i, file := range examples(t) {
		code, out, errOut := p.runApart("convert", "-f", file, "-o", "json")
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", file, code, errOut)
		}
		var list unstructured.UnstructuredList
		if err := list.UnmarshalJSON([]byte(out)); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		// A namespace per example: the peers' examples share names.
		ns := fmt.Sprintf("example-%d", i)
		if err := p.env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
		for _, obj := range list.Items {
			sent := obj.DeepCopy()
			namespaced, err := p.env.Client.IsObjectNamespaced(sent)
			if err != nil {
				t.Fatalf("%s: %s %s: %v", file, obj.GetKind(), obj.GetName(), err)
			}
			if namespaced {
				sent.SetNamespace(ns)
			}
			if err := p.env.Client.Create(ctx, sent); err != nil {
				t.Errorf("%s: the API server refused %s %s: %v", file, obj.GetKind(), obj.GetName(), err)
				continue
			}
			var got unstructured.Unstructured
			got.SetGroupVersionKind(obj.GroupVersionKind())
			if err := p.env.Client.Get(ctx, client.ObjectKeyFromObject(sent), &got); err != nil {
				t.Fatal(err)
			}
			for _, d := range missing("spec", normal(t, obj.Object["spec"]), normal(t, got.Object["spec"])) {
				t.Errorf("%s: %s %s: the API server did not keep %s", file, obj.GetKind(), obj.GetName(), d)
			}
			created[obj.GetKind()]++
		}
	}
	t.Logf("created %v", created)
	// Every Argo canary Rollout (6) and Flagger Canary (2) among the
	// examples makes a Rollout; the blue-green one does not.
	want := map[string]int{"AnalysisTemplate": 8, "ClusterAnalysisTemplate": 1, "Deployment": 7, "DestinationRule": 1,
		"Gateway": 1, "Rollout": 8, "Service": 5, "VirtualService": 4}
	if !reflect.DeepEqual(created, want) {
		t.Errorf("created %v, want %v", created, want)
	}
}

// normal is v as JSON reads it back, so that numbers compare alike.
func normal(t *testing.T, v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// missing lists the fields of want that got lacks or holds otherwise; got
// may have more (the server's defaults).
func missing(path string, want, got any) []string {
	switch w := want.(type) {
	case map[string]any:
		g, _ := got.(map[string]any)
		var out []string
		for k, v := range w {
			out = append(out, missing(path+"."+k, v, g[k])...)
		}
		return out
	case []any:
		g, _ := got.([]any)
		if len(g) != len(w) {
			return []string{path}
		}
		var out []string
		for i := range w {
			out = append(out, missing(fmt.Sprintf("%s[%d]", path, i), w[i], g[i])...)
		}
		return out
	}
	if !reflect.DeepEqual(want, got) {
		return []string{fmt.Sprintf("%s (sent %v, kept %v)", path, want, got)}
	}
	return nil
}
