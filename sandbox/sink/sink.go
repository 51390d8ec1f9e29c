// Package sink is the sandbox's web endpoint for what Tugboat asks and
// tells over HTTP: an approvals API that web metrics gate on
// (GET /approvals/{release} answers {"release": ..., "approved": ...}; PUT
// with {"approved": true} changes it), and receivers of notifications
// (POST /notifications/{slack,msteams,webhook,cloudevents}; /slow holds each
// request until the sink stops; GET /notifications lists what arrived).
package sink

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// Server is a running sink.
type Server struct {
	// URL is where it listens, such as http://127.0.0.1:41234.
	URL string

	srv       *http.Server
	mu        sync.Mutex
	approvals map[string]bool
	asked     map[string]int
	received  []Notification
	held      int
	slowAsked int
	release   chan struct{}
}

// Start listens on a free loopback port.
func Start() (*Server, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{URL: "http://" + l.Addr().String(), approvals: map[string]bool{}, asked: map[string]int{}, release: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /approvals/{release}", s.getApproval)
	mux.HandleFunc("PUT /approvals/{release}", s.putApproval)
	mux.HandleFunc("POST /notifications/slow", s.slow)
	mux.HandleFunc("POST /notifications/{receiver}", s.notification)
	mux.HandleFunc("GET /notifications", s.list)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = s.srv.Serve(l) }()
	return s, nil
}

// Stop closes the listener and every connection.
func (s *Server) Stop() error {
	s.mu.Lock()
	select {
	case <-s.release:
	default:
		close(s.release)
	}
	s.mu.Unlock()
	if err := s.srv.Close(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Approve sets a release's approval, as a person would.
func (s *Server) Approve(release string, approved bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.approvals[release] = approved
}

// Asked is how many times a release's approval was asked for.
func (s *Server) Asked(release string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.asked[release]
}

type approval struct {
	Release  string `json:"release"`
	Approved bool   `json:"approved"`
}

func (s *Server) getApproval(w http.ResponseWriter, r *http.Request) {
	release := r.PathValue("release")
	s.mu.Lock()
	s.asked[release]++
	a := approval{Release: release, Approved: s.approvals[release]}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(a)
}

func (s *Server) putApproval(w http.ResponseWriter, r *http.Request) {
	var a approval
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<10)).Decode(&a); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.Approve(r.PathValue("release"), a.Approved)
	w.WriteHeader(http.StatusNoContent)
}
