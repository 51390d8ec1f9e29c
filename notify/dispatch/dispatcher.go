// Package dispatch sends notifications (package notify) to the
// NotificationProviders that Rollouts and Previews name, off the reconcile
// path: Notify only queues, a few workers send, with retries and backoff, and
// a receiver's failures end up in a metric and on its status, never on the
// rollout.
package dispatch

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/lru"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/egress"
	"github.com/tugboatdev/tugboat/notify"
)

// Secrets reads a Secret's data; the controller reads them one at a time,
// uncached, where RBAC lets it.
type Secrets func(ctx context.Context, namespace, name string) (map[string][]byte, error)

// Options configure a Dispatcher.
type Options struct {
	// Client reads NotificationProviders (from the cache) and writes their
	// status.
	Client client.Client
	// Secrets reads a provider's secretRef.
	Secrets Secrets
	// Guard decides which receivers may be dialled.
	Guard egress.Guard
	// Metrics counts deliveries; nil counts nothing.
	Metrics *Metrics
	// Now is time.Now in the controller.
	Now func() time.Time
	// Workers send at once (default 16): a slow receiver holds one of them.
	Workers int
	// MaxAttempts per notification and receiver (default 8: with the
	// default delays, about two minutes from the first to the last).
	MaxAttempts int
	// BaseDelay and MaxDelay bound the backoff between attempts (default 1s
	// and 1m).
	BaseDelay, MaxDelay time.Duration
	// MaxPending notifications wait at most (default 10000), and at most
	// MaxPerReceiver (default 100) for one receiver, so that one that is
	// down cannot take the room of the others; more are dropped and
	// counted.
	MaxPending, MaxPerReceiver int
}

// +kubebuilder:rbac:groups=tugboat.dev,resources=notificationproviders,verbs=get;list;watch
// +kubebuilder:rbac:groups=tugboat.dev,resources=notificationproviders/status,verbs=get;patch

// Dispatcher queues and sends notifications. It is a manager Runnable.
//
// Each receiver has a line of notifications, sent in the order they came,
// one at a time: the work queue holds receivers, and never hands one to two
// workers at once, so a slow receiver holds one worker and the rest of its
// own line, and nothing else. A failed attempt backs the receiver off
// (exponentially, per receiver) and tries the same notification again.
type Dispatcher struct {
	o     Options
	queue workqueue.TypedRateLimitingInterface[types.NamespacedName]
	mu    sync.Mutex
	// lines hold, per receiver, what waits to be sent, oldest first.
	lines map[types.NamespacedName][]*pending
	// waiting counts the notifications in every line.
	waiting int
	// sent remembers recently delivered and queued notifications, so a
	// notification handed over twice (a reconcile repeated on a stale
	// cache) is sent once.
	sent *lru.Cache
	// written is, per provider, the last time its status was written for a
	// delivery alone, so that a busy receiver costs a write a minute at most.
	written map[types.NamespacedName]time.Time

	transportOnce sync.Once
	rt            http.RoundTripper
}

// item is one notification to one receiver.
type item struct {
	provider types.NamespacedName
	id       string
}

type pending struct {
	event    notify.Event
	attempts int
}

// New makes a dispatcher; Start runs it.
func New(o Options) *Dispatcher {
	o.Workers = cmp.Or(o.Workers, 16)
	o.MaxAttempts = cmp.Or(o.MaxAttempts, 8)
	o.BaseDelay = cmp.Or(o.BaseDelay, time.Second)
	o.MaxDelay = cmp.Or(o.MaxDelay, time.Minute)
	o.MaxPending = cmp.Or(o.MaxPending, 10000)
	o.MaxPerReceiver = cmp.Or(o.MaxPerReceiver, 100)
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Dispatcher{
		o: o,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[types.NamespacedName](o.BaseDelay, o.MaxDelay),
			workqueue.TypedRateLimitingQueueConfig[types.NamespacedName]{Name: "notifications"}),
		lines:   map[types.NamespacedName][]*pending{},
		sent:    lru.New(4096),
		written: map[types.NamespacedName]time.Time{},
	}
}

// Notify queues e for each subscription in to that wants it. It never
// blocks: when too many notifications wait, it drops e and counts it.
func (d *Dispatcher) Notify(namespace string, to []v1alpha1.Notification, e notify.Event) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, n := range to {
		if !notify.Wants(n.Events, e.Name) {
			continue
		}
		key := types.NamespacedName{Namespace: namespace, Name: n.ProviderRef.Name}
		it := item{provider: key, id: e.ID()}
		if _, seen := d.sent.Get(it); seen {
			continue
		}
		if d.waiting >= d.o.MaxPending || len(d.lines[key]) >= d.o.MaxPerReceiver {
			d.o.Metrics.count("", resultDropped)
			continue
		}
		d.sent.Add(it, struct{}{})
		d.lines[key] = append(d.lines[key], &pending{event: e})
		d.waiting++
		if len(d.lines[key]) == 1 {
			// A line with more is queued, being sent or backing off
			// already: adding it again would cut its backoff short.
			d.queue.Add(key)
		}
	}
}

// Start sends until ctx ends.
func (d *Dispatcher) Start(ctx context.Context) error {
	var wg sync.WaitGroup
	for range d.o.Workers {
		wg.Go(func() {
			for d.next(ctx) {
			}
		})
	}
	<-ctx.Done()
	d.queue.ShutDown()
	wg.Wait()
	return nil
}

// NeedLeaderElection: only the leader decides, so only it has anything to
// send.
func (d *Dispatcher) NeedLeaderElection() bool { return true }

// Pending is how many notifications wait to be sent or retried.
func (d *Dispatcher) Pending() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.waiting
}

// next makes one attempt at the head of one receiver's line.
func (d *Dispatcher) next(ctx context.Context) bool {
	key, shutdown := d.queue.Get()
	if shutdown {
		return false
	}
	defer d.queue.Done(key)
	d.mu.Lock()
	var head *pending
	if line := d.lines[key]; len(line) > 0 {
		head = line[0]
		head.attempts++
	}
	d.mu.Unlock()
	if head == nil {
		d.queue.Forget(key)
		return true
	}
	if d.deliver(ctx, key, head.event, head.attempts) {
		d.queue.AddRateLimited(key)
		return true
	}
	d.queue.Forget(key)
	d.mu.Lock()
	d.lines[key] = d.lines[key][1:]
	d.waiting--
	more := len(d.lines[key]) > 0
	if !more {
		delete(d.lines, key)
	}
	d.mu.Unlock()
	if more {
		d.queue.Add(key)
	}
	return true
}

// deliver makes one attempt to send e to the provider at key, and reports
// whether to try again later; otherwise e is done with (delivered, or given
// up on).
func (d *Dispatcher) deliver(ctx context.Context, key types.NamespacedName, e notify.Event, attempt int) (again bool) {
	logger := log.FromContext(ctx).WithValues("notificationProvider", key, "event", e.Name, "id", e.ID())
	var np v1alpha1.NotificationProvider
	err := d.o.Client.Get(ctx, key, &np)
	switch {
	case apierrors.IsNotFound(err):
		d.o.Metrics.count("", resultNoProvider)
		logger.Info("notification dropped: no such NotificationProvider")
		return false
	case err != nil:
		return d.failedAttempt(ctx, &np, e, attempt, err)
	case np.Spec.Suspend:
		d.o.Metrics.count(string(np.Spec.Type), resultSuspended)
		return false
	}
	if err := d.send(ctx, &np, e); err != nil {
		return d.failedAttempt(ctx, &np, e, attempt, err)
	}
	d.o.Metrics.count(string(np.Spec.Type), resultDelivered)
	d.delivered(ctx, &np)
	logger.V(1).Info("notification delivered", "attempt", attempt)
	return false
}

// failedAttempt decides after a failed attempt: another later, or give up
// when the error cannot pass or the attempts are used up.
func (d *Dispatcher) failedAttempt(ctx context.Context, np *v1alpha1.NotificationProvider, e notify.Event, attempt int, err error) (again bool) {
	var perm *permanent
	if !errors.As(err, &perm) && attempt < d.o.MaxAttempts {
		d.o.Metrics.count(string(np.Spec.Type), resultRetried)
		return true
	}
	d.o.Metrics.count(string(np.Spec.Type), resultFailed)
	log.FromContext(ctx).Info("notification given up", "notificationProvider", client.ObjectKeyFromObject(np), "event", e.Name, "id", e.ID(), "attempts", attempt, "reason", err.Error())
	if np.Name != "" {
		d.failed(ctx, np, e, attempt, err)
	}
	return false
}

// delivered marks the provider Ready, writing status when that changes or
// a minute after the last such write.
func (d *Dispatcher) delivered(ctx context.Context, np *v1alpha1.NotificationProvider) {
	key := types.NamespacedName{Namespace: np.Namespace, Name: np.Name}
	now := d.o.Now()
	d.mu.Lock()
	recent := now.Sub(d.written[key]) < time.Minute
	d.mu.Unlock()
	if recent && meta.IsStatusConditionTrue(np.Status.Conditions, "Ready") && np.Status.ObservedGeneration == np.Generation {
		return
	}
	d.patchStatus(ctx, np, func(st *v1alpha1.NotificationProviderStatus) {
		st.LastDelivered = &metav1.Time{Time: now}
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: "Ready", Status: metav1.ConditionTrue, Reason: "Delivered",
			Message: "the last notification was delivered", ObservedGeneration: np.Generation})
	})
	d.mu.Lock()
	d.written[key] = now
	d.mu.Unlock()
}

// failed records on the provider the notification given up on.
func (d *Dispatcher) failed(ctx context.Context, np *v1alpha1.NotificationProvider, e notify.Event, attempts int, err error) {
	reason := "DeliveryFailed"
	var perm *permanent
	if errors.As(err, &perm) && perm.reason != "" {
		reason = perm.reason
	}
	msg := shorten(err.Error(), 1024)
	d.patchStatus(ctx, np, func(st *v1alpha1.NotificationProviderStatus) {
		st.LastFailure = &v1alpha1.NotificationFailure{Time: metav1.Time{Time: d.o.Now()}, ID: e.ID(),
			Event: shorten(e.Name+" of "+e.Object.Kind+" "+e.Subject(), 512), Message: msg, Attempts: int32(min(attempts, 100))}
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: "Ready", Status: metav1.ConditionFalse, Reason: reason,
			Message:            shorten(fmt.Sprintf("%s of %s %s not delivered after %d attempts: %s", e.Name, e.Object.Kind, e.Subject(), attempts, msg), 32768),
			ObservedGeneration: np.Generation})
	})
}

func (d *Dispatcher) patchStatus(ctx context.Context, np *v1alpha1.NotificationProvider, change func(*v1alpha1.NotificationProviderStatus)) {
	base := np.DeepCopy()
	change(&np.Status)
	np.Status.ObservedGeneration = np.Generation
	if equality.Semantic.DeepEqual(base.Status, np.Status) {
		return
	}
	if err := d.o.Client.Status().Patch(ctx, np, client.MergeFrom(base)); err != nil && !apierrors.IsNotFound(err) {
		// Status is for people; a write lost here is made again by the
		// next delivery.
		log.FromContext(ctx).Info("could not record delivery on the NotificationProvider", "notificationProvider", client.ObjectKeyFromObject(np), "reason", err.Error())
	}
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}
