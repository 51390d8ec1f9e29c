package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/tugboatdev/tugboat/analysis"
	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/egress"
)

func TestMeasureWeb(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, fmt.Sprintf("%s %s auth=%s type=%s body=%s", r.Method, r.URL.Path, r.Header.Get("Authorization"), r.Header.Get("Content-Type"), body))
		mu.Unlock()
		switch r.URL.Path {
		case "/approval":
			fmt.Fprint(w, `{"status":{"approved":true,"votes":[1,2]}}`)
		case "/redirect":
			http.Redirect(w, r, "http://169.254.169.254/", http.StatusFound)
		case "/down":
			http.Error(w, "token s3cret invalid", http.StatusServiceUnavailable)
		case "/html":
			fmt.Fprint(w, "<html>")
		case "/big":
			fmt.Fprint(w, `"`+strings.Repeat("x", 2<<20)+`"`)
		case "/slow":
			<-release
			fmt.Fprint(w, `true`)
		}
	}))
	defer srv.Close()
	defer close(release)
	p := &Provider{Guard: egress.Guard{AllowLoopback: true}, MaxInFlight: 1}
	get := func(path, jsonPath string) analysis.Sample {
		return p.MeasureWeb(t.Context(), analysis.WebRequest{Method: "GET", URL: srv.URL + path, JSONPath: jsonPath, Timeout: 5 * time.Second})
	}

	if s := get("/approval", "{.status.approved}"); s.Err != nil || s.Answer != true || !s.Web {
		t.Errorf("a value at jsonPath: %+v", s)
	}
	if s := get("/approval", "{.status.votes[*]}"); s.Err != nil || fmt.Sprint(s.Answer) != "[1 2]" {
		t.Errorf("several values at jsonPath: %+v", s)
	}
	if s := get("/approval", "{.status.missing}"); s.Err != nil || s.Answer != nil {
		t.Errorf("nothing at jsonPath is no data: %+v", s)
	}
	if s := get("/approval", ""); s.Err != nil || fmt.Sprint(s.Answer) != "map[status:map[approved:true votes:[1 2]]]" {
		t.Errorf("the whole answer: %+v", s)
	}
	s := p.MeasureWeb(t.Context(), analysis.WebRequest{Method: "POST", URL: srv.URL + "/approval", JSON: true, Body: []byte(`{"a":1}`),
		Headers: []v1alpha1.WebHeader{{Key: "Authorization", Value: "Bearer s3cret"}}, Timeout: 5 * time.Second})
	mu.Lock()
	last := seen[len(seen)-1]
	mu.Unlock()
	if s.Err != nil || last != `POST /approval auth=Bearer s3cret type=application/json body={"a":1}` {
		t.Errorf("a POST with a header and a JSON body: %v, the server saw %q", s.Err, last)
	}
	for path, want := range map[string]string{
		"/redirect": "refusing to follow a redirect",
		"/down":     "answered 503 Service Unavailable",
		"/html":     "the answer is not JSON",
		"/big":      "response larger than 1048576 bytes",
	} {
		s := get(path, "")
		if s.Err == nil || !strings.Contains(s.Err.Error(), want) || strings.Contains(s.Err.Error(), "s3cret") {
			t.Errorf("%s: %v, want %q and no body", path, s.Err, want)
		}
	}

	// One request to a host at a time here: the next is deferred, not
	// waited for.
	done := make(chan analysis.Sample)
	go func() { done <- get("/slow", "") }()
	err := wait.PollUntilContextTimeout(t.Context(), 10*time.Millisecond, 5*time.Second, true, func(context.Context) (bool, error) {
		return slices.ContainsFunc(snapshot(&mu, &seen), func(s string) bool { return strings.HasPrefix(s, "GET /slow") }), nil
	})
	if err != nil {
		t.Fatal("the slow request never reached the server")
	}
	if s := get("/approval", ""); !errors.Is(s.Err, analysis.ErrDeferred) {
		t.Errorf("a second request to a busy host: %+v, want it deferred", s)
	}
	release <- struct{}{}
	if s := <-done; s.Err != nil || s.Answer != true {
		t.Errorf("the slow request: %+v", s)
	}
}

func TestOnlyAllowedHostsAreAsked(t *testing.T) {
	asked := make(chan struct{}, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		asked <- struct{}{}
		fmt.Fprint(w, "true")
	}))
	defer srv.Close()
	for _, tt := range []struct {
		name  string
		guard egress.Guard
		url   string
	}{
		{"nothing is allowed by default", egress.Guard{}, srv.URL},
		{"a host not on the list", egress.Guard{AllowedHosts: []string{"approvals.example.com"}}, "http://other.example.com/"},
		{"an allowed name that resolves to loopback", egress.Guard{AllowedHosts: []string{"localhost"}}, strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)},
		{"cloud metadata, even with everything allowed", egress.Guard{AllowedHosts: []string{"*"}}, "http://169.254.169.254/latest/meta-data/"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := &Provider{Guard: tt.guard}
			s := p.MeasureWeb(t.Context(), analysis.WebRequest{Method: "GET", URL: tt.url, Timeout: 2 * time.Second})
			var refused *egress.Refused
			if !errors.As(s.Err, &refused) {
				t.Errorf("%s: %v, want a refusal by policy", tt.url, s.Err)
			}
		})
	}
	select {
	case <-asked:
		t.Error("a refused request reached the server")
	default:
	}
}

func snapshot(mu *sync.Mutex, seen *[]string) []string {
	mu.Lock()
	defer mu.Unlock()
	return slices.Clone(*seen)
}
