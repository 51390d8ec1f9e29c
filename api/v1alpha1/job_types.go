package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime"
)

// JobMetric is a Kubernetes Job whose outcome is the measurement: Argo
// Rollouts' JobMetric (a smoke test, a load test). Each measurement creates
// one Job in the AnalysisRun's namespace, owned by the run (deleted with it,
// and stopped when the run ends); the measurement is Successful when the Job
// completes and Failed when it fails. {{args.NAME}} is replaced in every
// string of the spec; arguments from Secrets cannot stand in it (use an
// env valueFrom.secretKeyRef).
//
// A job metric amounts to creating pods in the namespace, so it runs only in
// a namespace labelled tugboat.dev/analysis-jobs=true, as the namespace's
// default service account or one labelled the same. Its Job may not be
// suspended, set ttlSecondsAfterFinished or manualSelector, pick a node,
// share host namespaces, mount host paths or run privileged; without
// activeDeadlineSeconds it is given an hour (at most a day).
//
// The spec is kept as written and checked when the run first measures (its
// fields strictly, then by the API server as it creates the Job): the schema
// of a whole pod template would make each analysis CRD most of a megabyte.
type JobMetric struct {
	// Metadata are labels and annotations for the Job.
	// +optional
	Metadata JobMetadata `json:"metadata,omitempty"`
	// Spec is the Job's spec (batch/v1 JobSpec).
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Type=object
	Spec runtime.RawExtension `json:"spec"`
}

// JobMetadata are labels and annotations added to a metric's Jobs.
type JobMetadata struct {
	// +kubebuilder:validation:MaxProperties=32
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
	// +kubebuilder:validation:MaxProperties=32
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
}
