package dataplane

import (
	"context"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Options configure an Emulator.
type Options struct {
	// Namespace whose VirtualServices the load goes through; their
	// destinations may be in any namespace.
	Namespace string
	// Rate is the requests per second sent to each VirtualService host.
	Rate float64
	// Tick is how often state is read and a batch of requests sent (default 1s).
	Tick time.Duration
	// Seed makes the load reproducible.
	Seed uint64
	// OnError hears what Tick returns: a tick that could not read the
	// mesh (the next one tries again), or EnvoyFilters left out
	// (default: ignored).
	OnError func(error)
}

// Emulator sends load through the mesh as the API server describes it.
type Emulator struct {
	reader   client.Reader
	o        Options
	rng      *rand.Rand
	carry    map[string]float64
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec

	receivedRequests *prometheus.CounterVec
	receivedHeaders  *prometheus.CounterVec
}

// Istio's standard metric labels (a subset: those analysis templates use).
var istioLabels = []string{
	"reporter", "source_workload", "source_workload_namespace",
	"destination_workload", "destination_workload_namespace",
	"destination_service", "destination_service_name", "destination_service_namespace",
	"request_protocol", "response_code", "response_flags",
}

// New creates an emulator that registers its metrics (see the package
// documentation) with reg.
func New(r client.Reader, reg prometheus.Registerer, o Options) *Emulator {
	if o.Tick == 0 {
		o.Tick = time.Second
	}
	if o.OnError == nil {
		o.OnError = func(error) {}
	}
	e := &Emulator{
		reader: r, o: o,
		rng:   rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15)),
		carry: map[string]float64{},
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "istio_requests_total", Help: "Requests, as Istio's proxies count them.",
		}, istioLabels),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "istio_request_duration_milliseconds", Help: "Request durations, as Istio's proxies measure them.",
			Buckets: []float64{1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000},
		}, istioLabels),
		receivedRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tugboat_sandbox_received_requests_total", Help: "Requests that reached a pod, after its inbound filters.",
		}, []string{"namespace", "workload", "mirrored", "method"}),
		receivedHeaders: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tugboat_sandbox_received_headers_total", Help: "Requests that reached a pod still carrying a sensitive header.",
		}, []string{"namespace", "workload", "mirrored", "header"}),
	}
	reg.MustRegister(e.requests, e.duration, e.receivedRequests, e.receivedHeaders)
	return e
}

// Run sends load until ctx ends. A tick that fails (the API server busy,
// say) is reported to OnError, and the next one tries again.
func (e *Emulator) Run(ctx context.Context) {
	t := time.NewTicker(e.o.Tick)
	defer t.Stop()
	for {
		if err := e.Tick(ctx, e.o.Tick); err != nil && ctx.Err() == nil {
			e.o.OnError(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Tick reads the mesh and sends the requests due over d. An error reading
// the mesh means nothing was sent; once the load is sent, Tick reports the
// EnvoyFilters it left out because their Lua did not load.
func (e *Emulator) Tick(ctx context.Context, d time.Duration) error {
	m, err := read(ctx, e.reader, e.o.Namespace)
	if err != nil {
		return err
	}
	defer m.close()
	for _, vs := range m.services {
		for _, host := range vs.GetHosts() {
			e.carry[host] += e.o.Rate * d.Seconds()
			n := int(e.carry[host])
			e.carry[host] -= float64(n)
			for range n {
				req := request(e.rng, host, e.o.Namespace)
				dec := Route(m.services, req, e.rng)
				if !dec.Found {
					continue
				}
				e.serve(m, req, dec.To, false)
				for _, copied := range dec.Mirrors {
					e.serve(m, req, copied, true)
				}
			}
		}
	}
	return m.inbound.rejected
}

// serve answers one request at dst as the pod it reaches behaves, after
// the pod's inbound filters. A request that reaches a pod is reported by
// both sidecars (reporter source and destination), one that reaches none
// (503, UH) only by the sender's. A copy (mirrored) is reported as Istio
// reports one: only by the receiving sidecar (reporter destination, the
// Service from the inbound cluster's metadata, so without the -shadow
// host), and not at all when no Ready pod receives it; the sending side
// has no series for copies (istio/istio#23496), and their answers are
// dropped.
func (e *Emulator) serve(m *mesh, req Request, dst Destination, copied bool) {
	svc, known := resolve(dst.Host, e.o.Namespace)
	var pod *corev1.Pod
	if known {
		pod = m.podFor(e.rng, svc, dst.Subset)
	}
	if copied && pod == nil {
		return
	}
	reporter := "source"
	if copied {
		reporter = "destination"
	}
	lv := map[string]string{
		"reporter": reporter, "source_workload": "loadgen", "source_workload_namespace": e.o.Namespace,
		"destination_workload": "unknown", "destination_workload_namespace": svc.namespace,
		"destination_service": svc.fqdn(), "destination_service_name": svc.name, "destination_service_namespace": svc.namespace,
		"request_protocol": "http", "response_code": "503", "response_flags": "UH",
	}
	if !known {
		lv["destination_service"], lv["destination_service_name"] = dst.Host, dst.Host
		lv["destination_workload_namespace"], lv["destination_service_namespace"] = "unknown", "unknown"
	}
	latency := 1.0
	if pod != nil {
		lv["destination_workload"] = workload(pod)
		lv["response_flags"] = "-"
		headers, status := m.inbound.receive(pod, envoyHeaders(req, copied))
		if status != 0 {
			lv["response_code"] = strconv.Itoa(status)
		} else {
			e.received(pod, headers, copied)
			errRate, ms := behaviour(pod)
			lv["response_code"] = "200"
			if e.rng.Float64() < errRate {
				lv["response_code"] = "500"
			}
			latency = ms * (0.5 + e.rng.ExpFloat64()*0.5)
		}
	}
	e.requests.With(lv).Inc()
	e.duration.With(lv).Observe(latency)
	if pod != nil && !copied {
		// The receiving sidecar reports the request too, as Istio's do
		// when both ends have one.
		lv["reporter"] = "destination"
		e.requests.With(lv).Inc()
		e.duration.With(lv).Observe(latency)
	}
}

// received counts a request that reached pod, and the sensitive headers
// it still carried.
func (e *Emulator) received(pod *corev1.Pod, headers map[string]string, copied bool) {
	ns, wl, mirrored := pod.Namespace, workload(pod), strconv.FormatBool(copied)
	e.receivedRequests.WithLabelValues(ns, wl, mirrored, headers[":method"]).Inc()
	for _, h := range sensitiveHeaders {
		if _, ok := headers[h]; ok {
			e.receivedHeaders.WithLabelValues(ns, wl, mirrored, h).Inc()
		}
	}
}

// behaviour reads the demo's error rate and latency from the pod's first
// container's environment.
func behaviour(p *corev1.Pod) (errRate, latencyMs float64) {
	latencyMs = 20
	if len(p.Spec.Containers) == 0 {
		return 0, latencyMs
	}
	for _, env := range p.Spec.Containers[0].Env {
		switch env.Name {
		case "DEMO_ERROR_RATE":
			errRate, _ = strconv.ParseFloat(env.Value, 64)
		case "DEMO_LATENCY_MS":
			if v, err := strconv.ParseFloat(env.Value, 64); err == nil {
				latencyMs = v
			}
		}
	}
	return errRate, latencyMs
}

// workload is the Deployment a pod belongs to, as Istio names it.
func workload(p *corev1.Pod) string {
	for _, o := range p.OwnerReferences {
		if o.Kind == "ReplicaSet" {
			if h := p.Labels["pod-template-hash"]; h != "" {
				return strings.TrimSuffix(o.Name, "-"+h)
			}
			return o.Name
		}
	}
	return p.Name
}
