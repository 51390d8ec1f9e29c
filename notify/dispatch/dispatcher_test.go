package dispatch

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/egress"
	"github.com/tugboatdev/tugboat/notify"
	"github.com/tugboatdev/tugboat/sandbox/cluster"
)

// receiver records what arrives; answer, when set, decides the status code
// of each request in turn.
type recorder struct {
	srv    *httptest.Server
	mu     sync.Mutex
	got    []*http.Request
	bodies [][]byte
	answer func(n int) int
	hold   chan struct{} // when set, each request waits for it to close
}

func newRecorder(t *testing.T) *recorder {
	r := &recorder{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got = append(r.got, req.Clone(context.Background()))
		r.bodies = append(r.bodies, body)
		n, answer, hold := len(r.got), r.answer, r.hold
		r.mu.Unlock()
		if hold != nil {
			select {
			case <-hold:
			case <-req.Context().Done():
			}
		}
		code := http.StatusOK
		if answer != nil {
			code = answer(n)
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

func (r *recorder) request(i int) (*http.Request, []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got[i], r.bodies[i]
}

type fixture struct {
	t   *testing.T
	c   client.Client
	ns  string
	d   *Dispatcher
	reg *prometheus.Registry
}

var env struct {
	once sync.Once
	env  *cluster.Env
	err  error
	n    atomic.Int32
}

func TestMain(m *testing.M) {
	code := m.Run()
	if env.env != nil {
		if err := env.env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stop api server:", err)
			code = 1
		}
	}
	os.Exit(code)
}

func newFixture(t *testing.T, o Options) *fixture {
	t.Helper()
	env.once.Do(func() { env.env, env.err = cluster.New(cluster.Options{}) })
	if env.err != nil {
		t.Fatalf("api server: %v", env.err)
	}
	c := env.env.Client
	ns := fmt.Sprintf("n%d", env.n.Add(1))
	if err := c.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	o.Client = c
	o.Secrets = func(ctx context.Context, namespace, name string) (map[string][]byte, error) {
		var s corev1.Secret
		if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &s); err != nil {
			return nil, err
		}
		return s.Data, nil
	}
	o.Guard = egress.Guard{AllowLoopback: true, AllowedHosts: o.Guard.AllowedHosts}
	if o.Guard.AllowedHosts != nil {
		o.Guard.AllowLoopback = false
	}
	o.Metrics = NewMetrics(reg)
	o.BaseDelay = cmpOr(o.BaseDelay, 10*time.Millisecond)
	o.MaxDelay = cmpOr(o.MaxDelay, 50*time.Millisecond)
	d := New(o)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = d.Start(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return &fixture{t: t, c: c, ns: ns, d: d, reg: reg}
}

func cmpOr(a, b time.Duration) time.Duration {
	if a != 0 {
		return a
	}
	return b
}

func (f *fixture) provider(name string, spec v1alpha1.NotificationProviderSpec) {
	f.t.Helper()
	np := &v1alpha1.NotificationProvider{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name}, Spec: spec}
	if err := f.c.Create(f.t.Context(), np); err != nil {
		f.t.Fatalf("create provider %s: %v", name, err)
	}
}

func (f *fixture) secret(name string, data map[string]string) {
	f.t.Helper()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name}, StringData: data}
	if err := f.c.Create(f.t.Context(), s); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) notify(e notify.Event, to ...string) {
	var subs []v1alpha1.Notification
	for _, p := range to {
		subs = append(subs, v1alpha1.Notification{ProviderRef: v1alpha1.LocalObjectReference{Name: p}})
	}
	f.d.Notify(f.ns, subs, e)
}

// eventually polls cond until it holds, or fails the test at the deadline.
func (f *fixture) eventually(what string, cond func() bool) {
	f.t.Helper()
	err := wait.PollUntilContextTimeout(f.t.Context(), 5*time.Millisecond, 20*time.Second, true, func(context.Context) (bool, error) {
		return cond(), nil
	})
	if err != nil {
		f.t.Fatalf("waiting for %s: %v", what, err)
	}
}

func (f *fixture) status(name string) v1alpha1.NotificationProviderStatus {
	var np v1alpha1.NotificationProvider
	if err := f.c.Get(f.t.Context(), client.ObjectKey{Namespace: f.ns, Name: name}, &np); err != nil {
		f.t.Fatal(err)
	}
	return np.Status
}

func (f *fixture) results(typ, result string) int {
	return int(testutil.ToFloat64(f.d.o.Metrics.notifications.WithLabelValues(typ, result)))
}

func event(name string) notify.Event {
	return notify.Event{
		Name:       name,
		Object:     notify.Object{Kind: "Rollout", Namespace: "prod", Name: "podinfo", UID: "u-1"},
		Occurrence: "rev-1/1",
		Time:       time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC),
		Revision:   "5f8c",
		Step:       ptr.To[int32](2),
		Steps:      4,
		Weight:     ptr.To[int32](0),
		Reason:     "AnalysisFailed",
		Message:    "step 2: analysis Failed: success-rate <0.99>",
		Findings:   []notify.Finding{{Metric: "success-rate", Phase: "Failed", Value: "[0.91]", Condition: "success: result[0] >= 0.99"}},
		Next:       []string{"kubectl tug retry podinfo -n prod"},
	}
}

func TestEachTypeArrivesInItsShape(t *testing.T) {
	f := newFixture(t, Options{})
	slack, teams, hook, ce := newRecorder(t), newRecorder(t), newRecorder(t), newRecorder(t)
	f.secret("slack", map[string]string{"address": slack.srv.URL + "/services/T0/B0/secret"})
	f.secret("hook", map[string]string{"address": hook.srv.URL, "token": "s3cret"})
	f.secret("ce", map[string]string{"address": ce.srv.URL, "token": "s3cret"})
	f.provider("slack", v1alpha1.NotificationProviderSpec{Type: v1alpha1.NotifySlack, SecretRef: &v1alpha1.LocalObjectReference{Name: "slack"}, Channel: "#deploys"})
	f.provider("teams", v1alpha1.NotificationProviderSpec{Type: v1alpha1.NotifyMSTeams, Address: teams.srv.URL})
	f.provider("hook", v1alpha1.NotificationProviderSpec{Type: v1alpha1.NotifyWebhook, SecretRef: &v1alpha1.LocalObjectReference{Name: "hook"}})
	f.provider("ce", v1alpha1.NotificationProviderSpec{Type: v1alpha1.NotifyCloudEvents, Address: "https://overridden.example.com/", SecretRef: &v1alpha1.LocalObjectReference{Name: "ce"}})
	e := event(notify.Aborted)
	f.notify(e, "slack", "teams", "hook", "ce")
	f.eventually("every receiver answered", func() bool {
		return slack.count() == 1 && teams.count() == 1 && hook.count() == 1 && ce.count() == 1 && f.results("cloudevents", resultDelivered) == 1
	})

	t.Run("slack", func(t *testing.T) {
		req, body := slack.request(0)
		if req.URL.Path != "/services/T0/B0/secret" {
			t.Errorf("path %s: want the Secret's address", req.URL.Path)
		}
		var msg struct {
			Channel string            `json:"channel"`
			Text    string            `json:"text"`
			Blocks  []json.RawMessage `json:"blocks"`
		}
		if err := json.Unmarshal(body, &msg); err != nil {
			t.Fatalf("slack body %s: %v", body, err)
		}
		if msg.Channel != "#deploys" || msg.Text != e.Headline() || len(msg.Blocks) != 4 {
			t.Errorf("slack message %s: want channel, headline and 4 blocks (what, facts, findings, next)", body)
		}
		text := strings.NewReplacer(`\u0026`, "&", `\u003c`, "<", `\u003e`, ">").Replace(string(body))
		for _, want := range []string{"AnalysisFailed", "success-rate: Failed, value [0.91]", "kubectl tug retry podinfo -n prod", "&lt;0.99&gt;"} {
			if !strings.Contains(text, want) {
				t.Errorf("slack message lacks %q: %s", want, body)
			}
		}
	})
	t.Run("msteams", func(t *testing.T) {
		_, body := teams.request(0)
		var msg struct {
			Type        string `json:"type"`
			Attachments []struct {
				ContentType string `json:"contentType"`
				Content     struct {
					Type string `json:"type"`
					Body []struct {
						Type string `json:"type"`
					} `json:"body"`
				} `json:"content"`
			} `json:"attachments"`
		}
		if err := json.Unmarshal(body, &msg); err != nil {
			t.Fatal(err)
		}
		if msg.Type != "message" || len(msg.Attachments) != 1 || msg.Attachments[0].ContentType != "application/vnd.microsoft.card.adaptive" ||
			msg.Attachments[0].Content.Type != "AdaptiveCard" || len(msg.Attachments[0].Content.Body) != 4 {
			t.Errorf("teams message %s: want one Adaptive Card with headline, message, facts and next", body)
		}
	})
	t.Run("webhook", func(t *testing.T) {
		req, body := hook.request(0)
		if got := req.Header.Get("Authorization"); got != "Bearer s3cret" {
			t.Errorf("Authorization %q: want the Secret's token", got)
		}
		if req.Header.Get("X-Tugboat-Id") != e.ID() || req.Header.Get("X-Tugboat-Event") != "dev.tugboat.rollout.aborted.v1" {
			t.Errorf("headers %v: want the id and type", req.Header)
		}
		var got notify.Event
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatal(err)
		}
		if got.Name != e.Name || got.Reason != e.Reason || got.Object != e.Object || len(got.Findings) != 1 {
			t.Errorf("webhook body %s: want the event", body)
		}
	})
	t.Run("cloudevents", func(t *testing.T) {
		req, body := ce.request(0)
		req.Body = io.NopCloser(strings.NewReader(string(body)))
		got, err := cehttp.NewEventFromHTTPRequest(req)
		if err != nil {
			t.Fatalf("not a CloudEvent: %v", err)
		}
		if err := got.Validate(); err != nil {
			t.Errorf("invalid CloudEvent: %v", err)
		}
		if got.SpecVersion() != "1.0" || got.ID() != e.ID() || got.Type() != "dev.tugboat.rollout.aborted.v1" ||
			got.Source() != "/apis/tugboat.dev/v1alpha1/namespaces/prod/rollouts/podinfo" || got.Subject() != "prod/podinfo" ||
			!got.Time().Equal(e.Time) || got.DataContentType() != "application/json" {
			t.Errorf("CloudEvent attributes: %s", got.String())
		}
		if req.Header.Get("Authorization") != "Bearer s3cret" {
			t.Errorf("Authorization %q: want the token", req.Header.Get("Authorization"))
		}
	})
	t.Run("status", func(t *testing.T) {
		f.eventually("providers Ready", func() bool {
			for _, p := range []string{"slack", "teams", "hook", "ce"} {
				if st := f.status(p); !meta.IsStatusConditionTrue(st.Conditions, "Ready") || st.LastDelivered == nil {
					return false
				}
			}
			return true
		})
	})
}

func TestTheSameEventIsSentOnce(t *testing.T) {
	f := newFixture(t, Options{})
	r := newRecorder(t)
	f.provider("hook", v1alpha1.NotificationProviderSpec{Type: v1alpha1.NotifyWebhook, Address: r.srv.URL})
	f.notify(event(notify.Promoted), "hook")
	f.eventually("the delivery", func() bool { return f.results("webhook", resultDelivered) == 1 })
	f.notify(event(notify.Promoted), "hook") // handed over again: same id
	other := event(notify.Promoted)
	other.Occurrence = "rev-2/2"
	f.notify(other, "hook")
	f.eventually("the second occurrence", func() bool { return f.results("webhook", resultDelivered) == 2 })
	if n := r.count(); n != 2 {
		t.Errorf("%d requests: want 2 (a repeat of the same id is not sent)", n)
	}
}

func TestFailuresAreRetriedThenRecorded(t *testing.T) {
	t.Run("a failing receiver is retried until it answers", func(t *testing.T) {
		f := newFixture(t, Options{})
		r := newRecorder(t)
		r.answer = func(n int) int {
			if n <= 2 {
				return http.StatusServiceUnavailable
			}
			return http.StatusOK
		}
		f.provider("hook", v1alpha1.NotificationProviderSpec{Type: v1alpha1.NotifyWebhook, Address: r.srv.URL})
		f.notify(event(notify.Promoted), "hook")
		f.eventually("the delivery", func() bool { return f.results("webhook", resultDelivered) == 1 })
		if got := f.results("webhook", resultRetried); got != 2 {
			t.Errorf("retried %d times: want 2", got)
		}
	})
	t.Run("a receiver that is down is given up on, and shows it", func(t *testing.T) {
		f := newFixture(t, Options{MaxAttempts: 3})
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		down := "http://" + l.Addr().String() + "/hooks/very-secret-path"
		l.Close()
		f.secret("down", map[string]string{"address": down})
		f.provider("down", v1alpha1.NotificationProviderSpec{Type: v1alpha1.NotifySlack, SecretRef: &v1alpha1.LocalObjectReference{Name: "down"}})
		e := event(notify.Aborted)
		f.notify(e, "down")
		f.eventually("the failure on status", func() bool {
			c := meta.FindStatusCondition(f.status("down").Conditions, "Ready")
			return c != nil && c.Status == metav1.ConditionFalse
		})
		st := f.status("down")
		c := meta.FindStatusCondition(st.Conditions, "Ready")
		if c.Reason != "DeliveryFailed" || st.LastFailure == nil || st.LastFailure.ID != e.ID() || st.LastFailure.Attempts != 3 {
			t.Errorf("status %+v: want DeliveryFailed after 3 attempts, naming the notification", st)
		}
		if strings.Contains(c.Message+st.LastFailure.Message, "very-secret-path") {
			t.Errorf("status quotes the Secret's address: %s", c.Message)
		}
		if f.results("slack", resultFailed) != 1 || f.results("slack", resultRetried) != 2 {
			t.Errorf("metrics: failed %d, retried %d; want 1 and 2", f.results("slack", resultFailed), f.results("slack", resultRetried))
		}
	})
	t.Run("a rejected request is not retried", func(t *testing.T) {
		f := newFixture(t, Options{})
		r := newRecorder(t)
		r.answer = func(int) int { return http.StatusBadRequest }
		f.provider("hook", v1alpha1.NotificationProviderSpec{Type: v1alpha1.NotifyCloudEvents, Address: r.srv.URL})
		f.notify(event(notify.Promoted), "hook")
		f.eventually("the failure", func() bool { return f.results("cloudevents", resultFailed) == 1 })
		if r.count() != 1 {
			t.Errorf("%d attempts: want 1", r.count())
		}
		f.eventually("Rejected on status", func() bool {
			c := meta.FindStatusCondition(f.status("hook").Conditions, "Ready")
			return c != nil && c.Reason == "Rejected"
		})
	})
	t.Run("an address outside the allow-list is refused, unsent", func(t *testing.T) {
		f := newFixture(t, Options{Guard: egress.Guard{AllowedHosts: []string{"hooks.example.com"}}})
		r := newRecorder(t)
		f.provider("hook", v1alpha1.NotificationProviderSpec{Type: v1alpha1.NotifyWebhook, Address: r.srv.URL})
		f.notify(event(notify.Promoted), "hook")
		f.eventually("AddressRefused on status", func() bool {
			c := meta.FindStatusCondition(f.status("hook").Conditions, "Ready")
			return c != nil && c.Reason == "AddressRefused" && strings.Contains(c.Message, "--notification-allowed-hosts")
		})
		if r.count() != 0 {
			t.Errorf("%d requests reached a host outside the allow-list", r.count())
		}
	})
	t.Run("a Secret's token goes only to the Secret's address", func(t *testing.T) {
		f := newFixture(t, Options{})
		r := newRecorder(t)
		f.secret("sa-token", map[string]string{"token": "a service account's token"})
		f.provider("hook", v1alpha1.NotificationProviderSpec{Type: v1alpha1.NotifyWebhook, Address: r.srv.URL, SecretRef: &v1alpha1.LocalObjectReference{Name: "sa-token"}})
		f.notify(event(notify.Promoted), "hook")
		f.eventually("InvalidSpec on status", func() bool {
			c := meta.FindStatusCondition(f.status("hook").Conditions, "Ready")
			return c != nil && c.Reason == "InvalidSpec"
		})
		if r.count() != 0 {
			t.Errorf("the token went to an address the provider chose")
		}
	})
	t.Run("a connection error does not say where it went", func(t *testing.T) {
		f := newFixture(t, Options{MaxAttempts: 1})
		f.provider("nxdomain", v1alpha1.NotificationProviderSpec{Type: v1alpha1.NotifyWebhook, Address: "http://no-such-host.invalid:8080/x"})
		f.notify(event(notify.Promoted), "nxdomain")
		f.eventually("the failure on status", func() bool {
			st := f.status("nxdomain")
			return st.LastFailure != nil
		})
		if msg := f.status("nxdomain").LastFailure.Message; strings.Contains(msg, "no-such-host") || strings.Contains(msg, "8080") {
			t.Errorf("status quotes the address: %s", msg)
		}
	})
	t.Run("a receiver backing off is not hurried by new notifications", func(t *testing.T) {
		f := newFixture(t, Options{BaseDelay: time.Hour, MaxDelay: time.Hour})
		r := newRecorder(t)
		r.answer = func(int) int { return http.StatusServiceUnavailable }
		f.provider("hook", v1alpha1.NotificationProviderSpec{Type: v1alpha1.NotifyWebhook, Address: r.srv.URL})
		f.notify(event(notify.Started), "hook")
		f.eventually("the first attempt", func() bool { return f.results("webhook", resultRetried) == 1 })
		for i := range 5 {
			e := event(notify.StepAdvanced)
			e.Occurrence = fmt.Sprint(i)
			f.notify(e, "hook")
		}
		if f.d.Pending() != 6 {
			t.Fatalf("%d pending, want 6", f.d.Pending())
		}
		// The next attempt is an hour away: Notify must not queue the
		// receiver again, or a worker would try at once.
		err := wait.PollUntilContextTimeout(t.Context(), 10*time.Millisecond, time.Second, true, func(context.Context) (bool, error) {
			return r.count() > 1, nil
		})
		if err == nil {
			t.Errorf("%d attempts within a second: new notifications cut the backoff short", r.count())
		}
	})
	t.Run("a Secret that cannot be read says so", func(t *testing.T) {
		f := newFixture(t, Options{})
		f.provider("hook", v1alpha1.NotificationProviderSpec{Type: v1alpha1.NotifyWebhook, SecretRef: &v1alpha1.LocalObjectReference{Name: "missing"}})
		f.notify(event(notify.Promoted), "hook")
		f.eventually("SecretNotReadable on status", func() bool {
			c := meta.FindStatusCondition(f.status("hook").Conditions, "Ready")
			return c != nil && c.Reason == "SecretNotReadable"
		})
	})
}

func TestASlowReceiverHoldsNothingElse(t *testing.T) {
	f := newFixture(t, Options{Workers: 2})
	slow, fast := newRecorder(t), newRecorder(t)
	slow.hold = make(chan struct{})
	defer close(slow.hold)
	f.provider("slow", v1alpha1.NotificationProviderSpec{Type: v1alpha1.NotifyWebhook, Address: slow.srv.URL, TimeoutSeconds: 60})
	f.provider("fast", v1alpha1.NotificationProviderSpec{Type: v1alpha1.NotifyWebhook, Address: fast.srv.URL})
	returned := make(chan struct{})
	go func() {
		f.notify(event(notify.Promoted), "slow")
		f.notify(event(notify.Aborted), "slow")
		close(returned)
	}()
	select {
	case <-returned:
	case <-time.After(5 * time.Second):
		t.Fatal("Notify waited on the receiver")
	}
	f.eventually("the slow receiver holding a request", func() bool { return slow.count() >= 1 })
	f.notify(event(notify.Promoted), "fast")
	f.eventually("the fast receiver's delivery while the slow one holds", func() bool { return f.results("webhook", resultDelivered) == 1 })
	if slow.count() != 1 || fast.count() != 1 {
		t.Errorf("slow asked %d times, fast %d: want once each", slow.count(), fast.count())
	}
}

func TestNotifyDropsBeyondMaxPending(t *testing.T) {
	f := newFixture(t, Options{MaxPending: 2, Workers: 1})
	slow := newRecorder(t)
	slow.hold = make(chan struct{})
	defer close(slow.hold)
	f.provider("slow", v1alpha1.NotificationProviderSpec{Type: v1alpha1.NotifyWebhook, Address: slow.srv.URL, TimeoutSeconds: 60})
	for i := range 5 {
		e := event(notify.StepAdvanced)
		e.Occurrence = fmt.Sprint(i)
		f.notify(e, "slow")
	}
	if got := f.results("", resultDropped); got != 3 {
		t.Errorf("dropped %d: want 3 beyond the 2 pending", got)
	}
}

func TestSubscriptionsFilterEvents(t *testing.T) {
	f := newFixture(t, Options{})
	r := newRecorder(t)
	f.provider("hook", v1alpha1.NotificationProviderSpec{Type: v1alpha1.NotifyWebhook, Address: r.srv.URL})
	subs := []v1alpha1.Notification{{ProviderRef: v1alpha1.LocalObjectReference{Name: "hook"}, Events: []string{notify.Aborted}}}
	f.d.Notify(f.ns, subs, event(notify.Promoted))
	f.d.Notify(f.ns, subs, event(notify.Aborted))
	f.eventually("the aborted one, and nothing waiting", func() bool { return f.results("webhook", resultDelivered) == 1 && f.d.Pending() == 0 })
	if r.count() != 1 {
		t.Errorf("%d requests: want the one subscribed to", r.count())
	}
	_, body := r.request(0)
	if !strings.Contains(string(body), `"event":"aborted"`) {
		t.Errorf("sent %s: want the aborted event", body)
	}
}

func TestAReceiverGetsItsNotificationsInOrder(t *testing.T) {
	f := newFixture(t, Options{Workers: 4})
	r := newRecorder(t)
	r.answer = func(n int) int {
		if n == 1 {
			return http.StatusBadGateway // the first is tried again, and still goes first
		}
		return http.StatusOK
	}
	f.provider("hook", v1alpha1.NotificationProviderSpec{Type: v1alpha1.NotifyWebhook, Address: r.srv.URL})
	names := []string{notify.Started, notify.StepAdvanced, notify.Paused, notify.StepAdvanced, notify.Promoted}
	for i, n := range names {
		e := event(n)
		e.Occurrence = fmt.Sprint(i)
		f.notify(e, "hook")
	}
	f.eventually("every delivery", func() bool { return f.results("webhook", resultDelivered) == len(names) })
	var got []string
	for i := 1; i < r.count(); i++ {
		_, body := r.request(i)
		var e notify.Event
		if err := json.Unmarshal(body, &e); err != nil {
			t.Fatal(err)
		}
		got = append(got, e.Name)
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Errorf("delivered in the order %v: want %v", got, names)
	}
}
