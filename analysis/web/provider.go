// Package web is the adapter that measures web metrics: an HTTP request to
// a host the controller allows, whose JSON answer (or the part the metric's
// jsonPath picks, with client-go's JSONPath) is the result.
//
// Requests go only through the egress guard: the host must be on
// --web-allowed-hosts (empty by default), the IP dialled is checked again
// after DNS, redirects are not followed, an answer is read up to MaxAnswer,
// and at most MaxInFlight requests per host are under way (one past it is
// deferred, not waited for). Errors quote neither headers nor bodies.
package web

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"sync"

	"k8s.io/client-go/util/jsonpath"

	"github.com/tugboatdev/tugboat/analysis"
	"github.com/tugboatdev/tugboat/egress"
)

// Defaults of the Provider's bounds.
const (
	DefaultMaxAnswer   = 1 << 20
	DefaultMaxInFlight = 2
)

var errNotAllowed = &egress.Refused{Reason: "web metrics may ask only the hosts the controller allows (--web-allowed-hosts), and this metric's url is not on one of them"}

// Provider measures web metrics.
type Provider struct {
	// Guard decides which hosts may be asked; its AllowedHosts are
	// --web-allowed-hosts.
	Guard egress.Guard
	// MaxAnswer bounds an answer (DefaultMaxAnswer when zero).
	MaxAnswer int64
	// MaxInFlight bounds the requests under way to one host
	// (DefaultMaxInFlight when zero).
	MaxInFlight int64

	once             sync.Once
	secure, insecure http.RoundTripper
	mu               sync.Mutex
	// inFlight counts the requests under way per host; a host with none
	// has no entry, so the map holds no more than the requests do.
	inFlight map[string]int64
}

func (p *Provider) init() {
	p.once.Do(func() {
		g := p.Guard
		g.MaxResponse = p.MaxAnswer
		if g.MaxResponse <= 0 {
			g.MaxResponse = DefaultMaxAnswer
		}
		p.secure = g.Transport(&tls.Config{MinVersion: tls.VersionTLS12})
		p.insecure = g.Transport(&tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: true}) //nolint:gosec // the metric's insecure, to an allowed host
		p.inFlight = map[string]int64{}
	})
}

// acquire takes a place among the requests to u's host (its name in lower
// case without a trailing dot, and the port it is dialled on), if one is free.
func (p *Provider) acquire(u *url.URL) (release func(), ok bool) {
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".") + ":" + port
	limit := p.MaxInFlight
	if limit <= 0 {
		limit = DefaultMaxInFlight
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.inFlight[host] >= limit {
		return nil, false
	}
	p.inFlight[host]++
	return func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.inFlight[host]--; p.inFlight[host] <= 0 {
			delete(p.inFlight, host)
		}
	}, true
}

// MeasureWeb sends the request and returns its answer as the sample.
func (p *Provider) MeasureWeb(ctx context.Context, req analysis.WebRequest) analysis.Sample {
	p.init()
	u, err := url.Parse(req.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return analysis.Sample{Err: errors.New("the url is not an http:// or https:// URL")}
	}
	if !p.Guard.Allows(u) {
		return analysis.Sample{Err: errNotAllowed}
	}
	release, ok := p.acquire(u)
	if !ok {
		return analysis.Sample{Err: fmt.Errorf("%w: as many requests to %s as allowed are under way", analysis.ErrDeferred, u.Host)}
	}
	defer release()
	ctx, cancel := context.WithTimeout(ctx, req.Timeout)
	defer cancel()
	hreq, err := http.NewRequestWithContext(ctx, req.Method, req.URL, bytes.NewReader(req.Body))
	if err != nil {
		return analysis.Sample{Err: errors.New("the request cannot be made from the metric")}
	}
	for _, h := range req.Headers {
		hreq.Header.Add(h.Key, h.Value)
	}
	if req.JSON && hreq.Header.Get("Content-Type") == "" {
		hreq.Header.Set("Content-Type", "application/json")
	}
	hreq.Header.Set("Accept", "application/json")
	rt := p.secure
	if req.Insecure {
		rt = p.insecure
	}
	resp, err := rt.RoundTrip(hreq)
	if err != nil {
		var refused *egress.Refused
		if errors.As(err, &refused) {
			return analysis.Sample{Err: refused}
		}
		return analysis.Sample{Err: fmt.Errorf("%s %s: %w", req.Method, u.Redacted(), unwrapURL(err))}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return analysis.Sample{Err: fmt.Errorf("%s %s: reading the answer: %w", req.Method, u.Redacted(), err)}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return analysis.Sample{Err: fmt.Errorf("%s %s answered %s", req.Method, u.Redacted(), resp.Status)}
	}
	answer, err := Pick(body, req.JSONPath)
	if err != nil {
		return analysis.Sample{Err: fmt.Errorf("%s %s: %w", req.Method, u.Redacted(), err)}
	}
	return analysis.Sample{Web: true, Answer: answer}
}

// unwrapURL drops the *url.Error around a transport error, which quotes the
// URL once more.
func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// Pick decodes a JSON answer and picks the result from it with a JSONPath
// ({.status.approved}); the whole answer when path is empty. A path that
// finds nothing is nil (no data), one value is that value, several are a
// list.
func Pick(body []byte, path string) (any, error) {
	var data any
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&data); err != nil {
		return nil, fmt.Errorf("the answer is not JSON: %w", err)
	}
	if strings.TrimSpace(path) == "" || strings.TrimSpace(path) == "{$}" {
		return data, nil
	}
	j := jsonpath.New("jsonPath").AllowMissingKeys(true)
	if err := j.Parse(path); err != nil {
		return nil, fmt.Errorf("jsonPath %q: %w", path, err)
	}
	results, err := j.FindResults(data)
	if err != nil {
		return nil, fmt.Errorf("jsonPath %q: %w", path, err)
	}
	var found []any
	for _, rs := range results {
		for _, v := range rs {
			found = append(found, plain(v))
		}
	}
	switch len(found) {
	case 0:
		return nil, nil
	case 1:
		return found[0], nil
	}
	return found, nil
}

// plain is a JSONPath result as the value encoding/json decoded.
func plain(v reflect.Value) any {
	for v.Kind() == reflect.Interface || v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return nil
		}
		v = v.Elem()
	}
	if !v.IsValid() {
		return nil
	}
	return v.Interface()
}
