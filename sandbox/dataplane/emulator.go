package dataplane

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	networkingv1 "istio.io/api/networking/v1"
	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Options configure an Emulator.
type Options struct {
	// Namespace to emulate the mesh of.
	Namespace string
	// Rate is the requests per second sent to each VirtualService host.
	Rate float64
	// Tick is how often state is read and a batch of requests sent (default 1s).
	Tick time.Duration
	// Seed makes the load reproducible.
	Seed uint64
	// OnError hears of a tick that could not read the mesh; the next tick
	// tries again (default: ignored).
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
}

// Istio's standard metric labels (a subset: those analysis templates use).
var istioLabels = []string{
	"reporter", "source_workload", "source_workload_namespace",
	"destination_workload", "destination_workload_namespace",
	"destination_service", "destination_service_name", "destination_service_namespace",
	"request_protocol", "response_code", "response_flags",
}

// New creates an emulator that registers istio_requests_total and
// istio_request_duration_milliseconds with reg.
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
	}
	reg.MustRegister(e.requests, e.duration)
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

// mesh is the state requests are routed through, read once per tick.
type mesh struct {
	services []*networkingv1.VirtualService
	subsets  map[string]map[string]map[string]string // host -> subset -> labels
	svcs     map[string]*corev1.Service
	pods     []corev1.Pod
}

// Tick reads the mesh and sends the requests due over d.
func (e *Emulator) Tick(ctx context.Context, d time.Duration) error {
	m, err := e.read(ctx)
	if err != nil {
		return err
	}
	for _, vs := range m.services {
		for _, host := range vs.GetHosts() {
			e.carry[host] += e.o.Rate * d.Seconds()
			n := int(e.carry[host])
			e.carry[host] -= float64(n)
			for range n {
				dec := Route(m.services, Request{Host: host, Path: "/"}, e.rng)
				if !dec.Found {
					continue
				}
				e.serve(m, dec.To, false)
				for _, copied := range dec.Mirrors {
					e.serve(m, copied, true)
				}
			}
		}
	}
	return nil
}

func (e *Emulator) read(ctx context.Context) (*mesh, error) {
	in := client.InNamespace(e.o.Namespace)
	var vss istiov1.VirtualServiceList
	var drs istiov1.DestinationRuleList
	var svcs corev1.ServiceList
	var pods corev1.PodList
	for _, l := range []client.ObjectList{&vss, &drs, &svcs, &pods} {
		if err := e.reader.List(ctx, l, in); err != nil {
			return nil, fmt.Errorf("emulator: list: %w", err)
		}
	}
	m := &mesh{subsets: map[string]map[string]map[string]string{}, svcs: map[string]*corev1.Service{}, pods: pods.Items}
	for _, vs := range vss.Items {
		m.services = append(m.services, &vs.Spec)
	}
	for _, dr := range drs.Items {
		host := shortHost(dr.Spec.GetHost())
		m.subsets[host] = map[string]map[string]string{}
		for _, s := range dr.Spec.GetSubsets() {
			m.subsets[host][s.GetName()] = s.GetLabels()
		}
	}
	for i := range svcs.Items {
		m.svcs[svcs.Items[i].Name] = &svcs.Items[i]
	}
	return m, nil
}

// serve answers one request at dst as the pod it reaches behaves. A copy
// (mirrored) is reported as Istio reports one: only by the receiving
// sidecar (reporter destination, the Service from the inbound cluster's
// metadata, so without the -shadow host), and not at all when no Ready pod
// receives it; the sending side has no series for copies
// (istio/istio#23496), and their answers are dropped.
func (e *Emulator) serve(m *mesh, dst Destination, copied bool) {
	host := shortHost(dst.Host)
	ns := e.o.Namespace
	service := host + "." + ns + ".svc.cluster.local"
	reporter := "source"
	if copied {
		if e.podFor(m, host, dst.Subset) == nil {
			return
		}
		reporter = "destination"
	}
	lv := map[string]string{
		"reporter": reporter, "source_workload": "loadgen", "source_workload_namespace": ns,
		"destination_workload": "unknown", "destination_workload_namespace": ns,
		"destination_service": service, "destination_service_name": host, "destination_service_namespace": ns,
		"request_protocol": "http", "response_code": "503", "response_flags": "UH",
	}
	latency := 1.0
	if pod := e.podFor(m, host, dst.Subset); pod != nil {
		errRate, ms := behaviour(pod)
		lv["destination_workload"] = workload(pod)
		lv["response_flags"] = "-"
		lv["response_code"] = "200"
		if e.rng.Float64() < errRate {
			lv["response_code"] = "500"
		}
		latency = ms * (0.5 + e.rng.ExpFloat64()*0.5)
	}
	e.requests.With(lv).Inc()
	e.duration.With(lv).Observe(latency)
}

// podFor picks a Ready pod behind a Service, within a subset if named.
func (e *Emulator) podFor(m *mesh, host, subset string) *corev1.Pod {
	svc, ok := m.svcs[host]
	if !ok || len(svc.Spec.Selector) == 0 {
		return nil
	}
	sel := maps.Clone(svc.Spec.Selector)
	if subset != "" {
		ls, ok := m.subsets[host][subset]
		if !ok {
			return nil
		}
		maps.Copy(sel, ls)
	}
	selector := labels.SelectorFromSet(sel)
	var ready []*corev1.Pod
	for i := range m.pods {
		p := &m.pods[i]
		if p.DeletionTimestamp == nil && isReady(p) && selector.Matches(labels.Set(p.Labels)) {
			ready = append(ready, p)
		}
	}
	if len(ready) == 0 {
		return nil
	}
	return ready[e.rng.IntN(len(ready))]
}

func isReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
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

func shortHost(h string) string {
	name, _, _ := strings.Cut(h, ".")
	return name
}
