package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// RolloutStatus is the observed progress of a Rollout. Progress is data
// (current step, when it started, revisions); its meaning is in Conditions,
// and Phase is derived from them for display, never read back as input.
type RolloutStatus struct {
	// ObservedGeneration is the spec generation this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Phase summarises the conditions for kubectl get: Healthy, Progressing,
	// Paused or Degraded. It is derived, never an input.
	// +optional
	Phase RolloutPhase `json:"phase,omitempty"`

	// Message explains the phase.
	// +optional
	Message string `json:"message,omitempty"`

	// CurrentStepIndex is the index of the step being run; absent at rest.
	// +optional
	CurrentStepIndex *int32 `json:"currentStepIndex,omitempty"`

	// StepStartedAt is when the current step started; pause deadlines count
	// from it, so a restarted controller keeps them.
	// +optional
	StepStartedAt *metav1.Time `json:"stepStartedAt,omitempty"`

	// CanaryWeight is the share of the managed routes' traffic, in percent,
	// that goes to the canary.
	// +optional
	CanaryWeight int32 `json:"canaryWeight,omitempty"`

	// StableRevision is the hash of the pod template running in primary.
	// +optional
	StableRevision string `json:"stableRevision,omitempty"`

	// CanaryRevision is the hash of the target's pod template being rolled out.
	// +optional
	CanaryRevision string `json:"canaryRevision,omitempty"`

	// Conditions: Ready, Reconciling and Stalled for kstatus-aware tools, plus
	// Tugboat's Progressing, Healthy and Paused.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// RolloutPhase is the one-word summary of a Rollout's conditions.
//
// +kubebuilder:validation:Enum=Healthy;Progressing;Paused;Degraded
type RolloutPhase string

// The phases a Rollout reports.
const (
	PhaseHealthy     RolloutPhase = "Healthy"
	PhaseProgressing RolloutPhase = "Progressing"
	PhasePaused      RolloutPhase = "Paused"
	PhaseDegraded    RolloutPhase = "Degraded"
)

// Condition types a Rollout reports. Ready, Reconciling and Stalled follow
// kstatus so that Flux and Argo CD read them right.
const (
	ConditionReady       = "Ready"
	ConditionReconciling = "Reconciling"
	ConditionStalled     = "Stalled"
	ConditionProgressing = "Progressing"
	ConditionHealthy     = "Healthy"
	ConditionPaused      = "Paused"
)

func init() {
	SchemeBuilder.Register(&Rollout{}, &RolloutList{})
}
