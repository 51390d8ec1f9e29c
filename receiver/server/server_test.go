package server

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/receiver"
	"github.com/tugboatdev/tugboat/sandbox/cluster"
)

var (
	shared struct {
		once sync.Once
		env  *cluster.Env
		err  error
		n    atomic.Int32
	}
	hmacKey = "a key of at least thirty-two bytes, for tests"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.env != nil {
		if err := shared.env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stop api server:", err)
			code = 1
		}
	}
	os.Exit(code)
}

type events struct {
	mu    sync.Mutex
	notes []string
}

func (e *events) Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.notes = append(e.notes, reason+": "+fmt.Sprintf(note, args...))
}

type fixture struct {
	t      *testing.T
	c      client.Client
	ns     string
	url    string
	events *events
	http   *http.Client
	now    time.Time
}

func start(t *testing.T, o Options) *fixture {
	t.Helper()
	shared.once.Do(func() { shared.env, shared.err = cluster.New(cluster.Options{}) })
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	c := shared.env.Client
	ns := fmt.Sprintf("r%d", shared.n.Add(1))
	if err := c.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, c: c, ns: ns, events: &events{}, http: http.DefaultClient, now: time.Now()}
	f.url = f.endpoint(o) + "/hook/" + ns
	f.objects()
	return f
}

// endpoint starts a trigger endpoint on the shared API server until the
// test ends, and returns its base URL.
func (f *fixture) endpoint(o Options) string {
	f.t.Helper()
	c := f.c
	o.Address = "127.0.0.1:0"
	o.Client = c
	o.Secrets = func(ctx context.Context, namespace, name string) (map[string][]byte, error) {
		var s corev1.Secret
		err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &s)
		return s.Data, err
	}
	o.Recorder = f.events
	s := New(o)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Start(ctx) }()
	f.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			f.t.Errorf("endpoint: %v", err)
		}
	})
	addr, err := s.Address(f.t.Context())
	if err != nil {
		f.t.Fatal(err)
	}
	if o.CertFile != "" {
		return "https://" + addr
	}
	return "http://" + addr
}

// objects are a Rollout "web" with its target, and Receivers "ci"
// (generic) and "gh" (GitHub) allowing promote and images of one repository.
func (f *fixture) objects() {
	f.t.Helper()
	labels := map[string]string{"app": "web"}
	objs := []client.Object{
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "hmac"}, StringData: map[string]string{"token": hmacKey}},
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "web"}, Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1), Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{
				Containers: []corev1.Container{{Name: "app", Image: "ghcr.io/acme/web:1.0"}, {Name: "proxy", Image: "envoy:1"}},
			}},
		}},
		&v1alpha1.Rollout{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "web"}, Spec: v1alpha1.RolloutSpec{
			TargetRef:      v1alpha1.TargetRef{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
			Service:        v1alpha1.ServiceSpec{Port: 80},
			TrafficRouting: v1alpha1.TrafficRouting{Istio: v1alpha1.IstioTrafficRouting{VirtualService: v1alpha1.IstioVirtualService{Name: "web", Routes: []string{"primary"}}}},
			Steps:          []v1alpha1.Step{{SetWeight: ptr.To[int32](10)}},
		}},
	}
	for _, typ := range []v1alpha1.ReceiverType{v1alpha1.ReceiverGeneric, v1alpha1.ReceiverGitHub} {
		name := map[v1alpha1.ReceiverType]string{v1alpha1.ReceiverGeneric: "ci", v1alpha1.ReceiverGitHub: "gh"}[typ]
		objs = append(objs, &v1alpha1.Receiver{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name}, Spec: v1alpha1.ReceiverSpec{
			Type: typ, SecretRef: v1alpha1.LocalObjectReference{Name: "hmac"}, Rollouts: []string{"web"},
			Actions: v1alpha1.ReceiverActions{Promote: true, Rollback: true, SetImage: &v1alpha1.SetImageAction{Images: []string{"ghcr.io/acme/web:*"}}},
		}})
	}
	for _, o := range objs {
		if err := f.c.Create(f.t.Context(), o); err != nil {
			f.t.Fatalf("create %T: %v", o, err)
		}
	}
}

// post sends body to receiver with headers, and returns the status and
// answer.
func (f *fixture) post(to string, h http.Header, body string) (int, answer) {
	f.t.Helper()
	req, err := http.NewRequestWithContext(f.t.Context(), http.MethodPost, f.url+"/"+to, bytes.NewBufferString(body))
	if err != nil {
		f.t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := f.http.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	var a answer
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		f.t.Fatalf("answer: %v", err)
	}
	return resp.StatusCode, a
}

func signed(key string, at time.Time, body string) http.Header {
	h := http.Header{}
	h.Set(receiver.HeaderTimestamp, strconv.FormatInt(at.Unix(), 10))
	h.Set(receiver.HeaderSignature, receiver.Sign([]byte(key), at.Unix(), []byte(body)))
	return h
}

func (f *fixture) rollout() *v1alpha1.Rollout {
	var ro v1alpha1.Rollout
	if err := f.c.Get(f.t.Context(), client.ObjectKey{Namespace: f.ns, Name: "web"}, &ro); err != nil {
		f.t.Fatal(err)
	}
	return &ro
}

func (f *fixture) image(container string) string {
	var d appsv1.Deployment
	if err := f.c.Get(f.t.Context(), client.ObjectKey{Namespace: f.ns, Name: "web"}, &d); err != nil {
		f.t.Fatal(err)
	}
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Name == container {
			return c.Image
		}
	}
	return ""
}

func (f *fixture) receiverStatus(name string) v1alpha1.ReceiverStatus {
	var rc v1alpha1.Receiver
	if err := f.c.Get(f.t.Context(), client.ObjectKey{Namespace: f.ns, Name: name}, &rc); err != nil {
		f.t.Fatal(err)
	}
	return rc.Status
}

func TestASignedRequestPromotesAndNothingElseDoes(t *testing.T) {
	f := start(t, Options{AllowPlainHTTP: true})
	promote := `{"action":"promote","rollout":"web"}`
	before := f.rollout()

	refused := []struct {
		name string
		h    http.Header
		body string
		code int
	}{
		{"unsigned", http.Header{}, promote, http.StatusUnauthorized},
		{"signed with another key", signed("another key, just as long as the right one", f.now, promote), promote, http.StatusUnauthorized},
		{"the body changed after signing", signed(hmacKey, f.now, promote), `{"action":"promote","rollout":"web" }`, http.StatusUnauthorized},
		{"stale", signed(hmacKey, f.now.Add(-10*time.Minute), promote), promote, http.StatusBadRequest},
		{"a rollout the receiver does not name", signed(hmacKey, f.now, `{"action":"promote","rollout":"db"}`), `{"action":"promote","rollout":"db"}`, http.StatusForbidden},
		{"an action it does not allow", signed(hmacKey, f.now, `{"action":"abort","rollout":"web"}`), `{"action":"abort","rollout":"web"}`, http.StatusForbidden},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			code, a := f.post("ci", tt.h, tt.body)
			if code != tt.code || a.Accepted {
				t.Errorf("%d %+v: want %d, refused", code, a, tt.code)
			}
		})
	}
	if after := f.rollout(); after.ResourceVersion != before.ResourceVersion {
		t.Fatalf("a refused request changed the rollout: %v", after.Annotations)
	}
	if st := f.receiverStatus("ci"); len(st.Accepted) != 0 || st.LastRequest != nil {
		t.Fatalf("a refused request was recorded: %+v", st)
	}

	h := signed(hmacKey, f.now, promote)
	code, a := f.post("ci", h, promote)
	if code != http.StatusOK || !a.Accepted || a.Action != "promote" {
		t.Fatalf("signed request: %d %+v", code, a)
	}
	promoted := f.rollout()
	token := promoted.Annotations[v1alpha1.AnnotationPromote]
	if token == "" {
		t.Fatal("no promote request on the rollout")
	}
	if len(f.events.notes) != 1 || f.events.notes[0] != "Triggered: receiver ci: promote requested" {
		t.Errorf("events %v: want one naming the receiver", f.events.notes)
	}
	if st := f.receiverStatus("ci"); len(st.Accepted) != 1 || st.LastRequest == nil || st.LastRequest.Action != "promote" {
		t.Errorf("receiver status %+v", st)
	}

	t.Run("a replay re-encoded is refused", func(t *testing.T) {
		upper := http.Header{}
		for k, v := range h {
			upper[k] = v
		}
		upper.Set(receiver.HeaderSignature, "sha256="+strings.ToUpper(strings.TrimPrefix(h.Get(receiver.HeaderSignature), "sha256=")))
		if code, a := f.post("ci", upper, promote); code != http.StatusConflict || a.Accepted {
			t.Errorf("upper-case hex replay: %d %+v", code, a)
		}
	})
	t.Run("a replay is refused, after a restart too", func(t *testing.T) {
		code, a := f.post("ci", h, promote)
		if code != http.StatusConflict || a.Accepted {
			t.Errorf("replay: %d %+v", code, a)
		}
		first := f.url
		f.url = f.endpoint(Options{AllowPlainHTTP: true}) + "/hook/" + f.ns // another endpoint, as after a restart
		defer func() { f.url = first }()
		code, _ = f.post("ci", h, promote)
		if code != http.StatusConflict {
			t.Errorf("replay to a restarted endpoint: %d", code)
		}
		if got := f.rollout().Annotations[v1alpha1.AnnotationPromote]; got != token {
			t.Errorf("a replay wrote promote %q over %q", got, token)
		}
	})
}

// hostOf is where f's endpoint listens.
func hostOf(t *testing.T, f *fixture) string {
	t.Helper()
	u := f.url
	u = u[len("http://"):]
	for i := range u {
		if u[i] == '/' {
			return u[:i]
		}
	}
	return u
}

func TestSetImage(t *testing.T) {
	f := start(t, Options{AllowPlainHTTP: true})
	set := func(image string) (int, answer) {
		body := fmt.Sprintf(`{"action":"setImage","rollout":"web","container":"app","image":%q}`, image)
		return f.post("ci", signed(hmacKey, time.Now(), body), body)
	}
	if code, a := set("ghcr.io/acme/web:1.1"); code != http.StatusOK || !a.Accepted {
		t.Fatalf("%d %+v", code, a)
	}
	if got := f.image("app"); got != "ghcr.io/acme/web:1.1" {
		t.Errorf("image %s: want 1.1", got)
	}
	if got := f.image("proxy"); got != "envoy:1" {
		t.Errorf("the other container changed: %s", got)
	}
	if code, _ := set("ghcr.io/evil/web:1.1"); code != http.StatusForbidden || f.image("app") != "ghcr.io/acme/web:1.1" {
		t.Errorf("an image outside the patterns: %d, image %s", code, f.image("app"))
	}
	body := `{"action":"setImage","rollout":"web","container":"nope","image":"ghcr.io/acme/web:2"}`
	if code, a := f.post("ci", signed(hmacKey, time.Now(), body), body); code != http.StatusUnprocessableEntity {
		t.Errorf("a container the template lacks: %d %+v", code, a)
	}
}

// Two copies of one request arriving at once: one is accepted.
func TestConcurrentCopiesAreOneRequest(t *testing.T) {
	f := start(t, Options{AllowPlainHTTP: true})
	promote := `{"action":"promote","rollout":"web"}`
	h := signed(hmacKey, time.Now(), promote)
	codes := make(chan int, 4)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, f.url+"/ci", strings.NewReader(promote))
			req.Header = h.Clone()
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				codes <- 0
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		})
	}
	wg.Wait()
	close(codes)
	ok := 0
	for c := range codes {
		switch c {
		case http.StatusOK:
			ok++
		case http.StatusConflict:
		default:
			t.Errorf("a copy got %d", c)
		}
	}
	if ok != 1 {
		t.Errorf("%d copies accepted, want 1", ok)
	}
}

// A Rollout whose target names a Deployment Tugboat manages (another
// Rollout's primary) cannot have its image set through it.
func TestNoImageOnAManagedDeployment(t *testing.T) {
	f := start(t, Options{AllowPlainHTTP: true})
	labels := map[string]string{"app": "other"}
	primary := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "other-primary", Labels: map[string]string{"app.kubernetes.io/managed-by": "tugboat"}},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "ghcr.io/acme/web:1.0"}}}}}}
	if err := f.c.Create(t.Context(), primary); err != nil {
		t.Fatal(err)
	}
	var ro v1alpha1.Rollout
	if err := f.c.Get(t.Context(), client.ObjectKey{Namespace: f.ns, Name: "web"}, &ro); err != nil {
		t.Fatal(err)
	}
	ro.Spec.TargetRef.Name = "other-primary"
	if err := f.c.Update(t.Context(), &ro); err != nil {
		t.Fatal(err)
	}
	body := `{"action":"setImage","rollout":"web","container":"app","image":"ghcr.io/acme/web:2.0"}`
	if code, a := f.post("ci", signed(hmacKey, time.Now(), body), body); code != http.StatusUnprocessableEntity || a.Accepted {
		t.Errorf("%d %+v: want refused", code, a)
	}
	var d appsv1.Deployment
	if err := f.c.Get(t.Context(), client.ObjectKeyFromObject(primary), &d); err != nil || d.Spec.Template.Spec.Containers[0].Image != "ghcr.io/acme/web:1.0" {
		t.Errorf("the managed Deployment's image changed: %v", d.Spec.Template.Spec.Containers[0].Image)
	}
}

func TestGitHubDeployment(t *testing.T) {
	f := start(t, Options{AllowPlainHTTP: true})
	github := func(event, body string) http.Header {
		m := hmac.New(sha256.New, []byte(hmacKey))
		m.Write([]byte(body))
		h := http.Header{}
		h.Set("X-GitHub-Event", event)
		h.Set("X-GitHub-Delivery", "72d3162e")
		h.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(m.Sum(nil)))
		return h
	}
	if code, a := f.post("gh", github("ping", `{"zen":"Keep it logically awesome."}`), `{"zen":"Keep it logically awesome."}`); code != http.StatusOK || a.Message != "pong" {
		t.Errorf("ping: %d %+v", code, a)
	}
	if st := f.receiverStatus("gh"); len(st.Accepted) != 0 || st.LastRequest != nil {
		t.Errorf("a ping was recorded: %+v", st)
	}
	body := fmt.Sprintf(`{"action":"created","deployment":{"id":1,"task":"deploy","created_at":%q,"payload":{"action":"setImage","rollout":"web","container":"app","image":"ghcr.io/acme/web:1.2"}}}`,
		time.Now().UTC().Format(time.RFC3339))
	if code, a := f.post("gh", github("deployment", body), body); code != http.StatusOK || !a.Accepted {
		t.Fatalf("deployment: %d %+v", code, a)
	}
	if got := f.image("app"); got != "ghcr.io/acme/web:1.2" {
		t.Errorf("image %s", got)
	}
	if len(f.events.notes) != 1 || f.events.notes[0] != "Triggered: receiver gh: deployment web: container app set to ghcr.io/acme/web:1.2 (delivery 72d3162e)" {
		t.Errorf("events %v", f.events.notes)
	}
}

func TestOnlyTheHookIsServed(t *testing.T) {
	f := start(t, Options{AllowPlainHTTP: true})
	for _, tc := range []struct {
		method, path string
		code         int
	}{
		{http.MethodGet, "/hook/" + f.ns + "/ci", http.StatusMethodNotAllowed},
		{http.MethodPost, "/hook/" + f.ns + "/missing", http.StatusUnauthorized}, // as a wrong key: no telling which receivers exist
		{http.MethodGet, "/metrics", http.StatusNotFound},
		{http.MethodPost, "/hook/" + f.ns, http.StatusNotFound},
	} {
		req, _ := http.NewRequestWithContext(t.Context(), tc.method, "http://"+hostOf(t, f)+tc.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.code {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, resp.StatusCode, tc.code)
		}
	}
}

func TestTLS(t *testing.T) {
	dir := t.TempDir()
	pool := selfSigned(t, dir)
	f := start(t, Options{CertFile: filepath.Join(dir, "tls.crt"), KeyFile: filepath.Join(dir, "tls.key")})
	f.http = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	promote := `{"action":"promote","rollout":"web"}`
	if code, a := f.post("ci", signed(hmacKey, time.Now(), promote), promote); code != http.StatusOK || !a.Accepted {
		t.Errorf("over TLS: %d %+v", code, a)
	}
	s := New(Options{Address: "127.0.0.1:0"})
	if err := s.Start(t.Context()); err == nil {
		t.Error("an endpoint without TLS started without being told to")
	}
}

func selfSigned(t *testing.T, dir string) *x509.CertPool {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tugboat"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}
