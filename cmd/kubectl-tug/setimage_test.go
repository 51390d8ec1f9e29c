package main

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/rollout"
)

// givenSetImage creates the Rollout web, its target web with two containers
// and an init container, and a primary web-primary.
func (p *plugin) givenSetImage() {
	p.t.Helper()
	deployment := func(name string) *appsv1.Deployment {
		labels := map[string]string{"app": name}
		return &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Namespace: p.ns, Name: name},
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr.To[int32](3),
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{
					InitContainers: []corev1.Container{{Name: "migrate", Image: "migrate:1"}},
					Containers: []corev1.Container{
						{Name: "app", Image: "app:2", Env: []corev1.EnvVar{{Name: "MODE", Value: "edited-by-hand"}}},
						{Name: "log", Image: "log:1"},
					},
				}},
			},
		}
	}
	ro := &v1alpha1.Rollout{
		ObjectMeta: metav1.ObjectMeta{Namespace: p.ns, Name: "web"},
		Spec: v1alpha1.RolloutSpec{
			TargetRef: v1alpha1.TargetRef{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
			Service:   v1alpha1.ServiceSpec{Port: 80},
			TrafficRouting: v1alpha1.TrafficRouting{Istio: v1alpha1.IstioTrafficRouting{
				VirtualService: v1alpha1.IstioVirtualService{Name: "web", Routes: []string{"primary"}}}},
			Steps: []v1alpha1.Step{{SetWeight: ptr.To[int32](10)}, {Pause: &v1alpha1.Pause{}}},
		},
	}
	for _, o := range []client.Object{deployment("web"), deployment("web-primary"), ro} {
		if err := p.env.Client.Create(p.t.Context(), o); err != nil {
			p.t.Fatal(err)
		}
	}
}

func (p *plugin) deployment(name string) *appsv1.Deployment {
	p.t.Helper()
	var d appsv1.Deployment
	if err := p.env.Client.Get(p.t.Context(), client.ObjectKey{Namespace: p.ns, Name: name}, &d); err != nil {
		p.t.Fatal(err)
	}
	return &d
}

func (p *plugin) rolloutObj(name string) *v1alpha1.Rollout {
	p.t.Helper()
	var ro v1alpha1.Rollout
	if err := p.env.Client.Get(p.t.Context(), client.ObjectKey{Namespace: p.ns, Name: name}, &ro); err != nil {
		p.t.Fatal(err)
	}
	return &ro
}

func images(cs []corev1.Container) []string {
	var s []string
	for _, c := range cs {
		s = append(s, c.Name+"="+c.Image)
	}
	return s
}

// printedRevision is the hash of the line "revision <hash>" in out.
func printedRevision(out string) string {
	for line := range strings.Lines(out) {
		if rev, ok := strings.CutPrefix(strings.TrimSpace(line), "revision "); ok {
			return rev
		}
	}
	return ""
}

func TestSetImage(t *testing.T) {
	p := newPlugin(t)
	p.givenSetImage()
	before, primary, ro := p.deployment("web"), p.deployment("web-primary"), p.rolloutObj("web")

	// One image: only that field of the target changes.
	code, out := p.run("set", "image", "web", "app=app:3")
	if code != 0 || !strings.Contains(out, "deployment prod/web: container app image set to app:3\n") {
		t.Fatalf("set app=app:3: exit %d\n%s", code, out)
	}
	after := p.deployment("web")
	want := before.Spec.DeepCopy()
	want.Template.Spec.Containers[0].Image = "app:3"
	if !apiequality.Semantic.DeepEqual(after.Spec, *want) {
		t.Errorf("the target's spec changed beyond app's image: images %v, init %v; diff %s",
			images(after.Spec.Template.Spec.Containers), images(after.Spec.Template.Spec.InitContainers), cmp.Diff(*want, after.Spec))
	}
	if rev := printedRevision(out); rev == "" || rev != rollout.Revision(after.Spec.Template) || rev == rollout.Revision(before.Spec.Template) {
		t.Errorf("printed revision %q; the new template's is %s, the old one's %s\n%s",
			rev, rollout.Revision(after.Spec.Template), rollout.Revision(before.Spec.Template), out)
	}
	if got := p.rolloutObj("web"); got.Generation != ro.Generation || got.ResourceVersion != ro.ResourceVersion ||
		!apiequality.Semantic.DeepEqual(got.Spec, ro.Spec) {
		t.Errorf("the Rollout changed: generation %d -> %d, resourceVersion %s -> %s", ro.Generation, got.Generation, ro.ResourceVersion, got.ResourceVersion)
	}

	// A container and an init container at once; an image already set is
	// left alone.
	code, out = p.run("set", "image", "web", "log=log:2", "migrate=migrate:2", "app=app:3")
	if code != 0 || !strings.Contains(out, "container log image set to log:2") || !strings.Contains(out, "container migrate image set to migrate:2") ||
		strings.Contains(out, "container app image set") {
		t.Fatalf("set log, migrate and app as it is: exit %d\n%s", code, out)
	}
	before, after = after, p.deployment("web")
	want = before.Spec.DeepCopy()
	want.Template.Spec.Containers[1].Image, want.Template.Spec.InitContainers[0].Image = "log:2", "migrate:2"
	if !apiequality.Semantic.DeepEqual(after.Spec, *want) || printedRevision(out) != rollout.Revision(after.Spec.Template) {
		t.Errorf("set log and migrate: images %v, init %v, revision %q\n%s",
			images(after.Spec.Template.Spec.Containers), images(after.Spec.Template.Spec.InitContainers), printedRevision(out), out)
	}

	// Nothing to change: nothing written, exit 0.
	code, out = p.run("set", "image", "web", "app=app:3", "log=log:2")
	if code != 0 || !strings.Contains(out, "unchanged") || printedRevision(out) != rollout.Revision(after.Spec.Template) {
		t.Errorf("unchanged: exit %d\n%s", code, out)
	}
	if d := p.deployment("web"); d.ResourceVersion != after.ResourceVersion {
		t.Errorf("unchanged: the target was written (resourceVersion %s -> %s)", after.ResourceVersion, d.ResourceVersion)
	}

	// Bad arguments, an unknown container, a missing Rollout: exit 4,
	// nothing written, even when another argument is good.
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"web", "app=app:9", "nope=x:1"}, []string{"deployment prod/web: the pod template has no container nope (it has app, log, migrate (init))", "nothing was written"}},
		{[]string{"web", "app=app:9", "app"}, []string{`"app": want CONTAINER=IMAGE`, "nothing was written"}},
		{[]string{"web", "app=app:9", "app="}, []string{`"app=": want CONTAINER=IMAGE`}},
		{[]string{"web", "=app:9"}, []string{`"=app:9": want CONTAINER=IMAGE`}},
		{[]string{"web", "app=app:9", "app=app:8"}, []string{"named twice"}},
		{[]string{"web"}, []string{"requires at least 2 arg(s)"}},
		{[]string{"missing", "app=app:9"}, []string{"rollout prod/missing", "not found"}},
	} {
		code, out := p.run(append([]string{"set", "image"}, tc.args...)...)
		if code != exitTrouble {
			t.Errorf("%v: exit %d, want %d\n%s", tc.args, code, exitTrouble, out)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("%v: output lacks %q\n%s", tc.args, w, out)
			}
		}
	}
	if d := p.deployment("web"); d.ResourceVersion != after.ResourceVersion || d.Spec.Template.Spec.Containers[0].Image != "app:3" {
		t.Errorf("a refused set image wrote the target (resourceVersion %s -> %s)", after.ResourceVersion, d.ResourceVersion)
	}
	if d := p.deployment("web-primary"); d.ResourceVersion != primary.ResourceVersion {
		t.Errorf("primary was written (resourceVersion %s -> %s)", primary.ResourceVersion, d.ResourceVersion)
	}
	if got := p.rolloutObj("web"); got.ResourceVersion != ro.ResourceVersion {
		t.Errorf("the Rollout was written (resourceVersion %s -> %s)", ro.ResourceVersion, got.ResourceVersion)
	}

	if code, out := p.run("set", "image", "--help"); code != 0 || !strings.Contains(out, "kubectl tug set image NAME CONTAINER=IMAGE") ||
		!strings.Contains(out, "kubectl tug set image web app=") {
		t.Errorf("set image --help: exit %d\n%s", code, out)
	}
	if code, out := p.run("set", "replicas", "web"); code != exitTrouble || !strings.Contains(out, "kubectl tug set image") {
		t.Errorf("set replicas: exit %d\n%s", code, out)
	}
}

// TestSetImageNeedsPermission: a user who may read but not patch the target
// is told which permission is missing, and nothing is written; one who may
// patch it sets the image.
func TestSetImageNeedsPermission(t *testing.T) {
	p := newPlugin(t)
	p.givenSetImage()
	user := func(name string, deploymentVerbs ...string) *plugin {
		return p.asUser(name, []rbacv1.PolicyRule{
			{APIGroups: []string{v1alpha1.GroupVersion.Group}, Resources: []string{"rollouts"}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{appsv1.GroupName}, Resources: []string{"deployments"}, Verbs: deploymentVerbs},
		}, &v1alpha1.Rollout{}, &appsv1.Deployment{})
	}
	before := p.deployment("web")

	viewer := user("viewer", "get", "list", "watch")
	code, out := viewer.run("set", "image", "web", "app=app:3")
	if code != exitTrouble || !strings.Contains(out, "deployment prod/web: you may not patch deployments.apps in namespace prod") ||
		!strings.Contains(out, "nothing was written") {
		t.Errorf("viewer: exit %d\n%s", code, out)
	}
	if d := p.deployment("web"); d.ResourceVersion != before.ResourceVersion {
		t.Errorf("viewer's refused set image wrote the target (resourceVersion %s -> %s)", before.ResourceVersion, d.ResourceVersion)
	}

	// Nothing to change is not a write: it needs no permission to patch.
	code, out = viewer.run("set", "image", "web", "app=app:2", "log=log:1")
	if code != 0 || !strings.Contains(out, "unchanged") || printedRevision(out) != rollout.Revision(before.Spec.Template) {
		t.Errorf("viewer, unchanged: exit %d\n%s", code, out)
	}

	editor := user("alice", "get", "patch")
	code, out = editor.run("set", "image", "web", "app=app:3")
	if d := p.deployment("web"); code != 0 || d.Spec.Template.Spec.Containers[0].Image != "app:3" || printedRevision(out) != rollout.Revision(d.Spec.Template) {
		t.Errorf("alice: exit %d, image %s\n%s", code, d.Spec.Template.Spec.Containers[0].Image, out)
	}
}
