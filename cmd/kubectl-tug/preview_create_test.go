package main

import (
	"bytes"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

// inNamespace is the plugin run with -n ns, a namespace it creates: a
// preview environment's, beside production's prod.
func (p *plugin) inNamespace(ns string) *plugin {
	p.t.Helper()
	if err := p.env.Client.Create(p.t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		p.t.Fatal(err)
	}
	q := *p
	q.ns = ns
	return &q
}

// previewObj reads a Preview of p's namespace as the API server holds it.
func (p *plugin) previewObj(name string) *v1alpha1.Preview {
	p.t.Helper()
	var pv v1alpha1.Preview
	if err := p.env.Client.Get(p.t.Context(), client.ObjectKey{Namespace: p.ns, Name: name}, &pv); err != nil {
		p.t.Fatal(err)
	}
	return &pv
}

// previews names the Previews of p's namespace.
func (p *plugin) previews() []string {
	p.t.Helper()
	var l v1alpha1.PreviewList
	if err := p.env.Client.List(p.t.Context(), &l, client.InNamespace(p.ns)); err != nil {
		p.t.Fatal(err)
	}
	var names []string
	for _, pv := range l.Items {
		names = append(names, pv.Name)
	}
	return names
}

// changePreview edits a Preview of p's namespace, as a person would.
func (p *plugin) changePreview(name string, change func(*v1alpha1.Preview)) *v1alpha1.Preview {
	p.t.Helper()
	var pv v1alpha1.Preview
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := p.env.Client.Get(p.t.Context(), client.ObjectKey{Namespace: p.ns, Name: name}, &pv); err != nil {
			return err
		}
		change(&pv)
		return p.env.Client.Update(p.t.Context(), &pv)
	})
	if err != nil {
		p.t.Fatal(err)
	}
	return &pv
}

// webPreview is the spec create makes of the flags after "create NAME":
// prod's Rollout web copied to the namespace's Service web.
var webPreview = []string{"--source-namespace", "prod", "--rollout", "web", "--service", "web", "--port", "8080"}

func TestPreviewCreate(t *testing.T) {
	p := newPlugin(t).inNamespace("pr-42")
	create := func(args ...string) (int, string) {
		return p.run(slices.Concat([]string{"preview", "create", "pr-42"}, webPreview, args)...)
	}

	// The API server's defaults fill in what the flags leave out.
	code, out := create()
	if code != 0 || out != "preview pr-42/pr-42 created\n" {
		t.Fatalf("create: exit %d\n%s", code, out)
	}
	got := p.previewObj("pr-42")
	want := v1alpha1.PreviewSpec{
		Source:     v1alpha1.PreviewSource{Namespace: "prod", Rollout: "web"},
		Service:    v1alpha1.PreviewService{Name: "web", Port: 8080},
		Percentage: 10, Methods: []string{"GET", "HEAD"}, TTL: &metav1.Duration{Duration: 24 * time.Hour},
	}
	if diff := cmp.Diff(want, got.Spec); diff != "" || got.Generation != 1 {
		t.Errorf("created at generation %d (-want +got):\n%s", got.Generation, diff)
	}

	// Run again for a new build with analysis: the spec is replaced, a new
	// generation, and create says the preview starts over.
	judged := []string{"--percentage", "25", "--method", "get", "--method", "OPTIONS", "--ttl", "2h", "--path-prefix", "/api",
		"--template", "success-rate", "--cluster-template", "latency", "--arg", "service=web", "--arg", "window=5m"}
	code, out = create(judged...)
	if code != 0 || out != "preview pr-42/pr-42 updated: a new spec (generation 2), so the preview starts over\n" {
		t.Fatalf("create again: exit %d\n%s", code, out)
	}
	got = p.previewObj("pr-42")
	want = v1alpha1.PreviewSpec{
		Source:     v1alpha1.PreviewSource{Namespace: "prod", Rollout: "web"},
		Service:    v1alpha1.PreviewService{Name: "web", Port: 8080},
		Percentage: 25, Methods: []string{"GET", "OPTIONS"}, TTL: &metav1.Duration{Duration: 2 * time.Hour},
		Match: []v1alpha1.PreviewMatch{{Path: &v1alpha1.StringMatch{Prefix: "/api"}}},
		Analysis: &v1alpha1.Analysis{
			Templates: []v1alpha1.AnalysisTemplateRef{{TemplateName: "success-rate"}, {TemplateName: "latency", ClusterScope: ptr.To(true)}},
			Args:      []argo.AnalysisRunArgument{{Name: "service", Value: "web"}, {Name: "window", Value: "5m"}},
		},
	}
	if diff := cmp.Diff(want, got.Spec); diff != "" || got.Generation != 2 {
		t.Errorf("updated to generation %d (-want +got):\n%s", got.Generation, diff)
	}

	// The same flags a third time change nothing.
	version := got.ResourceVersion
	code, out = create(judged...)
	if code != 0 || out != "preview pr-42/pr-42 unchanged\n" {
		t.Errorf("create a third time: exit %d\n%s", code, out)
	}
	if got := p.previewObj("pr-42"); got.Generation != 2 || got.ResourceVersion != version {
		t.Errorf("an unchanged create wrote generation %d, resourceVersion %s (was %s)", got.Generation, got.ResourceVersion, version)
	}
	for _, format := range []string{"json", "yaml"} {
		code, stdout, stderr := p.runApart(slices.Concat([]string{"preview", "create", "pr-42", "-o", format}, webPreview, judged)...)
		var printed v1alpha1.Preview
		if err := decodeStrict(format, stdout, &printed); code != 0 || err != nil || printed.Kind != "Preview" || printed.Generation != 2 || printed.ManagedFields != nil {
			t.Errorf("create -o %s: exit %d (%v)\n%s%s", format, code, err, stdout, stderr)
		}
	}
	if code, out := p.run(slices.Concat([]string{"preview", "create", "other", "-o", "name"}, webPreview)...); code != 0 || out != "preview.tugboat.dev/other\n" {
		t.Errorf("create -o name: exit %d\n%s", code, out)
	}
}

func TestPreviewCreateFromAManifest(t *testing.T) {
	p := newPlugin(t).inNamespace("pr-42")
	manifest := `apiVersion: tugboat.dev/v1alpha1
kind: Preview
metadata:
  name: from-stdin
  labels: {pull-request: "42"}
spec:
  source: {namespace: prod, virtualService: {name: web, route: primary}}
  service: {name: web, port: 8080}
  methods: [GET]
  analysis:
    templates: [{templateName: success-rate}]
    args: [{name: workload, valueFrom: {fieldRef: {fieldPath: status.sourceWorkload}}}]
`
	code, out, errOut := p.runFed(manifest, "preview", "create", "-f", "-")
	if code != 0 || out != "preview pr-42/from-stdin created\n" {
		t.Fatalf("create -f -: exit %d\n%s%s", code, out, errOut)
	}
	got := p.previewObj("from-stdin")
	want := v1alpha1.PreviewSpec{
		Source:     v1alpha1.PreviewSource{Namespace: "prod", VirtualService: &v1alpha1.PreviewRouteRef{Name: "web", Route: "primary"}},
		Service:    v1alpha1.PreviewService{Name: "web", Port: 8080},
		Percentage: 10, Methods: []string{"GET"}, TTL: &metav1.Duration{Duration: 24 * time.Hour},
		Analysis: &v1alpha1.Analysis{
			Templates: []v1alpha1.AnalysisTemplateRef{{TemplateName: "success-rate"}},
			Args:      []argo.AnalysisRunArgument{{Name: "workload", ValueFrom: &argo.ArgumentValueFrom{FieldRef: &argo.FieldRef{FieldPath: "status.sourceWorkload"}}}},
		},
	}
	if diff := cmp.Diff(want, got.Spec); diff != "" || got.Labels["pull-request"] != "42" {
		t.Errorf("created with labels %v (-want +got):\n%s", got.Labels, diff)
	}

	// A manifest that says 50% is a new spec; one that only adds a label
	// is not.
	halved := strings.Replace(manifest, "methods: [GET]", "methods: [GET]\n  percentage: 50", 1)
	if code, out, errOut := p.runFed(halved, "preview", "create", "-f", "-"); code != 0 || !strings.Contains(out, "updated: a new spec (generation 2)") {
		t.Errorf("create -f - again: exit %d\n%s%s", code, out, errOut)
	}
	labelled := strings.Replace(halved, `labels: {pull-request: "42"}`, `labels: {pull-request: "42", team: web}`, 1)
	if code, out, errOut := p.runFed(labelled, "preview", "create", "-f", "-"); code != 0 || !strings.Contains(out, "labels or annotations only") {
		t.Errorf("create -f - with a label: exit %d\n%s%s", code, out, errOut)
	}
	if got := p.previewObj("from-stdin"); got.Generation != 2 || got.Labels["team"] != "web" {
		t.Errorf("after a label: generation %d, labels %v", got.Generation, got.Labels)
	}

	// A file, its namespace its own: without -n it goes there, and a
	// different -n is refused rather than followed.
	q := p.inNamespace("pr-7")
	file := filepath.Join(t.TempDir(), "preview.yaml")
	writeFile(t, file, strings.Replace(manifest, "name: from-stdin", "name: from-file\n  namespace: pr-7", 1))
	var o, e bytes.Buffer
	code = execute(t.Context(), []string{"preview", "create", "-f", file, "--kubeconfig", p.kubeconfig}, genericiooptions.IOStreams{In: strings.NewReader(""), Out: &o, ErrOut: &e})
	if code != 0 || o.String() != "preview pr-7/from-file created\n" || !slices.Equal(q.previews(), []string{"from-file"}) {
		t.Errorf("create -f FILE without -n: exit %d\n%s%s", code, o.String(), e.String())
	}
	if code, out := p.run("preview", "create", "-f", file); code != exitTrouble || !strings.Contains(out, `the manifest's namespace "pr-7" is not -n "pr-42"`) {
		t.Errorf("create -f FILE -n another: exit %d\n%s", code, out)
	}
	// A manifest without a name takes NAME.
	nameless := strings.Replace(manifest, "  name: from-stdin\n", "", 1)
	if code, out, errOut := p.runFed(nameless, "preview", "create", "named", "-f", "-"); code != 0 || out != "preview pr-42/named created\n" {
		t.Errorf("create NAME -f -: exit %d\n%s%s", code, out, errOut)
	}
}

// TestPreviewCreateRefuses: bad flags and manifests are refused before
// anything is sent, naming the flag; what the API server refuses is printed
// as it says it, naming the field.
func TestPreviewCreateRefuses(t *testing.T) {
	p := newPlugin(t).inNamespace("pr-42")
	preview := "apiVersion: tugboat.dev/v1alpha1\nkind: Preview\nmetadata: {name: x}\nspec: {source: {namespace: prod, rollout: web}, service: {name: web, port: 80}}\n"
	for _, tc := range []struct {
		name  string
		args  []string
		stdin string
		want  []string
	}{
		{"no source namespace", []string{"x", "--rollout", "web", "--service", "web", "--port", "80"}, "", []string{"--source-namespace is required"}},
		{"no source", []string{"x", "--source-namespace", "prod", "--service", "web", "--port", "80"}, "", []string{"give the source: --rollout, or --virtual-service with --route"}},
		{"two sources", slices.Concat([]string{"x"}, webPreview, []string{"--virtual-service", "web", "--route", "primary"}), "", []string{"--rollout and --virtual-service: give one source"}},
		{"a virtual service without its route", []string{"x", "--source-namespace", "prod", "--virtual-service", "web", "--service", "web", "--port", "80"}, "", []string{"--virtual-service needs --route"}},
		{"a route without a virtual service", slices.Concat([]string{"x"}, webPreview, []string{"--route", "primary"}), "", []string{"--route goes with --virtual-service"}},
		{"no service and no port", []string{"x", "--source-namespace", "prod", "--rollout", "web"}, "", []string{"--service is required", "--port is required"}},
		{"no name", webPreview, "", []string{"give the Preview's NAME"}},
		{"a percentage of 0", slices.Concat([]string{"x"}, webPreview, []string{"--percentage", "0"}), "", []string{"--percentage: want 1 to 100, got 0"}},
		{"an argument without a template", slices.Concat([]string{"x"}, webPreview, []string{"--arg", "a=b"}), "", []string{"--arg needs --template or --cluster-template"}},
		{"an argument without a value", slices.Concat([]string{"x"}, webPreview, []string{"--template", "t", "--arg", "a"}), "", []string{`--arg "a": want NAME=VALUE`}},
		{"a ttl that is no duration", slices.Concat([]string{"x"}, webPreview, []string{"--ttl", "1d"}), "", []string{`invalid argument "1d" for "--ttl" flag`}},
		{"a format create does not print", slices.Concat([]string{"x"}, webPreview, []string{"-o", "wide"}), "", []string{`"-o, --output" flag: want json, yaml or name`}},
		{"flags beside -f", []string{"-f", "-", "--rollout", "web", "--port", "80"}, preview, []string{"-f takes the whole Preview from -: leave out --rollout, --port"}},
		{"a manifest of another kind", []string{"-f", "-"}, "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n", []string{`want apiVersion tugboat.dev/v1alpha1 and kind Preview, got "apps/v1" and "Deployment"`}},
		{"a misspelt field", []string{"-f", "-"}, strings.Replace(preview, "service:", "servce:", 1), []string{"-f -:", `unknown field "servce"`}},
		{"two objects", []string{"-f", "-"}, preview + "---\n" + preview, []string{"want one Preview, found 2 objects"}},
		{"a manifest naming another Preview", []string{"y", "-f", "-"}, preview, []string{`-f - names Preview "x", not "y"`}},
		{"nothing to say", []string{"-f", "-"}, "", []string{"want one Preview, found 0 objects"}},
		// The API server's own words, naming the field.
		{"a method that changes state", slices.Concat([]string{"x"}, webPreview, []string{"--method", "POST"}), "", []string{"spec.methods", "set allowUnsafeMethods"}},
		{"a ttl too short", slices.Concat([]string{"x"}, webPreview, []string{"--ttl", "30s"}), "", []string{"spec.ttl", "from 1m to 720h"}},
		{"a port out of range", []string{"x", "--source-namespace", "prod", "--rollout", "web", "--service", "web", "--port", "70000"}, "", []string{"spec.service.port", "65535"}},
		{"a method that is none", slices.Concat([]string{"x"}, webPreview, []string{"--method", "FETCH"}), "", []string{"spec.methods[0]", `"FETCH"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := p.runFed(tc.stdin, append([]string{"preview", "create"}, tc.args...)...)
			if code != exitTrouble || out != "" {
				t.Errorf("exit %d, want %d and nothing on stdout\n%s%s", code, exitTrouble, out, errOut)
			}
			for _, want := range tc.want {
				if !strings.Contains(errOut, want) {
					t.Errorf("stderr lacks %q:\n%s", want, errOut)
				}
			}
		})
	}
	if names := p.previews(); len(names) != 0 {
		t.Errorf("refused creates made %v", names)
	}
	if code, out := p.run(slices.Concat([]string{"preview", "create", "unsafe"}, webPreview, []string{"--method", "POST", "--allow-unsafe-methods"})...); code != 0 {
		t.Errorf("POST with --allow-unsafe-methods: exit %d\n%s", code, out)
	}
}
