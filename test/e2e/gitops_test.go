package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/sandbox/demo"
	"github.com/tugboatdev/tugboat/sandbox/toolchain"
)

// fieldOwner is the controller's name in metadata.managedFields
// (cmd/tugboat's fieldOwner).
const fieldOwner = "tugboat"

// TestGitOpsIgnoreRules: given examples/podinfo (with a Service of the
// user's that the Rollout names as its stable Service) and
// examples/subset-split, as git holds them, at rest, then paused mid-canary
// (weights moved, the canary scaled, a header route added), then with a
// Preview mirroring podinfo's route, every rule of
// config/argocd/ignore-differences.yaml and config/flux/ names fields the
// controller wrote: each selects a value, every value it selects is owned
// by "tugboat" in metadata.managedFields, and each rule hides a value
// Tugboat changed from what git holds; and with them taken out, the
// VirtualServices and the DestinationRule are as git has them. Rules that
// name fields Tugboat does not write fail the same check.
func TestGitOpsIgnoreRules(t *testing.T) {
	podinfo := givenInGit(t, "e2e-gitops-podinfo", "podinfo", []client.Object{userStableService("podinfo-stable")}, func(spec *v1alpha1.RolloutSpec) {
		spec.Service.StableService = "podinfo-stable"
		spec.Analysis = nil
		spec.Steps = []v1alpha1.Step{
			{SetCanaryScale: &argo.SetCanaryScale{Replicas: ptr.To[int32](1)}},
			{SetWeight: ptr.To[int32](20)},
			{Pause: &v1alpha1.Pause{}},
		}
	})
	reviews := givenInGit(t, "e2e-gitops-reviews", "subset-split", nil, func(spec *v1alpha1.RolloutSpec) {
		spec.Windows = nil // releases may start whenever the test runs
	})
	apps := []*gitApp{podinfo, reviews}
	atRest := snapshotOf(t, apps)

	// When: a release of each reaches its pause, a manual one.
	podinfo.whenReleasedUntilStep(demo.Release{Name: "gitops", Image: "ghcr.io/stefanprodan/podinfo:6.7.1", ErrorRate: "0.001", LatencyMs: "40"}, 2)
	reviews.whenReleasedUntilStep(demo.Release{Name: "gitops", Image: "docker.io/istio/examples-bookinfo-reviews-v3:1.20.2", ErrorRate: "0.001", LatencyMs: "40"}, 1)
	paused := snapshotOf(t, apps)

	// And a Preview copies podinfo's requests.
	if err := demo.AllowPreviews(t.Context(), box.Client(), podinfo.key.Namespace); err != nil {
		t.Fatal(err)
	}
	build := demo.PreviewBuild{Name: "gitops", Namespace: "e2e-gitops-pr", ErrorRate: "0.001"}
	if err := demo.DeployPreview(t.Context(), box.Client(), podinfo.key.Namespace, build); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p := &v1alpha1.Preview{ObjectMeta: metav1.ObjectMeta{Namespace: build.Namespace, Name: "podinfo"}}
		_ = box.Client().Delete(context.Background(), p) // its mirror off the route, for the tests after
	})
	podinfo.previewsMirroring(build)
	previewing := snapshotOf(t, apps)

	// Then: Argo CD's rules hold in every state; Flux's, written for a
	// VirtualService Tugboat adds no routes to, while it adds none.
	rulesHold(t, argoRules(t), atRest, paused, previewing)
	rulesHold(t, fluxRules(t), atRest, paused)
	bogusRulesFail(t, atRest, paused)
}

// rulesHold checks each rule, over the snapshots, and that together the
// rules leave nothing of Tugboat's in the mesh objects' specs: the tool
// sees them as git has them.
func rulesHold(t *testing.T, rules []rule, snapshots ...[]kept) {
	t.Helper()
	for _, r := range rules {
		t.Run(r.from, func(t *testing.T) {
			if err := r.check(snapshots...); err != nil {
				t.Errorf("%v\n%s", err, describe(snapshots[len(snapshots)-1]))
			}
		})
	}
	tool, _, _ := strings.Cut(rules[0].from, "/")
	t.Run(tool+"/the mesh objects as git has them", func(t *testing.T) {
		for _, objects := range snapshots {
			for _, o := range objects {
				if o.group != "networking.istio.io" {
					continue
				}
				if err := sameSpec(rules, o); err != nil {
					t.Error(err)
				}
			}
		}
	})
}

// bogusRulesFail checks that rules naming fields Tugboat does not write
// fail the check the tools' rules pass.
func bogusRulesFail(t *testing.T, atRest, paused []kept) {
	t.Helper()
	for _, c := range []struct {
		rule
		in [][]kept // atRest and paused when empty
	}{
		{rule: rule{from: "the VirtualService's hosts", group: "networking.istio.io", kind: "VirtualService", pointers: []string{"/spec/hosts"}}},
		{rule: rule{from: "a field no route has", group: "networking.istio.io", kind: "VirtualService", jq: ".spec.http[]?.timeout"}},
		{rule: rule{from: "the managed route's weight, one route too far", group: "networking.istio.io", kind: "VirtualService", name: "podinfo", pointers: []string{"/spec/http/1/route/0/weight"}}},
		// Tugboat owns spec.http whole once it has written it (Istio's list
		// has no keys), so ownership alone would let this one through.
		{rule: rule{from: "a route of the user's, unchanged", group: "networking.istio.io", kind: "VirtualService", name: "reviews", pointers: []string{"/spec/http/0/route/0/destination/host"}}, in: [][]kept{paused}},
		{rule: rule{from: "the DestinationRule's host", group: "networking.istio.io", kind: "DestinationRule", jq: ".spec.host"}},
		{rule: rule{from: "the target's image", group: "apps", kind: "Deployment", jq: ".spec.template.spec.containers[].image"}},
		{rule: rule{from: "the target's labels", group: "apps", kind: "Deployment", pointers: []string{"/metadata/labels"}}},
		{rule: rule{from: "the target's revision history limit", group: "apps", kind: "Deployment", pointers: []string{"/spec/revisionHistoryLimit"}}},
		{rule: rule{from: "the Service's ports", kind: "Service", name: "podinfo-stable", pointers: []string{"/spec/ports"}}},
	} {
		t.Run("bogus/"+c.from, func(t *testing.T) {
			c.match = c.argoMatch
			if c.in == nil {
				c.in = [][]kept{atRest, paused}
			}
			err := c.check(c.in...)
			if err == nil {
				t.Fatalf("a rule for %s passes the check", c.from)
			}
			t.Logf("refused: %v", err)
		})
	}
}

// gitApp is an application whose objects a GitOps tool applies from git,
// and a Rollout among them.
type gitApp struct {
	*scenario
	// git is what git holds, as applied.
	git []*unstructured.Unstructured
}

// givenInGit creates extra and an example's objects in a namespace of its
// own, as a GitOps tool would from git, with edit applied to the Rollout's
// spec first, and waits until the Rollout is at rest.
func givenInGit(t *testing.T, ns, example string, extra []client.Object, edit func(*v1alpha1.RolloutSpec)) *gitApp {
	t.Helper()
	ctx := t.Context()
	if err := box.Client().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	a := &gitApp{scenario: &scenario{t: t}}
	for _, o := range extra {
		u := &unstructured.Unstructured{}
		var err error
		if u.Object, err = runtime.DefaultUnstructuredConverter.ToUnstructured(o); err != nil {
			t.Fatal(err)
		}
		a.git = append(a.git, u)
	}
	a.git = append(a.git, manifests(t, example)...)
	for _, u := range a.git {
		u.SetNamespace(ns)
		if u.GetKind() == "Rollout" {
			var ro v1alpha1.Rollout
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &ro); err != nil {
				t.Fatal(err)
			}
			ro.Spec.Notifications = nil // no receivers in this namespace
			edit(&ro.Spec)
			var err error
			if u.Object, err = runtime.DefaultUnstructuredConverter.ToUnstructured(&ro); err != nil {
				t.Fatal(err)
			}
			a.key = types.NamespacedName{Namespace: ns, Name: ro.Name}
		}
		if err := box.Client().Create(ctx, u.DeepCopy()); err != nil {
			t.Fatalf("create %s %s: %v", u.GetKind(), u.GetName(), err)
		}
	}
	if err := demo.WaitHealthy(ctx, box.Client(), a.key, 3*time.Minute); err != nil {
		t.Fatalf("%s never became healthy: %v\n%s", a.key.Name, err, box.ControllerLog(30))
	}
	return a
}

// userStableService is a Service the user keeps in git for the stable
// pods, selecting the target's as a chart would.
func userStableService(name string) *corev1.Service {
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "podinfo"},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 9898, TargetPort: intstr.FromInt32(9898)}},
		},
	}
}

// manifests decodes the objects of examples/<example>.
func manifests(t *testing.T, example string) []*unstructured.Unstructured {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(toolchain.Root(), "examples", example, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("examples/%s: no manifests (%v)", example, err)
	}
	var out []*unstructured.Unstructured
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		d := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
		for {
			var ext runtime.RawExtension
			if err := d.Decode(&ext); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if len(bytes.TrimSpace(ext.Raw)) == 0 {
				continue
			}
			u := &unstructured.Unstructured{}
			if err := u.UnmarshalJSON(ext.Raw); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			out = append(out, u)
		}
	}
	return out
}

// kept is one object git holds: as git has it and as it is live.
type kept struct {
	group, kind, namespace, name string
	git, live                    any // JSON documents
	// owned is the union of the fields "tugboat" owns in the object's main
	// resource (not its status), as fieldsV1.
	owned map[string]any
}

func (k kept) String() string { return k.kind + " " + k.namespace + "/" + k.name }

// snapshotOf reads every object the apps keep in git.
func snapshotOf(t *testing.T, apps []*gitApp) []kept {
	t.Helper()
	var out []kept
	for _, a := range apps {
		for _, g := range a.git {
			live := &unstructured.Unstructured{}
			live.SetGroupVersionKind(g.GroupVersionKind())
			if err := box.Client().Get(t.Context(), client.ObjectKeyFromObject(g), live); err != nil {
				t.Fatal(err)
			}
			k := kept{group: g.GroupVersionKind().Group, kind: g.GetKind(), namespace: g.GetNamespace(), name: g.GetName(),
				git: document(t, g), live: document(t, live), owned: map[string]any{}}
			for _, f := range live.GetManagedFields() {
				if f.Manager != fieldOwner || f.Subresource != "" || f.FieldsV1 == nil {
					continue
				}
				var fields map[string]any
				if err := json.Unmarshal(f.FieldsV1.Raw, &fields); err != nil {
					t.Fatal(err)
				}
				union(k.owned, fields)
			}
			out = append(out, k)
		}
	}
	return out
}

// document is o as plain JSON values, the form gojq takes.
func document(t *testing.T, o *unstructured.Unstructured) any {
	t.Helper()
	raw, err := o.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

func union(into, from map[string]any) {
	for k, v := range from {
		sub, _ := v.(map[string]any)
		have, ok := into[k].(map[string]any)
		if !ok {
			have = map[string]any{}
			into[k] = have
		}
		union(have, sub)
	}
}

// describe shows what tugboat owns in each object, for a failure.
func describe(objects []kept) string {
	var b strings.Builder
	for _, o := range objects {
		fields, _ := json.Marshal(o.owned)
		fmt.Fprintf(&b, "  %s: tugboat owns %s\n", o, fields)
	}
	return b.String()
}
