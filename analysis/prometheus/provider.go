// Package prometheus is the adapter that measures metrics with Prometheus
// queries, through prometheus/client_golang's API client.
//
// Instant and range queries are supported. Identical queries due at the
// same moment are sent once, the number of queries in flight per server is
// bounded, addresses taken from templates must be allowed and are dialled
// only through a guard (see Guard), a template's headers never go to the
// controller's own Prometheus, queries holding values from Secrets are never
// sent by GET, and transports, one per TLS setting, are shared and bounded.
package prometheus

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	promconfig "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"golang.org/x/sync/semaphore"
	"golang.org/x/sync/singleflight"
	"k8s.io/utils/lru"

	"github.com/tugboatdev/tugboat/analysis"
	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/egress"
)

// Guard decides which addresses templates may name and dial.
type Guard = egress.Guard

// Refused is a query the controller's policy does not let go out.
type Refused = egress.Refused

var errNotAllowed = &Refused{Reason: "templates may name only the Prometheus addresses the controller allows (--prometheus-allowed-hosts), and this metric's address is not one of them"}

// CheckAllowedHosts reports the entries of --prometheus-allowed-hosts that
// are not patterns the guard understands.
func CheckAllowedHosts(patterns []string) error {
	return egress.CheckAllowedHosts("prometheus-allowed-hosts", patterns)
}

// ErrNoAddress means neither the metric nor the controller names a server.
var ErrNoAddress = errors.New("no Prometheus address: set provider.prometheus.address or the controller's --prometheus-address")

// Credentials reads a Secret's data by name in a namespace. The controller
// reads Secrets one by one, uncached, so that it needs no cluster-wide
// Secret access.
type Credentials func(ctx context.Context, namespace, name string) (map[string][]byte, error)

// Provider measures Prometheus metrics.
type Provider struct {
	// DefaultAddress is used by metrics that name no address.
	DefaultAddress string
	// DefaultTLS is the TLS of DefaultAddress: a CA, a client certificate and
	// a server name, usually as files, which are re-read when they change.
	DefaultTLS promconfig.TLSConfig
	// Guard decides which addresses templates may name and which may be
	// dialled. DefaultAddress and CredentialAddresses need no entry in its
	// allow-list.
	Guard Guard
	// Credentials reads authentication Secrets. Credentials (client
	// certificates among them) are sent only to DefaultAddress and
	// CredentialAddresses, never to an address a template alone chose.
	Credentials         Credentials
	CredentialAddresses []string
	// MaxInFlight bounds concurrent queries to DefaultAddress (default 8);
	// MaxInFlightElsewhere to each address a template names (default 1). A
	// query past the bound is not waited for: it is deferred
	// (analysis.ErrDeferred) and tried again shortly, so a server that takes
	// connections and never answers holds at most that many of the
	// controller's workers, and every other run goes on.
	MaxInFlight          int64
	MaxInFlightElsewhere int64
	// MaxQueryTime is the longest a query may take, whatever its metric's
	// timeout says, and how long a server may take to begin its answer
	// (default 2m).
	MaxQueryTime time.Duration
	// Metrics, when set, counts the queries sent and saved.
	Metrics *Metrics

	flights    singleflight.Group
	mu         sync.Mutex
	recent     map[string]recent
	sems       map[string]*semaphore.Weighted
	transports *lru.Cache // tlsKey -> http.RoundTripper
}

// request is one query, resolved: where it goes, what it carries, and when.
type request struct {
	address string
	auth    string // the Authorization header
	rt      http.RoundTripper
	tlsKey  string // a hash of the TLS settings rt was built with
	headers []argo.WebMetricHeader
	query   string
	ts      time.Time
	rng     *analysis.Range // nil for an instant query
	timeout time.Duration
	// postOnly refuses the client library's fallback to GET, which would
	// put the query in the URL.
	postOnly bool
}

// key is the same for requests that are the same query: server, credentials,
// text and second. It holds the Authorization header but only a hash of the
// TLS material, and lives in memory only.
func (r request) key() string {
	rng := "instant"
	if r.rng != nil {
		rng = fmt.Sprintf("%d:%d:%s", r.rng.Start.Unix(), r.rng.End.Unix(), r.rng.Step)
	}
	return fmt.Sprintf("%s\x00%s\x00%s\x00%s\x00%d\x00%s\x00%v\x00%v", r.address, r.auth, r.tlsKey, r.query, r.ts.Unix(), rng, r.headers, r.postOnly)
}

// Measure runs the rendered query of m at ts for an object in namespace. A
// range query's now() is ts.
func (p *Provider) Measure(ctx context.Context, namespace string, m *v1alpha1.PrometheusMetric, query string, ts time.Time) analysis.Sample {
	req, err := p.resolve(ctx, namespace, m, query, ts)
	if err != nil {
		return analysis.Sample{Err: err}
	}
	return p.send(ctx, req)
}

// MeasureSecret is Measure for a query that holds values from Secrets. It is
// sent by POST only: the client library falls back to GET when a server
// answers POST with 403, 405 or 501, and a GET carries the query in its URL,
// which proxies and access logs keep. Such a server gets no query at all,
// and the measurement errs saying why.
func (p *Provider) MeasureSecret(ctx context.Context, namespace string, m *v1alpha1.PrometheusMetric, query string, ts time.Time) analysis.Sample {
	req, err := p.resolve(ctx, namespace, m, query, ts)
	if err != nil {
		return analysis.Sample{Err: err}
	}
	req.postOnly = true
	return p.send(ctx, req)
}

// send sends a resolved query, or joins an identical one.
func (p *Provider) send(ctx context.Context, req request) analysis.Sample {
	key := req.key()
	if s, ok := p.remembered(key); ok {
		p.Metrics.save()
		return s
	}
	led := false
	v, err, _ := p.flights.Do(key, func() (any, error) {
		led = true
		sem := p.semaphore(req.address)
		if !sem.TryAcquire(1) {
			return nil, analysis.ErrDeferred
		}
		defer sem.Release(1)
		qctx, cancel := context.WithTimeout(ctx, req.timeout)
		defer cancel()
		start := time.Now()
		s, err := p.query(qctx, req)
		if ctx.Err() == nil { // not cut short by the caller stopping
			p.Metrics.sent(time.Since(start), err)
		}
		return s, err
	})
	if ctx.Err() != nil {
		return analysis.Sample{Err: ctx.Err()} // stopping: nothing measured, nothing to keep
	}
	if errors.Is(err, context.Canceled) {
		// Joined a query whose own caller gave up on it: not an answer.
		return analysis.Sample{Err: analysis.ErrDeferred}
	}
	if !led {
		p.Metrics.save() // joined an identical query under way
	}
	s := analysis.Sample{Err: err}
	if err == nil {
		s = v.(analysis.Sample)
	}
	if !errors.Is(err, context.Canceled) && !errors.Is(err, analysis.ErrDeferred) { // cut short or never sent: not an answer to keep
		p.remember(key, s)
	}
	return s
}

// resolve works out where a metric's query goes and with which credentials.
func (p *Provider) resolve(ctx context.Context, namespace string, m *v1alpha1.PrometheusMetric, query string, ts time.Time) (request, error) {
	req := request{address: m.Address, headers: m.Headers, query: query, ts: ts, timeout: 30 * time.Second}
	if m.Timeout != nil {
		req.timeout = time.Duration(*m.Timeout) * time.Second
	}
	req.timeout = min(req.timeout, p.maxQueryTime())
	if req.address == "" {
		req.address = p.DefaultAddress
	}
	if req.address == "" {
		return request{}, ErrNoAddress
	}
	if err := p.admit(req.address, m); err != nil {
		return request{}, err
	}
	if m.RangeQuery != nil {
		rng, err := analysis.RangeAt(*m.RangeQuery, ts)
		if err != nil {
			return request{}, err
		}
		req.rng = &rng
	}
	if m.Authentication != nil && !p.credentialsGoTo(req.address) {
		return request{}, fmt.Errorf("credentials from Secrets are sent only to the controller's Prometheus or its allowed addresses, not to %s", req.address)
	}
	var err error
	if req.auth, err = p.authorization(ctx, namespace, m.Authentication); err != nil {
		return request{}, err
	}
	c, err := p.tlsFor(ctx, namespace, req.address, m)
	if err != nil {
		return request{}, err
	}
	if req.rt, req.tlsKey, err = p.transport(c); err != nil {
		if m.TLS != nil && m.TLS.SecretName != "" {
			return request{}, fmt.Errorf("tls secret %s/%s: %w", namespace, m.TLS.SecretName, err)
		}
		return request{}, err
	}
	return req, nil
}

// errHeadersToDefault refuses a template's headers for the controller's
// Prometheus: it is reached with the controller's client certificate and
// serves every namespace, and a header such as X-Scope-OrgID would let one
// namespace read another tenant's metrics.
var errHeadersToDefault = &Refused{Reason: "a template's headers go only to an address the metric names and the controller allows, never to the controller's Prometheus (--prometheus-address); name the address, or remove the headers"}

// admit checks where a metric's query may go, before anything is read or
// sent: the controller's own addresses always, an address of the
// template's own only when the guard's allow-list has it. Its errors name
// no address.
func (p *Provider) admit(address string, m *v1alpha1.PrometheusMetric) error {
	if address == p.DefaultAddress {
		if len(m.Headers) > 0 {
			return errHeadersToDefault
		}
		return nil // insecure and tls: see tlsFor
	}
	u, err := url.Parse(address)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return errors.New("the metric's address is not an http:// or https:// URL with a host (an {{args.NAME}} in it must be given a value)")
	case u.User != nil:
		return errors.New("the metric's address holds a user name or password; use authentication.basicAuth")
	case slices.Contains(p.CredentialAddresses, address), p.Guard.Allows(u):
		return nil
	}
	return errNotAllowed
}

// credentialsGoTo reports whether address may receive credentials.
func (p *Provider) credentialsGoTo(address string) bool {
	return address == p.DefaultAddress || slices.Contains(p.CredentialAddresses, address)
}

// recent is a result kept briefly, so that identical queries due in the same
// interval (for many Rollouts, or a metric shared by templates) are sent once.
type recent struct {
	s       analysis.Sample
	expires time.Time
}

const keepFor = 5 * time.Second

func (p *Provider) remembered(key string) (analysis.Sample, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r, ok := p.recent[key]
	if !ok || time.Now().After(r.expires) {
		return analysis.Sample{}, false
	}
	return r.s, true
}

func (p *Provider) remember(key string, s analysis.Sample) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if p.recent == nil {
		p.recent = map[string]recent{}
	}
	if len(p.recent) > 1024 {
		for k, r := range p.recent {
			if now.After(r.expires) {
				delete(p.recent, k)
			}
		}
	}
	p.recent[key] = recent{s: s, expires: now.Add(keepFor)}
}

func (p *Provider) query(ctx context.Context, req request) (analysis.Sample, error) {
	headers := http.Header{}
	for _, h := range req.headers {
		headers.Add(h.Key, h.Value)
	}
	if req.auth != "" {
		headers.Set("Authorization", req.auth)
	}
	c, err := api.NewClient(api.Config{
		Address:      req.address,
		RoundTripper: &headerTransport{next: req.rt, headers: headers},
	})
	if err != nil {
		return analysis.Sample{}, fmt.Errorf("prometheus client for %s: %w", req.address, err)
	}
	if req.postOnly {
		c = postOnly{c}
	}
	var val model.Value
	var warnings promv1.Warnings
	if req.rng != nil {
		val, warnings, _, err = promv1.NewAPI(c).QueryRange(ctx, req.query, promv1.Range{Start: req.rng.Start, End: req.rng.End, Step: req.rng.Step})
	} else {
		val, warnings, _, err = promv1.NewAPI(c).Query(ctx, req.query, req.ts)
	}
	if err != nil {
		var refused *Refused
		if errors.As(err, &refused) {
			// Not what wraps it: the URL, and the IP the address resolved to.
			return analysis.Sample{}, refused
		}
		var pe *promv1.Error
		if errors.As(err, &pe) && (pe.Type == promv1.ErrBadData || pe.Type == promv1.ErrExec) {
			// The server's answer about the query, which it may quote.
			err = &analysis.QueryRefused{Reason: string(pe.Type), Err: err}
		}
		return analysis.Sample{}, fmt.Errorf("query %s: %w", req.address, err)
	}
	s, err := sample(val)
	s.Warnings = warnings[:min(len(warnings), maxWarnings)]
	return s, err
}

// maxWarnings bounds the server's warnings kept with a measurement.
const maxWarnings = 3

// sample turns a query result into values, series in label order so that
// result[0] means the same series every time. A range query's matrix is
// flattened as Argo Rollouts does: every point of the first series, in time
// order, then of the next.
func sample(v model.Value) (analysis.Sample, error) {
	switch v := v.(type) {
	case model.Vector:
		slices.SortFunc(v, func(a, b *model.Sample) int { return compareMetrics(a.Metric, b.Metric) })
		s := analysis.Sample{Values: make([]float64, len(v))}
		for i, x := range v {
			s.Values[i] = float64(x.Value)
		}
		return s, nil
	case model.Matrix:
		slices.SortFunc(v, func(a, b *model.SampleStream) int { return compareMetrics(a.Metric, b.Metric) })
		s := analysis.Sample{Values: []float64{}}
		for _, series := range v {
			for _, x := range series.Values {
				s.Values = append(s.Values, float64(x.Value))
			}
		}
		return s, nil
	case *model.Scalar:
		return analysis.Sample{Values: []float64{float64(v.Value)}, Scalar: true}, nil
	}
	return analysis.Sample{}, fmt.Errorf("want a vector, a matrix or a scalar, got a %s", v.Type())
}

func compareMetrics(a, b model.Metric) int {
	if a.Before(b) {
		return -1
	}
	if b.Before(a) {
		return 1
	}
	return 0
}

func (p *Provider) maxQueryTime() time.Duration {
	if p.MaxQueryTime > 0 {
		return p.MaxQueryTime
	}
	return 2 * time.Minute
}

func (p *Provider) semaphore(address string) *semaphore.Weighted {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sems == nil {
		p.sems = map[string]*semaphore.Weighted{}
	}
	s, ok := p.sems[address]
	if !ok {
		n := p.MaxInFlight
		if n <= 0 {
			n = 8
		}
		if address != p.DefaultAddress {
			n = max(p.MaxInFlightElsewhere, 1)
		}
		s = semaphore.NewWeighted(n)
		p.sems[address] = s
	}
	return s
}

// authorization returns the Authorization header the metric's Secret gives.
func (p *Provider) authorization(ctx context.Context, namespace string, a *v1alpha1.PrometheusAuthentication) (string, error) {
	if a == nil {
		return "", nil
	}
	if p.Credentials == nil {
		return "", errors.New("authentication needs Secret access, which this controller was not given")
	}
	switch {
	case a.BearerToken != nil:
		data, err := p.Credentials(ctx, namespace, a.BearerToken.Name)
		if err != nil {
			return "", fmt.Errorf("bearer token secret %s/%s: %w", namespace, a.BearerToken.Name, err)
		}
		tok, ok := data[a.BearerToken.Key]
		if !ok {
			return "", fmt.Errorf("bearer token secret %s/%s has no key %q", namespace, a.BearerToken.Name, a.BearerToken.Key)
		}
		return "Bearer " + string(tok), nil
	case a.BasicAuth != nil:
		data, err := p.Credentials(ctx, namespace, a.BasicAuth.SecretName)
		if err != nil {
			return "", fmt.Errorf("basic auth secret %s/%s: %w", namespace, a.BasicAuth.SecretName, err)
		}
		req, _ := http.NewRequest(http.MethodGet, "/", nil)
		req.SetBasicAuth(string(data["username"]), string(data["password"]))
		return req.Header.Get("Authorization"), nil
	}
	return "", nil
}

// errNoGET is the answer to the client library's fallback to GET for a
// query that must not stand in a URL.
var errNoGET = &Refused{Reason: "the server did not take the query by POST (it answered 403, 405 or 501), and a query holding values from Secrets is never sent by GET, which would put them in the URL; let the server (or the proxy before it) accept POST"}

// postOnly lets only POST requests through: the query travels in the body.
type postOnly struct{ api.Client }

func (c postOnly) Do(ctx context.Context, r *http.Request) (*http.Response, []byte, error) {
	if r.Method != http.MethodPost {
		return nil, nil, errNoGET
	}
	return c.Client.Do(ctx, r)
}

type headerTransport struct {
	next    http.RoundTripper
	headers http.Header
}

func (t *headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, vs := range t.headers {
		r.Header[k] = vs
	}
	return t.next.RoundTrip(r)
}
