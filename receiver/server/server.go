// Package server is the trigger endpoint: an HTTP server of its own (off
// unless the controller is given an address, TLS unless told otherwise)
// that takes signed requests for a Receiver at POST /hook/<namespace>/<name>
// and carries out what package receiver allows. Nothing else is served.
package server

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/receiver"
)

// +kubebuilder:rbac:groups=tugboat.dev,resources=receivers,verbs=get
// +kubebuilder:rbac:groups=tugboat.dev,resources=receivers/status,verbs=get;update

type recorder interface {
	Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any)
}

// Secrets reads a Secret's data where RBAC lets the controller.
type Secrets func(ctx context.Context, namespace, name string) (map[string][]byte, error)

// Options configure the endpoint.
type Options struct {
	// Address to listen on, such as :9443.
	Address string
	// CertFile and KeyFile are its TLS certificate and key; without them it
	// serves plain HTTP only when AllowPlainHTTP says so.
	CertFile, KeyFile string
	AllowPlainHTTP    bool
	// Client reads Receivers and Rollouts from the API server itself (the
	// manager's APIReader wrapped with its client's writer): a replay must
	// be checked on what is stored, not on a cache.
	Client  client.Client
	Secrets Secrets
	// Recorder records each accepted request on its Rollout.
	Recorder recorder
	Metrics  *Metrics
	Now      func() time.Time
	// MaxBody bounds a request's body (default 256 KiB).
	MaxBody int64
}

// Server is the trigger endpoint, a manager Runnable.
type Server struct {
	o Options
	// locks serialise the requests of one Receiver, so that two copies of a
	// request arriving together are one accepted and one replay.
	locks sync.Map
	// bound is where Start listens, once it does.
	bound chan string
}

// New makes the endpoint; Start serves it.
func New(o Options) *Server {
	o.MaxBody = cmp.Or(o.MaxBody, 256<<10)
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Server{o: o, bound: make(chan string, 1)}
}

// NeedLeaderElection: any replica may take requests; each one's effect is a
// write the API server orders.
func (s *Server) NeedLeaderElection() bool { return false }

// Address blocks until the endpoint listens and returns where (tests listen
// on port 0).
func (s *Server) Address(ctx context.Context) (string, error) {
	select {
	case a := <-s.bound:
		s.bound <- a
		return a, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// Start serves until ctx ends.
func (s *Server) Start(ctx context.Context) error {
	tlsOn := s.o.CertFile != "" || s.o.KeyFile != ""
	if !tlsOn && !s.o.AllowPlainHTTP {
		return errors.New("trigger endpoint: set --receiver-tls-cert-file and --receiver-tls-key-file (or --receiver-allow-plain-http in a sandbox)")
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /hook/{namespace}/{name}", s.hook)
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    32 << 10,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	l, err := net.Listen("tcp", s.o.Address)
	if err != nil {
		return fmt.Errorf("trigger endpoint: %w", err)
	}
	s.bound <- l.Addr().String()
	if tlsOn {
		// Re-read when the files change: a certificate cert-manager
		// rotates is served without a restart.
		cw, err := certwatcher.New(s.o.CertFile, s.o.KeyFile)
		if err != nil {
			l.Close()
			return fmt.Errorf("trigger endpoint TLS: %w", err)
		}
		go func() { _ = cw.Start(ctx) }()
		l = tls.NewListener(l, &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: cw.GetCertificate})
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	log.FromContext(ctx).Info("trigger endpoint listening", "address", l.Addr().String(), "tls", tlsOn)
	select {
	case <-ctx.Done():
		shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		return srv.Shutdown(shutdown)
	case err := <-errc:
		return err
	}
}

// answer is the JSON every request gets back.
type answer struct {
	Accepted bool   `json:"accepted"`
	Action   string `json:"action,omitempty"`
	Rollout  string `json:"rollout,omitempty"`
	Message  string `json:"message"`
}

func (s *Server) hook(w http.ResponseWriter, r *http.Request) {
	key := types.NamespacedName{Namespace: r.PathValue("namespace"), Name: r.PathValue("name")}
	code, a := s.handle(r.Context(), key, r)
	s.o.Metrics.count(a.result(code))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(a)
}

// handle checks and carries out one request. Before the signature is
// verified every refusal is the same 401, so that a caller without the key
// learns nothing (not whether the Receiver exists); the details are logged.
func (s *Server) handle(ctx context.Context, key types.NamespacedName, r *http.Request) (int, answer) {
	logger := log.FromContext(ctx).WithValues("receiver", key)
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, s.o.MaxBody))
	if err != nil {
		return http.StatusRequestEntityTooLarge, answer{Message: "the body is too large or unreadable"}
	}
	unsigned := answer{Message: "the request is not signed with this receiver's key"}
	var rc v1alpha1.Receiver
	if err := s.o.Client.Get(ctx, key, &rc); err != nil {
		logger.V(1).Info("trigger refused: no receiver", "reason", err.Error())
		return http.StatusUnauthorized, unsigned
	}
	data, err := s.o.Secrets(ctx, key.Namespace, rc.Spec.SecretRef.Name)
	if err != nil {
		logger.Info("trigger refused: the receiver's secret is not readable", "secret", rc.Spec.SecretRef.Name, "reason", err.Error())
		return http.StatusUnauthorized, unsigned
	}
	now := s.o.Now()
	req, err := receiver.Verify(rc.Spec.Type, bytes.TrimSpace(data["token"]), r.Header, body, now)
	switch {
	case errors.Is(err, receiver.ErrUnsigned), errors.Is(err, receiver.ErrBadSignature):
		logger.V(1).Info("trigger refused", "reason", err.Error())
		return http.StatusUnauthorized, unsigned
	case err != nil:
		logger.Info("trigger refused", "reason", err.Error())
		return http.StatusBadRequest, answer{Message: err.Error()}
	case req.Action == receiver.Ping:
		return http.StatusOK, answer{Accepted: true, Action: receiver.Ping, Message: "pong"}
	}
	if err := receiver.Allow(rc.Spec, req); err != nil {
		logger.Info("trigger refused", "action", req.Action, "rollout", req.Rollout, "reason", err.Error())
		code := http.StatusForbidden
		if errors.Is(err, receiver.ErrMalformed) {
			code = http.StatusBadRequest
		}
		return code, answer{Action: req.Action, Rollout: req.Rollout, Message: err.Error()}
	}
	// Only signed requests take the Receiver's lock, and read it again
	// under it: the replay check needs what the last accepted one wrote.
	lock, _ := s.locks.LoadOrStore(rc.UID, &sync.Mutex{})
	lock.(*sync.Mutex).Lock()
	defer lock.(*sync.Mutex).Unlock()
	if err := s.o.Client.Get(ctx, key, &rc); err != nil {
		logger.Info("trigger failed: cannot read the receiver again", "reason", err.Error())
		return http.StatusServiceUnavailable, answer{Action: req.Action, Rollout: req.Rollout, Message: "the receiver could not be read; nothing was done"}
	}
	if replayed(rc.Status.Accepted, req.Digest) {
		logger.Info("trigger refused: a replay", "action", req.Action, "rollout", req.Rollout)
		return http.StatusConflict, answer{Action: req.Action, Rollout: req.Rollout, Message: "the request was accepted before: a replay is refused"}
	}
	// The request is recorded before it is carried out: a replay then finds
	// it whatever happens next, and a conflict means another replica took
	// it first.
	if err := s.claim(ctx, &rc, req, now); err != nil {
		switch {
		case apierrors.IsConflict(err):
			return http.StatusConflict, answer{Action: req.Action, Rollout: req.Rollout, Message: "the receiver changed meanwhile; sign the request again and send it"}
		case apierrors.IsTooManyRequests(err):
			return http.StatusTooManyRequests, answer{Action: req.Action, Rollout: req.Rollout, Message: err.Error()}
		}
		logger.Info("trigger failed: cannot record the request", "reason", err.Error())
		return http.StatusServiceUnavailable, answer{Action: req.Action, Rollout: req.Rollout, Message: "the request could not be recorded; nothing was done"}
	}
	ro, done, err := s.act(ctx, key, req)
	if err != nil {
		logger.Info("trigger failed", "action", req.Action, "rollout", req.Rollout, "reason", err.Error())
		return http.StatusUnprocessableEntity, answer{Action: req.Action, Rollout: req.Rollout, Message: err.Error() + "; nothing was done: fix it, sign the request again and send it"}
	}
	note := fmt.Sprintf("receiver %s: %s", key.Name, done)
	if req.Delivery != "" {
		note += " (delivery " + req.Delivery + ")"
	}
	s.o.Recorder.Eventf(ro, &rc, corev1.EventTypeNormal, "Triggered", "Trigger", "%s", shorten(note, 1024))
	s.record(ctx, &rc, req, done, now)
	logger.Info("trigger accepted", "action", req.Action, "rollout", req.Rollout, "delivery", req.Delivery)
	return http.StatusOK, answer{Accepted: true, Action: req.Action, Rollout: req.Rollout, Message: done}
}

func replayed(accepted []v1alpha1.AcceptedRequest, digest string) bool {
	for _, a := range accepted {
		if a.Digest == digest {
			return true
		}
	}
	return false
}

// claim adds req to the receiver's accepted requests, dropping those past
// the freshness window (a replay of them is stale anyway), with the
// optimistic lock.
func (s *Server) claim(ctx context.Context, rc *v1alpha1.Receiver, req receiver.Request, now time.Time) error {
	var kept []v1alpha1.AcceptedRequest
	for _, a := range rc.Status.Accepted {
		// Twice the window, so that replicas whose clocks differ by less
		// than it still refuse one another's replays.
		if now.Sub(a.Time.Time) <= 2*receiver.MaxSkew {
			kept = append(kept, a)
		}
	}
	if len(kept) >= 256 {
		return apierrors.NewTooManyRequests("too many requests accepted within the freshness window", 60)
	}
	rc.Status.Accepted = append(kept, v1alpha1.AcceptedRequest{Digest: req.Digest, Time: metav1.NewTime(req.Time)})
	return s.o.Client.Status().Update(ctx, rc)
}

// record notes the last accepted request; a failure here loses only that
// note.
func (s *Server) record(ctx context.Context, rc *v1alpha1.Receiver, req receiver.Request, msg string, now time.Time) {
	rc.Status.LastRequest = &v1alpha1.ReceiverRequest{Time: metav1.NewTime(now), Action: req.Action, Rollout: req.Rollout, Message: shorten(msg, 1024)}
	if err := s.o.Client.Status().Update(ctx, rc); err != nil {
		log.FromContext(ctx).Info("could not record the last request on the receiver", "receiver", client.ObjectKeyFromObject(rc), "reason", err.Error())
	}
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}
