package reconciler_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

// laggingPrimary is the reconciler's client with a cache that is slow to see
// the controller's own update of primary: after it, reads of primary return
// the object from before for a while, and onPromote runs at once (the next
// revision lands right then).
type laggingPrimary struct {
	client.Client
	onPromote func()

	mu    sync.Mutex
	stale *appsv1.Deployment
	lies  int
}

func (l *laggingPrimary) Update(ctx context.Context, o client.Object, opts ...client.UpdateOption) error {
	d, ok := o.(*appsv1.Deployment)
	if !ok || !strings.HasSuffix(d.Name, "-primary") {
		return l.Client.Update(ctx, o, opts...)
	}
	var before appsv1.Deployment
	if err := l.Client.Get(ctx, client.ObjectKeyFromObject(d), &before); err != nil {
		return err
	}
	if err := l.Client.Update(ctx, o, opts...); err != nil {
		return err
	}
	l.mu.Lock()
	first := l.stale == nil
	l.stale, l.lies = &before, 20
	l.mu.Unlock()
	if first {
		l.onPromote()
	}
	return nil
}

func (l *laggingPrimary) Get(ctx context.Context, key client.ObjectKey, o client.Object, opts ...client.GetOption) error {
	l.mu.Lock()
	if d, ok := o.(*appsv1.Deployment); ok && l.lies > 0 && key.Name == l.stale.Name {
		l.lies--
		l.stale.DeepCopyInto(d)
		l.mu.Unlock()
		return nil
	}
	l.mu.Unlock()
	return l.Client.Get(ctx, key, o, opts...)
}

// A revision that lands while the cache still shows primary from before its
// promotion must not make the controller forget the promotion it made:
// primary runs the promoted revision, so that is what status calls stable.
func TestNewRevisionWhileTheCacheLagsBehindPromotion(t *testing.T) {
	f := given(t)
	f.stopController()
	f.wrap = func(c client.Client) client.Client {
		return &laggingPrimary{Client: c, onPromote: func() { f.release("lag", "v3") }}
	}
	f.startController()
	f.app("lag", 1, managedRoute("lag"))
	f.rollout(newRollout("lag", weight(50)))
	f.eventually("lag", "initialized", time.Minute, hasReason("Healthy"))
	v2 := f.release("lag", "v2")

	ro := f.eventually("lag", "rolling out v3", time.Minute, func(ro *v1alpha1.Rollout) bool {
		return ro.Status.CanaryRevision != "" && ro.Status.CanaryRevision != v2
	})
	if ro.Status.StableRevision != v2 {
		var primary appsv1.Deployment
		f.get(&primary, "lag-primary")
		t.Errorf("rolling out %s from stable %s, but primary runs %s (promoted v2 is %s)", ro.Status.CanaryRevision, ro.Status.StableRevision,
			primary.Annotations["tugboat.dev/revision"], v2)
	}
	f.eventually("lag", "v3 promoted", time.Minute, stableAt(ro.Status.CanaryRevision))
}

// A target deleted right as primary is promoted, while the cache still shows
// primary from before: the promotion was committed, so the rollout completes
// on primary's new revision rather than aborting as if the canary were lost.
func TestTargetDeletedWhileTheCacheLagsBehindPromotion(t *testing.T) {
	f := given(t)
	f.stopController()
	f.wrap = func(c client.Client) client.Client {
		return &laggingPrimary{Client: c, onPromote: func() {
			if err := f.c.Delete(t.Context(), &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "gone"}}); err != nil {
				t.Error(err)
			}
		}}
	}
	f.startController()
	f.app("gone", 1, managedRoute("gone"))
	f.rollout(newRollout("gone", weight(50)))
	f.eventually("gone", "initialized", time.Minute, hasReason("Healthy"))
	v2 := f.release("gone", "v2")

	ro := f.eventually("gone", "target gone", time.Minute, hasReason("TargetNotFound"))
	if ro.Status.StableRevision != v2 || ro.Status.Abort != nil || ro.Status.CanaryWeight != 0 {
		t.Errorf("after the target went with v2 promoted: stable %s (want %s), abort %+v, canary weight %d",
			ro.Status.StableRevision, v2, ro.Status.Abort, ro.Status.CanaryWeight)
	}
}
