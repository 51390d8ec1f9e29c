package e2e

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/sandbox/demo"
	"github.com/tugboatdev/tugboat/sandbox/sink"
)

// withNotifications connects examples/notifications to the sandbox's sink
// (a Slack and a CloudEvents receiver), and subscribes the Rollout to two
// receivers more: one that never answers and one that is down. Neither may
// hold a step.
func (s *scenario) withNotifications() *scenario {
	s.t.Helper()
	ctx := s.t.Context()
	if err := demo.ConnectNotifications(ctx, box.Client(), box.Namespace, box.Sink.URL); err != nil {
		s.t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.t.Fatal(err)
	}
	down := "http://" + l.Addr().String() + "/hook"
	l.Close()
	for name, spec := range map[string]v1alpha1.NotificationProviderSpec{
		"slow": {Type: v1alpha1.NotifyWebhook, Address: box.Sink.URL + "/notifications/slow", TimeoutSeconds: 60},
		"down": {Type: v1alpha1.NotifyWebhook, Address: down},
	} {
		np := &v1alpha1.NotificationProvider{ObjectMeta: metav1.ObjectMeta{Namespace: box.Namespace, Name: name}, Spec: spec}
		if err := box.Client().Create(ctx, np); err != nil {
			s.t.Fatal(err)
		}
	}
	err = retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		var ro v1alpha1.Rollout
		if err := box.Client().Get(ctx, s.key, &ro); err != nil {
			return err
		}
		ro.Spec.Notifications = append(ro.Spec.Notifications,
			v1alpha1.Notification{ProviderRef: v1alpha1.LocalObjectReference{Name: "slow"}},
			v1alpha1.Notification{ProviderRef: v1alpha1.LocalObjectReference{Name: "down"}})
		return box.Client().Update(ctx, &ro)
	})
	if err != nil {
		s.t.Fatal(err)
	}
	return s
}

// notified waits until the sink has a Slack message and a CloudEvent for
// event of the scenario's Rollout, and checks the CloudEvent's attributes
// against the 1.0 spec and Tugboat's naming.
func (s *scenario) notified(event string) error {
	var slack, ce *sink.Notification
	err := wait.PollUntilContextTimeout(s.t.Context(), 200*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		slack, ce = nil, nil
		for _, n := range box.Sink.Notifications() {
			switch {
			case n.Receiver == "slack" && strings.HasPrefix(n.Text, "Rollout "+s.key.String()+":") && strings.HasSuffix(n.Text, " "+event):
				slack = &n
			case n.Receiver == "cloudevents" && n.Event == event && n.Subject == s.key.String():
				ce = &n
			}
		}
		return slack != nil && ce != nil, nil
	})
	if err != nil {
		return fmt.Errorf("no Slack message and CloudEvent for %s (slack %v, cloudevent %v); the sink has:\n%s", event, slack, ce, sink.Summary(box.Sink.Notifications()))
	}
	wantSource := fmt.Sprintf("/apis/tugboat.dev/v1alpha1/namespaces/%s/rollouts/%s", s.key.Namespace, s.key.Name)
	if ce.SpecVersion != "1.0" || ce.Type != "dev.tugboat.rollout."+strings.ToLower(event)+".v1" || ce.Source != wantSource ||
		len(ce.ID) != 32 || ce.Time.IsZero() || ce.Authorization != "Bearer sandbox" {
		return fmt.Errorf("CloudEvent for %s: %+v", event, *ce)
	}
	return nil
}

// slowAndDownHeldNothing checks that the receiver that never answers was
// asked (and is still unanswered) and that the one that is down shows its
// failure on its provider, while the rollout went its way.
func (s *scenario) slowAndDownHeldNothing() error {
	if box.Sink.SlowAsked() == 0 {
		return fmt.Errorf("the slow receiver was never asked")
	}
	var np v1alpha1.NotificationProvider
	err := wait.PollUntilContextTimeout(s.t.Context(), time.Second, 4*time.Minute, true, func(ctx context.Context) (bool, error) {
		if err := box.Client().Get(ctx, client.ObjectKey{Namespace: box.Namespace, Name: "down"}, &np); err != nil {
			return false, nil
		}
		c := meta.FindStatusCondition(np.Status.Conditions, "Ready")
		return c != nil && c.Status == metav1.ConditionFalse && c.Reason == "DeliveryFailed" && np.Status.LastFailure != nil, nil
	})
	if err != nil {
		return fmt.Errorf("the receiver that is down does not show its failure: %+v", np.Status)
	}
	return nil
}
