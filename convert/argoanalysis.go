package convert

import (
	"fmt"
	"slices"
	"sort"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

// tugboatProviders are the metric providers Tugboat measures with.
var tugboatProviders = []string{"prometheus", "web", "job"}

var templateReasons = map[string]string{
	"spec.metrics[].provider.prometheus.authentication.sigv4":  "Tugboat has no SigV4 authentication: put the Prometheus behind a proxy that signs, or read a token from a Secret (authentication.bearerToken)",
	"spec.metrics[].provider.prometheus.authentication.oauth2": "Tugboat has no OAuth2 authentication: read a token from a Secret (authentication.bearerToken)",
	"spec.metrics[].provider.web.authentication":               "Tugboat's web metrics have no OAuth2 or SigV4: send a token in a header from a Secret argument",
}

// argoTemplate converts an Argo AnalysisTemplate or ClusterAnalysisTemplate
// into Tugboat's, whose fields are Argo's: metrics whose provider Tugboat
// lacks are left out, and so is any field the round trip loses.
func (c *converter) argoTemplate(d *doc) error {
	var src argo.AnalysisTemplate // a ClusterAnalysisTemplate has the same shape
	if err := decode(d.raw, &src); err != nil {
		return err
	}
	d.converted = true
	t := newTracker(d.raw, templateReasons)
	m := meta(t, d.raw)

	rawSpec, _ := deepCopy(d.raw["spec"]).(map[string]any)
	rawMetrics, _ := rawSpec["metrics"].([]any)
	var kept []any
	var keptIdx []int
	for i, rm := range rawMetrics {
		mm, _ := rm.(map[string]any)
		prov, _ := mm["provider"].(map[string]any)
		var others []string
		ok := false
		for k := range prov {
			if slices.Contains(tugboatProviders, k) {
				ok = true
			} else {
				others = append(others, k)
			}
		}
		sort.Strings(others)
		if !ok {
			t.use(fmt.Sprintf("spec.metrics[%d]", i))
			c.find(d, fmt.Sprintf("spec.metrics[%d].provider", i), "metric %s measures with %v; Tugboat measures with prometheus, web and job only: the metric was left out", mm["name"], others)
			continue
		}
		kept, keptIdx = append(kept, rm), append(keptIdx, i)
	}
	if len(kept) == 0 {
		c.find(d, "spec.metrics", "no metric was carried over: no template was made")
		return nil
	}
	rawSpec["metrics"] = kept

	var spec v1alpha1.AnalysisTemplateSpec
	if err := decode(rawSpec, &spec); err != nil {
		return err
	}
	out, err := object(struct {
		APIVersion string                        `json:"apiVersion"`
		Kind       string                        `json:"kind"`
		Spec       v1alpha1.AnalysisTemplateSpec `json:"spec"`
	}{v1alpha1.GroupVersion.String(), d.kind(), spec})
	if err != nil {
		return err
	}
	out.Object["metadata"] = m
	outSpec, _ := out.Object["spec"].(map[string]any)
	srcSpec, _ := d.raw["spec"].(map[string]any)
	for k, v := range srcSpec {
		if k != "metrics" {
			t.useSame("spec."+k, v, outSpec[k])
		}
	}
	outMetrics, _ := outSpec["metrics"].([]any)
	for j, i := range keptIdx {
		t.useSame(fmt.Sprintf("spec.metrics[%d]", i), rawMetrics[i], outMetrics[j])
	}
	d.out = append(d.out, out)
	t.leftovers(c, d)
	return nil
}
