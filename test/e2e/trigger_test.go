package e2e

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/receiver"
	"github.com/tugboatdev/tugboat/sandbox/demo"
)

// TestTriggerEndpoint: given podinfo and examples/ci/trigger's Receiver in
// a namespace of their own, when CI outside the cluster sends a signed
// request to set a new image, the rollout starts and waits at its pause;
// unsigned, wrongly signed and replayed requests are refused and change
// nothing; a signed promote promotes, and each accepted request is an
// event naming the Receiver.
func TestTriggerEndpoint(t *testing.T) {
	ctx := t.Context()
	ns := "e2e-trigger"
	key := "the e2e receiver's key, thirty-two bytes or more"
	s := podinfoIn(t, ns, nil, nil, func(spec *v1alpha1.RolloutSpec) {
		spec.Analysis = nil
		spec.Steps = []v1alpha1.Step{{SetWeight: ptr.To[int32](20)}, {Pause: &v1alpha1.Pause{}}}
	})
	if err := box.Client().Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "tugboat-receiver-key"}, StringData: map[string]string{"token": key}}); err != nil {
		t.Fatal(err)
	}
	if err := demo.Apply(ctx, box.Client(), "ci/trigger", ns); err != nil {
		t.Fatal(err)
	}
	endpoint := box.TriggerURL + "/hook/" + ns + "/ci"
	send := func(h http.Header, body string) int {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewBufferString(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header = h
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	sign := func(k, body string) http.Header {
		now := time.Now().Unix()
		h := http.Header{}
		h.Set(receiver.HeaderTimestamp, strconv.FormatInt(now, 10))
		h.Set(receiver.HeaderSignature, receiver.Sign([]byte(k), now, []byte(body)))
		return h
	}

	setImage := `{"action":"setImage","rollout":"podinfo","container":"podinfo","image":"ghcr.io/stefanprodan/podinfo:6.7.1"}`
	signed := sign(key, setImage)
	if code := send(signed, setImage); code != http.StatusOK {
		t.Fatalf("signed setImage: %d", code)
	}
	paused := s.until("the canary waits at the pause", func(ro *v1alpha1.Rollout) bool {
		return ro.Status.CanaryRevision != "" && ro.Status.Phase == v1alpha1.PhasePaused
	})

	promote := `{"action":"promote","rollout":"podinfo"}`
	for name, tc := range map[string]struct {
		h    http.Header
		body string
		code int
	}{
		"unsigned":         {http.Header{}, promote, http.StatusUnauthorized},
		"wrongly signed":   {sign("another key, no less than thirty-two bytes", promote), promote, http.StatusUnauthorized},
		"a replay":         {signed, setImage, http.StatusConflict},
		"another rollout":  {sign(key, `{"action":"promote","rollout":"other"}`), `{"action":"promote","rollout":"other"}`, http.StatusForbidden},
		"another registry": {sign(key, `{"action":"setImage","rollout":"podinfo","container":"podinfo","image":"evil.example.com/podinfo:1"}`), `{"action":"setImage","rollout":"podinfo","container":"podinfo","image":"evil.example.com/podinfo:1"}`, http.StatusForbidden},
	} {
		if code := send(tc.h, tc.body); code != tc.code {
			t.Errorf("%s: %d, want %d", name, code, tc.code)
		}
	}
	var ro v1alpha1.Rollout
	if err := box.Client().Get(ctx, s.key, &ro); err != nil {
		t.Fatal(err)
	}
	if ro.Annotations[v1alpha1.AnnotationPromote] != "" || ro.Status.CanaryRevision != paused.Status.CanaryRevision || ro.Status.Phase != v1alpha1.PhasePaused {
		t.Fatalf("a refused request changed the rollout: annotations %v, status %+v", ro.Annotations, ro.Status)
	}
	var d appsv1.Deployment
	if err := box.Client().Get(ctx, s.key, &d); err != nil || d.Spec.Template.Spec.Containers[0].Image != "ghcr.io/stefanprodan/podinfo:6.7.1" {
		t.Fatalf("target image %s (%v): want the one the signed request set", d.Spec.Template.Spec.Containers[0].Image, err)
	}

	if code := send(sign(key, promote), promote); code != http.StatusOK {
		t.Fatalf("signed promote: %d", code)
	}
	s.until("promoted", func(ro *v1alpha1.Rollout) bool {
		return ro.Status.StableRevision == paused.Status.CanaryRevision && ro.Status.Phase == v1alpha1.PhaseHealthy
	})
	var evs eventsv1.EventList
	if err := box.Client().List(ctx, &evs, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	triggered := 0
	for _, e := range evs.Items {
		if e.Reason == "Triggered" && e.Regarding.Name == "podinfo" && e.Related != nil && e.Related.Kind == "Receiver" && e.Related.Name == "ci" {
			triggered++
		}
	}
	if triggered != 2 {
		t.Errorf("%d Triggered events naming the receiver: want 2 (setImage, promote)", triggered)
	}
}

// until polls the scenario's Rollout until cond holds.
func (s *scenario) until(what string, cond func(*v1alpha1.Rollout) bool) *v1alpha1.Rollout {
	s.t.Helper()
	var ro v1alpha1.Rollout
	err := wait.PollUntilContextTimeout(s.t.Context(), 200*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		if err := box.Client().Get(ctx, s.key, &ro); err != nil {
			return false, nil
		}
		return cond(&ro), nil
	})
	if err != nil {
		s.t.Fatalf("%s: %v; status %+v\n%s", what, err, ro.Status, box.ControllerLog(30))
	}
	return &ro
}
