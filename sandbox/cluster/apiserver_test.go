package cluster_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"

	"github.com/tugboatdev/tugboat/sandbox/cluster"
)

// TestCRDsPublishFieldDocs checks that the API server serves field
// descriptions, as `kubectl explain` reads them, for the main fields.
func TestCRDsPublishFieldDocs(t *testing.T) {
	env := cluster.Start(t)
	dc, err := discovery.NewDiscoveryClientForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	// The API server publishes a CRD's OpenAPI document a moment after the
	// CRD is established.
	var raw []byte
	err = wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		paths, err := dc.OpenAPIV3().Paths()
		if err != nil {
			return false, nil
		}
		gv, ok := paths["apis/tugboat.dev/v1alpha1"]
		if !ok {
			return false, nil
		}
		if raw, err = gv.Schema("application/json"); err != nil {
			return false, nil
		}
		return strings.Contains(string(raw), "dev.tugboat.v1alpha1.AnalysisRun"), nil
	})
	if err != nil {
		t.Fatalf("no OpenAPI v3 document for tugboat.dev/v1alpha1: %v", err)
	}
	var doc struct {
		Components struct {
			Schemas map[string]schema `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ kind, path string }{
		{"Rollout", "spec.targetRef.name"},
		{"Rollout", "spec.service.port"},
		{"Rollout", "spec.trafficRouting.istio.virtualService.routes"},
		{"Rollout", "spec.trafficRouting.istio.destinationRule"},
		{"Rollout", "spec.steps.setWeight"},
		{"Rollout", "spec.steps.pause.duration"},
		{"Rollout", "spec.steps.analysis.templates.templateName"},
		{"Rollout", "spec.steps.setHeaderRoute.match.headerValue.exact"},
		{"Rollout", "spec.analysis.startingStep"},
		{"Rollout", "spec.windows.allow.schedule"},
		{"Rollout", "spec.rollback.revisionHistoryLimit"},
		{"Rollout", "spec.progressDeadlineSeconds"},
		{"Rollout", "status.currentStepIndex"},
		{"Rollout", "status.conditions"},
		{"AnalysisTemplate", "spec.metrics.successCondition"},
		{"AnalysisTemplate", "spec.metrics.onNoData"},
		{"AnalysisTemplate", "spec.metrics.provider.prometheus.query"},
		{"ClusterAnalysisTemplate", "spec.metrics.failureLimit"},
		{"AnalysisRun", "status.metricResults"},
	} {
		t.Run(tc.kind+"."+tc.path, func(t *testing.T) {
			s, ok := doc.Components.Schemas["dev.tugboat.v1alpha1."+tc.kind]
			if !ok {
				t.Fatalf("no schema for %s", tc.kind)
			}
			for _, field := range strings.Split(tc.path, ".") {
				if s.Items != nil {
					s = *s.Items
				}
				next, ok := s.Properties[field]
				if !ok {
					t.Fatalf("%s: no field %q", tc.path, field)
				}
				s = next
			}
			if len(strings.Fields(s.Description)) < 3 {
				t.Errorf("%s.%s: description %q is missing or too short", tc.kind, tc.path, s.Description)
			}
		})
	}
}

type schema struct {
	Description string            `json:"description"`
	Properties  map[string]schema `json:"properties"`
	Items       *schema           `json:"items"`
}
