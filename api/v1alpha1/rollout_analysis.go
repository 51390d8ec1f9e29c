package v1alpha1

import (
	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// RolloutAnalysis explains one analysis of the current (or last) rollout: a
// step's analysis or the background analysis, its verdict, and each metric's
// part in it.
//
// It is written when a verdict changes (a metric or the run reaches a new
// phase, or a failure, inconclusive or error is counted) and refreshed
// whenever the Rollout's status is written for another reason. Successful
// measurements alone never cost a write, so between writes the counters and
// value may trail the AnalysisRun, which has them live.
type RolloutAnalysis struct {
	// Run is the AnalysisRun's name.
	Run string `json:"run"`
	// Step is the index of the analysis step; absent for background analysis.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=99
	// +optional
	Step *int32 `json:"step,omitempty"`
	// Background is true for the analysis that runs alongside the steps.
	// +optional
	Background bool `json:"background,omitempty"`
	// Phase is the run's verdict so far.
	// +optional
	Phase argo.AnalysisPhase `json:"phase,omitempty"`
	// Message explains the verdict.
	// +optional
	Message string `json:"message,omitempty"`
	// Metrics explain each metric's part in the verdict, one per metric of
	// the AnalysisRun (which has at most 64).
	// +kubebuilder:validation:MaxItems=64
	// +optional
	Metrics []MetricExplanation `json:"metrics,omitempty"`
}

// MetricExplanation is one metric's verdict, with what it was measured by and
// against: the query as sent (Secret values masked), the last value, the
// conditions, the counters against their limits, and since when.
type MetricExplanation struct {
	// Name of the metric.
	Name string `json:"name"`
	// Phase of the metric.
	// +optional
	Phase argo.AnalysisPhase `json:"phase,omitempty"`
	// Since is when the metric reached Phase.
	// +optional
	Since *metav1.Time `json:"since,omitempty"`
	// DryRun metrics are reported but never decide the verdict.
	// +optional
	DryRun bool `json:"dryRun,omitempty"`
	// Query is the resolved query, Secret values masked.
	// +optional
	Query string `json:"query,omitempty"`
	// Value is the last measured value.
	// +optional
	Value string `json:"value,omitempty"`
	// SuccessCondition and FailureCondition are the metric's conditions over
	// result.
	// +optional
	SuccessCondition string `json:"successCondition,omitempty"`
	// +optional
	FailureCondition string `json:"failureCondition,omitempty"`
	// Message explains the last measurement, such as a query error or no data.
	// +optional
	Message string `json:"message,omitempty"`
	// Counters of measurements so far.
	// +optional
	Counters MetricCounters `json:"counters,omitempty"`
	// Limits the counters are held against.
	// +optional
	Limits *MetricLimits `json:"limits,omitempty"`
}

// MetricCounters count a metric's measurements by outcome. Each is between 0
// and 2147483647.
type MetricCounters struct {
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=2147483647
	// +optional
	Successful int32 `json:"successful,omitempty"`
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=2147483647
	// +optional
	Failed int32 `json:"failed,omitempty"`
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=2147483647
	// +optional
	Inconclusive int32 `json:"inconclusive,omitempty"`
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=2147483647
	// +optional
	Error int32 `json:"error,omitempty"`
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=2147483647
	// +optional
	ConsecutiveError int32 `json:"consecutiveError,omitempty"`
}

// MetricLimits are a metric's resolved limits: more than FailureLimit
// failures fail it, more than InconclusiveLimit inconclusives make it
// inconclusive, more than ConsecutiveErrorLimit errors in a row make it an
// error. Count is the number of measurements to take (0: until the run ends).
// FailureLimit is -1 when failures are not limited (the metric then passes
// on consecutive successes); the others are between 0 and 2147483647.
type MetricLimits struct {
	// +kubebuilder:validation:Minimum=-1
	// +kubebuilder:validation:Maximum=2147483647
	FailureLimit int32 `json:"failureLimit"`
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=2147483647
	InconclusiveLimit int32 `json:"inconclusiveLimit"`
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=2147483647
	ConsecutiveErrorLimit int32 `json:"consecutiveErrorLimit"`
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=2147483647
	// +optional
	Count int32 `json:"count,omitempty"`
}
