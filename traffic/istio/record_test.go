package istio

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestRecordOfAddedRoutes(t *testing.T) {
	long := strings.Repeat("r", 253) // the longest Rollout name
	tests := []struct {
		name        string
		annotations map[string]string
		owner       string
		wantOwned   []string
		wantErr     error
		// record is what owner has added now; wantAnnotations the result.
		record          []string
		wantAnnotations map[string]string
	}{{
		name:            "the first route added creates the record",
		owner:           "reviews",
		record:          []string{"beta", "shadow"},
		wantAnnotations: map[string]string{annotationAddedRoutes: `{"reviews":["beta","shadow"]}`},
	}, {
		name:            "each Rollout owns only its own routes, and keeps the others' entries",
		annotations:     map[string]string{annotationAddedRoutes: `{"ratings":["gamma"],"reviews":["beta"]}`, "team": "checkout"},
		owner:           "reviews",
		wantOwned:       []string{"beta"},
		wantAnnotations: map[string]string{annotationAddedRoutes: `{"ratings":["gamma"]}`, "team": "checkout"},
	}, {
		name:            "the last Rollout at rest removes the record",
		annotations:     map[string]string{annotationAddedRoutes: `{"reviews":["beta"]}`},
		owner:           "reviews",
		wantOwned:       []string{"beta"},
		wantAnnotations: map[string]string{},
	}, {
		name:            "a Rollout with no entry owns nothing",
		annotations:     map[string]string{annotationAddedRoutes: `{"ratings":["gamma"]}`},
		owner:           "reviews",
		record:          []string{"beta"},
		wantAnnotations: map[string]string{annotationAddedRoutes: `{"ratings":["gamma"],"reviews":["beta"]}`},
	}, {
		name:            "the old record's routes are every Rollout's, and it is dropped at the first write",
		annotations:     map[string]string{annotationHeaderRoutes: "beta,shadow", annotationAddedRoutes: `{"reviews":["delta"]}`},
		owner:           "reviews",
		wantOwned:       []string{"beta", "shadow", "delta"},
		record:          []string{"beta"},
		wantAnnotations: map[string]string{annotationAddedRoutes: `{"reviews":["beta"]}`},
	}, {
		name:            "a Rollout name too long for an annotation key is a record key",
		annotations:     map[string]string{annotationAddedRoutes: `{"` + long + `":["beta"]}`},
		owner:           long,
		wantOwned:       []string{"beta"},
		record:          []string{"gamma"},
		wantAnnotations: map[string]string{annotationAddedRoutes: `{"` + long + `":["gamma"]}`},
	}, {
		name:            "an empty name owns no route (it would match the user's unnamed ones)",
		annotations:     map[string]string{annotationAddedRoutes: `{"reviews":["","beta"]}`},
		owner:           "reviews",
		wantOwned:       []string{"beta"},
		wantAnnotations: map[string]string{},
	}, {
		name:            "an unreadable record is an error and is left as it is; the old record still counts",
		annotations:     map[string]string{annotationAddedRoutes: `reviews=beta`, annotationHeaderRoutes: "shadow"},
		owner:           "reviews",
		wantOwned:       []string{"shadow"},
		wantErr:         ErrRecordUnreadable,
		wantAnnotations: map[string]string{annotationAddedRoutes: `reviews=beta`, annotationHeaderRoutes: "shadow"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vs := &istiov1.VirtualService{ObjectMeta: metav1.ObjectMeta{Namespace: "prod", Name: "gateway", Annotations: tt.annotations}}
			owned, err := ownedRoutes(vs, tt.owner)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ownedRoutes() error = %v, want %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.wantOwned, owned, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("ownedRoutes() (-want +got):\n%s", diff)
			}
			if err := recordAdded(vs, tt.owner, tt.record); !errors.Is(err, tt.wantErr) {
				t.Fatalf("recordAdded() error = %v, want %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.wantAnnotations, vs.Annotations, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("annotations (-want +got):\n%s", diff)
			}
		})
	}
}
