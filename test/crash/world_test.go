package crash

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	networkingv1 "istio.io/api/networking/v1"
	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

// steps every Rollout of the tier runs: timed pauses between weights, so
// that kills land mid-pause as well as mid-move.
var steps = []v1alpha1.Step{
	{SetWeight: ptr.To[int32](10)},
	{Pause: &v1alpha1.Pause{Duration: ptr.To(intstr.FromString("2s"))}},
	{SetWeight: ptr.To[int32](40)},
	{Pause: &v1alpha1.Pause{Duration: ptr.To(intstr.FromString("2s"))}},
	{SetWeight: ptr.To[int32](70)},
	{Pause: &v1alpha1.Pause{Duration: ptr.To(intstr.FromString("1s"))}},
}

// world is the tier's namespace of applications.
type world struct {
	t    *testing.T
	ns   string
	apps []string
}

// given creates a namespace with n applications (Deployment, VirtualService,
// Rollout) and waits until each is at rest.
func given(t *testing.T, ns string, n int) *world {
	t.Helper()
	c := kube.Client
	ctx := t.Context()
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, ns: ns}
	for i := range n {
		name := fmt.Sprintf("app%d", i)
		w.apps = append(w.apps, name)
		d := &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr.To[int32](2),
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{
						Name: "app", Image: "example.com/" + name + ":1",
						Env: []corev1.EnvVar{{Name: "VERSION", Value: "0"}},
					}}},
				},
			},
		}
		vs := &istiov1.VirtualService{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: networkingv1.VirtualService{Hosts: []string{name}, Http: []*networkingv1.HTTPRoute{{
				Name: "primary",
				Route: []*networkingv1.HTTPRouteDestination{
					{Destination: &networkingv1.Destination{Host: name + "-stable"}, Weight: 100},
					{Destination: &networkingv1.Destination{Host: name + "-canary"}, Weight: 0},
				},
			}}},
		}
		ro := &v1alpha1.Rollout{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: v1alpha1.RolloutSpec{
				TargetRef: v1alpha1.TargetRef{APIVersion: "apps/v1", Kind: "Deployment", Name: name},
				Service:   v1alpha1.ServiceSpec{Port: 9898},
				TrafficRouting: v1alpha1.TrafficRouting{Istio: v1alpha1.IstioTrafficRouting{
					VirtualService: v1alpha1.IstioVirtualService{Name: name, Routes: []string{"primary"}},
				}},
				Steps:                   steps,
				ProgressDeadlineSeconds: ptr.To[int32](600),
			},
		}
		for _, o := range []client.Object{d, vs, ro} {
			if err := c.Create(ctx, o); err != nil {
				t.Fatal(err)
			}
		}
	}
	return w
}

// rollouts lists the tier's Rollouts.
func (w *world) rollouts(ctx context.Context) ([]v1alpha1.Rollout, error) {
	var list v1alpha1.RolloutList
	if err := kube.Client.List(ctx, &list, client.InNamespace(w.ns)); err != nil {
		return nil, err
	}
	return list.Items, nil
}

func atRest(ro *v1alpha1.Rollout) bool {
	return ro.Status.StableRevision != "" && ro.Status.CanaryRevision == "" && ro.Status.Phase == v1alpha1.PhaseHealthy
}

// allAtRest retries what is aborted and waits until every Rollout is at
// rest, with the controller running.
func (w *world) allAtRest(timeout time.Duration) {
	w.t.Helper()
	var last []v1alpha1.Rollout
	err := wait.PollUntilContextTimeout(w.t.Context(), 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		ros, err := w.rollouts(ctx)
		if err != nil {
			return false, nil
		}
		last = ros
		done := true
		for i := range ros {
			ro := &ros[i]
			if ro.Status.Abort != nil && ro.Annotations[v1alpha1.AnnotationRetry] == ro.Status.ObservedRequests.Retry {
				_ = annotate(ctx, w.ns, ro.Name, v1alpha1.AnnotationRetry, "final")
			}
			done = done && atRest(ro) && rollbackAnswered(ro)
		}
		return done, nil
	})
	if err != nil {
		for _, ro := range last {
			w.t.Logf("%s: %s %s", ro.Name, ro.Status.Phase, ro.Status.Message)
		}
		w.t.Fatalf("rollouts not at rest after the last kill: %v", err)
	}
}

// annotate writes a request annotation, as kubectl tug does.
func annotate(ctx context.Context, ns, name, key, value string) error {
	return retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		var ro v1alpha1.Rollout
		if err := kube.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &ro); err != nil {
			return err
		}
		if ro.Annotations == nil {
			ro.Annotations = map[string]string{}
		}
		ro.Annotations[key] = value
		return kube.Client.Update(ctx, &ro)
	})
}

// driver plays the people and CI around the controller: a new release
// whenever a Rollout is at rest, now and then an abort mid-rollout, and a
// retry after it.
type driver struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu               sync.Mutex
	stable           map[string]map[string]bool // revisions seen stable, per Rollout
	aborts, retries  int
	released, tokens int
	rollbacks        int // rollback requests written
}

// rollbackAnswered: no rollback request waits for the controller.
func rollbackAnswered(ro *v1alpha1.Rollout) bool {
	v := ro.Annotations[v1alpha1.AnnotationRollback]
	return v == "" || v1alpha1.RollbackRequestID(v) == ro.Status.ObservedRequests.Rollback
}

func (w *world) drive(rng *rand.Rand) *driver {
	ctx, cancel := context.WithCancel(w.t.Context())
	d := &driver{cancel: cancel, done: make(chan struct{}), stable: map[string]map[string]bool{}}
	versions := map[string]int{}
	abortedAttempt := map[string]string{}
	go func() {
		defer close(d.done)
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			ros, err := w.rollouts(ctx)
			if err != nil {
				continue
			}
			for i := range ros {
				ro := &ros[i]
				d.mu.Lock()
				if d.stable[ro.Name] == nil {
					d.stable[ro.Name] = map[string]bool{}
				}
				if ro.Status.StableRevision != "" {
					d.stable[ro.Name][ro.Status.StableRevision] = true
				}
				d.mu.Unlock()
				attempt := attemptOf(ro.Status)
				switch {
				case atRest(ro) && ro.Status.Rollback == nil && rollbackAnswered(ro) && rng.IntN(5) == 0:
					// A person goes back to the revision before (refused
					// while there is none), or now and then to the first,
					// which further back goes through the steps.
					d.tokens++
					req := v1alpha1.RollbackRequest{ID: "k" + strconv.Itoa(d.tokens), Reason: "crash tier"}
					if rng.IntN(3) == 0 {
						req.ToRevision = 1
					}
					raw, _ := json.Marshal(req)
					if annotate(ctx, w.ns, ro.Name, v1alpha1.AnnotationRollback, string(raw)) == nil {
						d.mu.Lock()
						d.rollbacks++
						d.mu.Unlock()
					}
				case atRest(ro) && rollbackAnswered(ro):
					versions[ro.Name]++
					if release(ctx, w.ns, ro.Name, versions[ro.Name]) == nil {
						d.mu.Lock()
						d.released++
						d.mu.Unlock()
					}
				case ro.Status.Abort != nil && ro.Annotations[v1alpha1.AnnotationRetry] == ro.Status.ObservedRequests.Retry && rng.IntN(4) == 0:
					d.tokens++
					if annotate(ctx, w.ns, ro.Name, v1alpha1.AnnotationRetry, strconv.Itoa(d.tokens)) == nil {
						d.mu.Lock()
						d.retries++
						d.mu.Unlock()
					}
				case ro.Status.Abort == nil && ro.Status.CurrentStepIndex != nil && *ro.Status.CurrentStepIndex >= 1 &&
					abortedAttempt[ro.Name] != attempt && rng.IntN(40) == 0:
					abortedAttempt[ro.Name] = attempt
					d.tokens++
					if annotate(ctx, w.ns, ro.Name, v1alpha1.AnnotationAbort, strconv.Itoa(d.tokens)) == nil {
						d.mu.Lock()
						d.aborts++
						d.mu.Unlock()
					}
				}
			}
		}
	}()
	return d
}

func (d *driver) stop() {
	d.cancel()
	<-d.done
}

// promoted counts the releases that became stable.
func (d *driver) promoted() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, revs := range d.stable {
		n += max(0, len(revs)-1)
	}
	return n
}

// release gives the target a new pod template.
func release(ctx context.Context, ns, name string, version int) error {
	return retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		var d appsv1.Deployment
		if err := kube.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &d); err != nil {
			return err
		}
		d.Spec.Template.Spec.Containers[0].Env[0].Value = strconv.Itoa(version)
		return kube.Client.Update(ctx, &d)
	})
}
