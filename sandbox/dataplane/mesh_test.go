package dataplane

import (
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestResolve(t *testing.T) {
	for _, tt := range []struct {
		host string
		want service
		ok   bool
	}{
		{"shop", service{"prod", "shop"}, true},
		{"shop.pr-42", service{"pr-42", "shop"}, true},
		{"shop.pr-42.svc", service{"pr-42", "shop"}, true},
		{"shop.pr-42.svc.cluster.local", service{"pr-42", "shop"}, true},
		{"Shop.PR-42.svc.cluster.local", service{"pr-42", "shop"}, true},
		{"shop.example.com", service{}, false},
		{"shop.pr-42.svc.other.domain", service{}, false},
	} {
		t.Run(tt.host, func(t *testing.T) {
			got, ok := resolve(tt.host, "prod")
			if got != tt.want || ok != tt.ok {
				t.Errorf("resolve(%q) = %v, %v; want %v, %v", tt.host, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestEnvoyHeaders(t *testing.T) {
	req := Request{Host: "web.prod.svc.cluster.local", Method: "POST", Path: "/cart", Headers: map[string]string{"cookie": "s=1"}}
	want := map[string]string{":authority": "web.prod.svc.cluster.local", ":method": "POST", ":path": "/cart", ":scheme": "http", "cookie": "s=1"}
	if diff := cmp.Diff(want, envoyHeaders(req, false)); diff != "" {
		t.Errorf("production request (-want +got):\n%s", diff)
	}
	want[":authority"] = "web.prod.svc.cluster.local-shadow"
	if diff := cmp.Diff(want, envoyHeaders(req, true)); diff != "" {
		t.Errorf("copy (-want +got):\n%s", diff)
	}
	req.Host = "web:8080"
	if got := envoyHeaders(req, true)[":authority"]; got != "web-shadow:8080" {
		t.Errorf("copy with a port: %q, want the suffix before the port", got)
	}
}

// TestLoadMix: the load is mostly GET with some HEAD and POST, a share of
// it carrying credentials, and the same for the same seed.
func TestLoadMix(t *testing.T) {
	draw := func() ([]Request, map[string]int) {
		rng := rand.New(rand.NewPCG(5, 6))
		var reqs []Request
		counts := map[string]int{}
		for range 10000 {
			r := request(rng, "web", "prod")
			reqs = append(reqs, r)
			counts[r.Method]++
			for _, h := range sensitiveHeaders {
				if _, ok := r.Headers[h]; ok {
					counts[h]++
				}
			}
			if r.Host != "web" && r.Host != "web.prod.svc.cluster.local" {
				t.Fatalf("host %q", r.Host)
			}
		}
		return reqs, counts
	}
	reqs, counts := draw()
	for key, want := range map[string]int{"GET": 7500, "HEAD": 1000, "POST": 1500, "authorization": 4000, "cookie": 4000, "x-api-key": 2000, "x-tenant-token": 6000} {
		if got := counts[key]; got < want*9/10 || got > want*11/10 {
			t.Errorf("%s: %d of 10000, want %d±10%%", key, got, want)
		}
	}
	if again, _ := draw(); !cmp.Equal(reqs, again) {
		t.Error("the same seed drew another load")
	}
}

// TestPodForSubsets: a subset comes from the DestinationRule in the
// client's namespace, else from the one in the Service's.
func TestPodForSubsets(t *testing.T) {
	pod := func(name, version string) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: "pr-1", Name: name, Labels: map[string]string{"app": "web", "version": version}},
			Status:     corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}},
		}
	}
	web := service{"pr-1", "web"}
	m := &mesh{ns: "prod",
		svcs: map[service]*corev1.Service{web: {Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"}}}},
		pods: map[string][]*corev1.Pod{"pr-1": {pod("web-v1", "v1"), pod("web-v2", "v2")}},
		rules: map[service]map[string]subsets{web: {
			"pr-1": {"canary": {"version": "v2"}},
			"prod": {"canary": {"version": "v1"}},
		}},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	if p := m.podFor(rng, web, "canary"); p == nil || p.Name != "web-v1" {
		t.Errorf("with the client's rule: %v, want web-v1", p)
	}
	delete(m.rules[web], "prod")
	if p := m.podFor(rng, web, "canary"); p == nil || p.Name != "web-v2" {
		t.Errorf("with the Service's rule: %v, want web-v2", p)
	}
	if p := m.podFor(rng, web, "stable"); p != nil {
		t.Errorf("an undefined subset reached %s", p.Name)
	}
	if p := m.podFor(rng, service{"prod", "web"}, ""); p != nil {
		t.Errorf("a Service of the same name elsewhere reached %s", p.Name)
	}
}
