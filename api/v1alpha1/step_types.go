package v1alpha1

import (
	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// The step pieces below have Argo Rollouts' field names and shapes. They are
// Tugboat's own types, not Argo's, because the schema bounds every list and
// string in them: the API server refuses CEL rules over unbounded values.

// Pause holds a rollout for a duration, or until a person promotes it.
type Pause struct {
	// Duration is a number of seconds or a duration such as 30s, 5m or 1h,
	// from 0 to 2147483647 seconds (about 68 years, the most an int32 holds).
	// Without it the rollout waits for `kubectl tug promote`.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XIntOrString
	// +kubebuilder:validation:XValidation:rule="type(self) == int ? self >= 0 && self <= 2147483647 : self.matches('^[0-9]+$') ? size(self) <= 10 && int(self) <= 2147483647 : self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') && duration(self) <= duration('2147483647s')",message="must be a number of seconds or a duration such as 30s, 5m or 1h, from 0 to 2147483647 seconds"
	// +optional
	Duration *intstr.IntOrString `json:"duration,omitempty"`
}

// Analysis runs analysis templates and waits for their verdict.
type Analysis struct {
	// Templates whose metrics are measured together in one AnalysisRun.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	Templates []AnalysisTemplateRef `json:"templates"`
	// Args give the templates' arguments their values.
	// +kubebuilder:validation:MaxItems=64
	// +listType=map
	// +listMapKey=name
	// +optional
	Args []argo.AnalysisRunArgument `json:"args,omitempty"`
	// DryRun metrics are measured and reported but never change the verdict.
	// +kubebuilder:validation:MaxItems=32
	// +optional
	DryRun []argo.DryRun `json:"dryRun,omitempty"`
	// MeasurementRetention bounds how many measurements of a metric are kept.
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:XValidation:rule="self.all(r, r.limit >= 0 && r.limit <= 2147483647)",message="measurementRetention limit must be between 0 and 2147483647"
	// +optional
	MeasurementRetention []argo.MeasurementRetention `json:"measurementRetention,omitempty"`
	// AnalysisRunMetadata are labels and annotations added to the AnalysisRuns.
	// +optional
	AnalysisRunMetadata *argo.AnalysisRunMetadata `json:"analysisRunMetadata,omitempty"`
}

// BackgroundAnalysis runs from a step until the rollout ends; a failed
// verdict aborts the rollout at whatever step it is on.
type BackgroundAnalysis struct {
	Analysis `json:",inline"`
	// StartingStep is the index of the step the analysis starts at (default 0).
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=99
	// +optional
	StartingStep *int32 `json:"startingStep,omitempty"`
}

// AnalysisTemplateRef names an AnalysisTemplate, or a ClusterAnalysisTemplate
// when ClusterScope is true.
type AnalysisTemplateRef struct {
	// TemplateName is the template's name.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	TemplateName string `json:"templateName"`
	// ClusterScope looks the name up among ClusterAnalysisTemplates.
	// +optional
	ClusterScope *bool `json:"clusterScope,omitempty"`
}

// SetHeaderRoute sends requests whose headers match to the canary.
type SetHeaderRoute struct {
	// Name of the route Tugboat adds to the VirtualService, ahead of the
	// managed routes. It must not be the name of a route the user owns.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`
	// Match lists the header conditions, all of which must hold. Without it
	// the route is removed.
	// +kubebuilder:validation:MaxItems=8
	// +optional
	Match []HeaderRoutingMatch `json:"match,omitempty"`
}

// HeaderRoutingMatch is a condition on one request header.
type HeaderRoutingMatch struct {
	// HeaderName is the name of the request header.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	HeaderName string `json:"headerName"`
	// HeaderValue is how the header's value must match.
	HeaderValue StringMatch `json:"headerValue"`
}

// StringMatch matches a string exactly, by prefix or by regular expression
// (RE2, as Envoy reads it). Exactly one field is set.
//
// +kubebuilder:validation:XValidation:rule="[has(self.exact), has(self.prefix), has(self.regex)].filter(x, x).size() == 1",message="set exactly one of exact, prefix or regex"
type StringMatch struct {
	// Exact is the value the string must equal.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Exact string `json:"exact,omitempty"`
	// Prefix is what the string must start with.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Prefix string `json:"prefix,omitempty"`
	// Regex is an RE2 expression the string must match.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Regex string `json:"regex,omitempty"`
}
