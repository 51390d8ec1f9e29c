package shadow

import (
	"slices"
	"testing"
)

func TestServiceNamesCoverEveryNameAClientUses(t *testing.T) {
	for _, tc := range []struct {
		host string
		want []string
	}{
		{"web", []string{"web", "web.prod", "web.prod.svc", "web.prod.svc.cluster.local"}},
		{"web.prod", []string{"web", "web.prod", "web.prod.svc", "web.prod.svc.cluster.local"}},
		{"web.prod.svc", []string{"web", "web.prod", "web.prod.svc", "web.prod.svc.cluster.local"}},
		{"web.prod.svc.cluster.local", []string{"web", "web.prod", "web.prod.svc", "web.prod.svc.cluster.local"}},
		// Another namespace's Service: its own namespace's clients reach it by
		// the short name, and their copies keep it.
		{"api.payments.svc.cluster.local", []string{"api", "api.payments", "api.payments.svc", "api.payments.svc.cluster.local"}},
		{"shop.example.com", []string{"shop.example.com"}},
	} {
		got := serviceNames(tc.host, "prod", "cluster.local")
		slices.Sort(got)
		if !slices.Equal(got, tc.want) {
			t.Errorf("serviceNames(%q) = %v, want %v", tc.host, got, tc.want)
		}
	}
}
