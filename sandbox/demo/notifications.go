package demo

import (
	"context"
	"fmt"
	"io"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tugboatdev/tugboat/sandbox/sink"
)

// ConnectNotifications applies examples/notifications in namespace, with
// its Secrets pointing at the sandbox's sink (at sinkURL): podinfo's
// notifications then arrive there, as a Slack message and a CloudEvent.
func ConnectNotifications(ctx context.Context, c client.Client, namespace, sinkURL string) error {
	for name, data := range map[string]map[string]string{
		"team-slack-webhook":     {"address": sinkURL + "/notifications/slack"},
		"deploy-events-endpoint": {"address": sinkURL + "/notifications/cloudevents", "token": "sandbox"},
	} {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}, StringData: data}
		if err := c.Create(ctx, s); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create secret %s/%s: %w", namespace, name, err)
		}
	}
	return Apply(ctx, c, "notifications", namespace)
}

// PrintNotifications shows what the sink received.
func PrintNotifications(out io.Writer, ns []sink.Notification) {
	fmt.Fprintf(out, "\n▶ notifications the sandbox's sink received (examples/notifications): %d\n", len(ns))
	fmt.Fprint(out, sink.Summary(ns))
}
