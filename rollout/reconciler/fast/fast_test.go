// Package fast is the Rollout reconciler's fast tier: Reconcile against
// controller-runtime's fake client and a one-method fake router, for the
// order of act's writes and what a failed write leaves behind. The
// integration tests in rollout/reconciler prove the same against a real API
// server; these run in milliseconds.
package fast

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/tugboatdev/tugboat/api/scheme"
	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/rollout"
	"github.com/tugboatdev/tugboat/rollout/reconciler"
	"github.com/tugboatdev/tugboat/traffic"
)

// router is the one method the reconciler needs of the mesh.
type router struct {
	applied []traffic.Desired
	// fails, when set, is the error a wanted traffic state gets.
	fails func(traffic.Desired) error
}

func (r *router) Apply(_ context.Context, _ traffic.Mesh, want traffic.Desired) error {
	r.applied = append(r.applied, want)
	if r.fails != nil {
		return r.fails(want)
	}
	return nil
}

type recorder struct{ reasons []string }

func (r *recorder) Eventf(_, _ runtime.Object, _, reason, _, _ string, _ ...any) {
	r.reasons = append(r.reasons, reason)
}

const ns = "prod"

func template(version string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "web:1", Env: []corev1.EnvVar{{Name: "VERSION", Value: version}}}}},
	}
}

// midRollout is a Rollout paused at step 1 (20% to the canary) of
// [setWeight 20, pause {}], the target on v2 and primary on v1, all Ready.
func midRollout(t *testing.T) []client.Object {
	t.Helper()
	stable, canary := rollout.Revision(template("v1")), rollout.Revision(template("v2"))
	steps := []v1alpha1.Step{{SetWeight: ptr.To[int32](20)}, {Pause: &v1alpha1.Pause{}}}
	now := metav1.NewTime(time.Now().Truncate(time.Second))
	ro := &v1alpha1.Rollout{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web", UID: "uid-web", Finalizers: []string{"tugboat.dev/hand-back"}},
		Spec: v1alpha1.RolloutSpec{
			TargetRef: v1alpha1.TargetRef{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
			Service:   v1alpha1.ServiceSpec{Port: 80},
			TrafficRouting: v1alpha1.TrafficRouting{Istio: v1alpha1.IstioTrafficRouting{
				VirtualService: v1alpha1.IstioVirtualService{Name: "web", Routes: []string{"primary"}},
			}},
			Steps: steps,
		},
		Status: v1alpha1.RolloutStatus{
			StableRevision: stable, CanaryRevision: canary, CurrentStepIndex: ptr.To[int32](1),
			StepStartedAt: &now, StartedAt: &now, CanaryWeight: 20, StepsHash: rollout.StepsHash(steps),
		},
	}
	labels := map[string]string{"app.kubernetes.io/managed-by": "tugboat", "tugboat.dev/rollout": "web"}
	deployment := func(name string, sel map[string]string, t corev1.PodTemplateSpec, annotations map[string]string) *appsv1.Deployment {
		t.Labels = sel
		d := &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: annotations},
			Spec:       appsv1.DeploymentSpec{Replicas: ptr.To[int32](2), Selector: &metav1.LabelSelector{MatchLabels: sel}, Template: t},
			Status:     appsv1.DeploymentStatus{Replicas: 2, UpdatedReplicas: 2, ReadyReplicas: 2},
		}
		if annotations != nil {
			d.Labels = labels
		}
		return d
	}
	target := deployment("web", map[string]string{"app": "web"}, template("v2"), nil)
	primary := deployment("web-primary", map[string]string{"app": "web-primary"}, template("v1"), map[string]string{"tugboat.dev/revision": stable})
	data, err := json.Marshal(template("v1"))
	if err != nil {
		t.Fatal(err)
	}
	record := &appsv1.ControllerRevision{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web-" + stable, Labels: labels, Annotations: map[string]string{"tugboat.dev/revision": stable},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "tugboat.dev/v1alpha1", Kind: "Rollout", Name: "web", UID: ro.UID, Controller: ptr.To(true)}}},
		Data:     runtime.RawExtension{Raw: data},
		Revision: 1,
	}
	service := func(name string, sel map[string]string) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
			Spec: corev1.ServiceSpec{Selector: sel, Ports: []corev1.ServicePort{{Port: 80}}}}
	}
	return []client.Object{ro, target, primary, record, service("web-stable", map[string]string{"app": "web-primary"}), service("web-canary", map[string]string{"app": "web"})}
}

type world struct {
	c      client.Client
	router *router
	events *recorder
	r      *reconciler.Reconciler
}

func given(t *testing.T, objs []client.Object, funcs interceptor.Funcs, fails func(traffic.Desired) error) *world {
	t.Helper()
	sch, err := scheme.New()
	if err != nil {
		t.Fatal(err)
	}
	c := fake.NewClientBuilder().WithScheme(sch).WithObjects(objs...).
		WithStatusSubresource(&v1alpha1.Rollout{}, &v1alpha1.AnalysisRun{}).
		WithInterceptorFuncs(funcs).Build()
	w := &world{c: c, router: &router{fails: fails}, events: &recorder{}}
	w.r = &reconciler.Reconciler{Client: c, Router: w.router, Recorder: w.events, Now: time.Now}
	return w
}

func (w *world) annotate(t *testing.T, key, value string) {
	t.Helper()
	var ro v1alpha1.Rollout
	w.get(t, "web", &ro)
	if ro.Annotations == nil {
		ro.Annotations = map[string]string{}
	}
	ro.Annotations[key] = value
	if err := w.c.Update(t.Context(), &ro); err != nil {
		t.Fatal(err)
	}
}

func (w *world) reconcile(t *testing.T) error {
	t.Helper()
	_, err := w.r.Reconcile(t.Context(), reconcile.Request{NamespacedName: client.ObjectKey{Namespace: ns, Name: "web"}})
	return err
}

func (w *world) get(t *testing.T, name string, o client.Object) {
	t.Helper()
	if err := w.c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, o); err != nil {
		t.Fatal(err)
	}
}

func (w *world) primary(t *testing.T) (revision, version string) {
	t.Helper()
	var d appsv1.Deployment
	w.get(t, "web-primary", &d)
	return d.Annotations["tugboat.dev/revision"], d.Spec.Template.Spec.Containers[0].Env[0].Value
}

// conflictOnPromoting refuses the status write that calls the canary
// promoting, as a concurrent writer would make it fail.
func conflictOnPromoting() interceptor.Funcs {
	return interceptor.Funcs{SubResourcePatch: func(ctx context.Context, c client.Client, sub string, o client.Object, p client.Patch, opts ...client.SubResourcePatchOption) error {
		if ro, ok := o.(*v1alpha1.Rollout); ok && ro.Status.Promoting {
			return apierrors.NewConflict(schema.GroupResource{Group: "tugboat.dev", Resource: "rollouts"}, ro.Name, fmt.Errorf("changed meanwhile"))
		}
		return c.SubResource(sub).Patch(ctx, o, p, opts...)
	}}
}

func misconfigured(want traffic.Desired) error {
	return fmt.Errorf("virtualservice prod/web route %q: %w", "secondary", traffic.ErrMisconfigured)
}

func TestActOrder(t *testing.T) {
	stable, canary := rollout.Revision(template("v1")), rollout.Revision(template("v2"))
	onStable := func(t *testing.T, w *world, err error) {
		if rev, version := w.primary(t); err != nil || rev != stable || version != "v1" {
			t.Errorf("err %v, primary on %s (%s); want stable %s (v1)", err, rev, version, stable)
		}
	}
	for _, tt := range []struct {
		name    string
		funcs   interceptor.Funcs
		fails   func(traffic.Desired) error
		request string
		edit    func(objs []client.Object)
		then    func(t *testing.T, w *world, err error)
	}{{
		name:    "promoted: status calls the canary promoting, then primary takes it",
		request: v1alpha1.AnnotationPromote,
		then: func(t *testing.T, w *world, err error) {
			var ro v1alpha1.Rollout
			w.get(t, "web", &ro)
			if rev, _ := w.primary(t); err != nil || !ro.Status.Promoting || rev != canary {
				t.Errorf("err %v, promoting %v, primary on %s; want promoting and primary on %s", err, ro.Status.Promoting, rev, canary)
			}
		},
	}, {
		name:    "the status write that starts the promotion is lost: primary stays on stable",
		funcs:   conflictOnPromoting(),
		request: v1alpha1.AnnotationPromote,
		then:    onStable,
	}, {
		name:    "an abort with a managed route gone: the canary is scaled down, and status says what was not done",
		fails:   misconfigured,
		request: v1alpha1.AnnotationAbort,
		then: func(t *testing.T, w *world, err error) {
			var ro v1alpha1.Rollout
			w.get(t, "web", &ro)
			var target appsv1.Deployment
			w.get(t, "web", &target)
			if err != nil || ro.Status.Abort == nil || !strings.Contains(ro.Status.Message, `not done: virtualservice prod/web route "secondary"`) || *target.Spec.Replicas != 0 {
				t.Errorf("err %v, abort %+v, message %q, canary at %d", err, ro.Status.Abort, ro.Status.Message, *target.Spec.Replicas)
			}
		},
	}, {
		name:    "a managed route gone while going on: held as InvalidSpec, nothing moved",
		fails:   misconfigured,
		request: v1alpha1.AnnotationPromote,
		then: func(t *testing.T, w *world, err error) {
			var ro v1alpha1.Rollout
			w.get(t, "web", &ro)
			rev, _ := w.primary(t)
			if err != nil || ro.Status.Phase != v1alpha1.PhaseDegraded || !strings.Contains(ro.Status.Message, "secondary") || rev != stable || *ro.Status.CurrentStepIndex != 1 {
				t.Errorf("err %v, phase %s, message %q, primary on %s, step %d", err, ro.Status.Phase, ro.Status.Message, rev, *ro.Status.CurrentStepIndex)
			}
		},
	}, {
		name: "primary found on the canary that status does not promote: put back on stable",
		edit: func(objs []client.Object) {
			p := objs[2].(*appsv1.Deployment)
			p.Annotations["tugboat.dev/revision"] = canary
			p.Spec.Template.Spec.Containers[0].Env[0].Value = "v2"
		},
		then: onStable,
	}, {
		name: "primary deleted mid-rollout: created again on the stable revision, not the canary",
		edit: func(objs []client.Object) {
			objs[2] = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "unrelated"}} // primary gone
		},
		then: onStable,
	}} {
		t.Run(tt.name, func(t *testing.T) {
			objs := midRollout(t)
			if tt.edit != nil {
				tt.edit(objs)
			}
			w := given(t, objs, tt.funcs, tt.fails)
			if tt.request != "" {
				w.annotate(t, tt.request, "r1")
			}
			tt.then(t, w, w.reconcile(t))
		})
	}
}
