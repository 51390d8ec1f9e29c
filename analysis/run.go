package analysis

import (
	"errors"
	"fmt"
	"strings"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

// RunSpec merges templates into the spec of one AnalysisRun: their metrics
// side by side (names must not clash), their arguments with the values the
// caller gives overriding the templates' defaults. Every argument must end
// with a value or a Secret reference.
func RunSpec(templates []v1alpha1.AnalysisTemplateSpec, given []argo.Argument) (v1alpha1.AnalysisRunSpec, error) {
	var spec v1alpha1.AnalysisRunSpec
	var errs []error
	seen := map[string]bool{}
	args := map[string]argo.Argument{}
	var order []string
	for _, t := range templates {
		for _, m := range t.Metrics {
			if seen[m.Name] {
				errs = append(errs, fmt.Errorf("metric %q is defined by more than one template", m.Name))
				continue
			}
			seen[m.Name] = true
			spec.Metrics = append(spec.Metrics, *m.DeepCopy())
		}
		for _, a := range t.Args {
			if _, ok := args[a.Name]; !ok {
				order = append(order, a.Name)
				args[a.Name] = *a.DeepCopy()
			} else if a.Value != nil || a.ValueFrom != nil {
				args[a.Name] = *a.DeepCopy()
			}
		}
		spec.DryRun = append(spec.DryRun, t.DryRun...)
		spec.MeasurementRetention = append(spec.MeasurementRetention, t.MeasurementRetention...)
	}
	for _, a := range given {
		if _, ok := args[a.Name]; !ok {
			order = append(order, a.Name)
		}
		args[a.Name] = *a.DeepCopy()
	}
	for _, name := range order {
		a := args[name]
		if a.Value == nil && (a.ValueFrom == nil || a.ValueFrom.SecretKeyRef == nil) {
			errs = append(errs, fmt.Errorf("argument %q has no value", name))
		}
		spec.Args = append(spec.Args, a)
	}
	return spec, errors.Join(errs...)
}

// DryRunMetrics names the metrics of a run that are dry runs: reported, never
// deciding the verdict.
func DryRunMetrics(spec v1alpha1.AnalysisRunSpec) map[string]bool {
	out := map[string]bool{}
	for _, d := range spec.DryRun {
		for _, m := range spec.Metrics {
			if d.MetricName == "*" || d.MetricName == m.Name {
				out[m.Name] = true
			}
		}
	}
	return out
}

// FieldOf reads a field of obj (a Rollout or a Preview, named kind in
// errors) by path, for an argument's valueFrom.fieldRef: metadata.namespace,
// spec.service.name, metadata.labels['app'] and the like.
func FieldOf(obj runtime.Object, kind, path string) (string, error) {
	if m, ok := obj.(metav1.Object); ok {
		if k, ok := strings.CutPrefix(path, "metadata.labels['"); ok {
			return m.GetLabels()[strings.TrimSuffix(k, "']")], nil
		}
		if k, ok := strings.CutPrefix(path, "metadata.annotations['"); ok {
			return m.GetAnnotations()[strings.TrimSuffix(k, "']")], nil
		}
	}
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return "", err
	}
	v, found, err := unstructured.NestedFieldNoCopy(u, strings.Split(path, ".")...)
	if err != nil || !found {
		return "", fmt.Errorf("field %s not found in the %s", path, kind)
	}
	return fmt.Sprint(v), nil
}
