package v1alpha1

import (
	"encoding/json"
	"fmt"
	"hash/fnv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// RolloutStatus is the observed progress of a Rollout. Progress is data
// (current step, when it started, revisions); its meaning is in Conditions,
// and Phase is derived from them for display, never read back as input.
type RolloutStatus struct {
	// ObservedGeneration is the spec generation this status describes.
	// +kubebuilder:validation:Minimum=0
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
	// At most 100, the most steps a Rollout has.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	CurrentStepIndex *int32 `json:"currentStepIndex,omitempty"`

	// StepStartedAt is when the current step started; pause deadlines count
	// from it, so a restarted controller keeps them.
	// +optional
	StepStartedAt *metav1.Time `json:"stepStartedAt,omitempty"`

	// CanaryWeight is the share of the managed routes' traffic, in percent,
	// that goes to the canary.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	CanaryWeight int32 `json:"canaryWeight,omitempty"`

	// StableRevision is the hash of the pod template running in primary.
	// +optional
	StableRevision string `json:"stableRevision,omitempty"`

	// CanaryRevision is the hash of the pod template being rolled out: the
	// target's, or, rolling back through the steps, the revision rolled back
	// to.
	// +optional
	CanaryRevision string `json:"canaryRevision,omitempty"`
	// CanaryWorkload names the Deployment whose pods take the canary's
	// traffic: the target, or <name>-rollback while a rollback goes through
	// the steps. Analysis arguments that name the canary's workload take it
	// with valueFrom.fieldRef.fieldPath: status.canaryWorkload.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	CanaryWorkload string `json:"canaryWorkload,omitempty"`

	// StepsHash identifies the steps the rollout of CanaryRevision runs; a
	// change of spec.steps mid-rollout restarts it from the first step.
	// +kubebuilder:validation:MaxLength=16
	// +optional
	StepsHash string `json:"stepsHash,omitempty"`

	// Promoting is set once every step of CanaryRevision is done and primary
	// may take its template: primary never runs a revision that status does
	// not call stable or promoting.
	// +optional
	Promoting bool `json:"promoting,omitempty"`

	// BackgroundAttempt counts the background analyses of this rollout that
	// ended inconclusive and that a person chose to go on from; each starts a
	// new background AnalysisRun.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=2147483647
	// +optional
	BackgroundAttempt int32 `json:"backgroundAttempt,omitempty"`

	// StartedAt is when the rollout of CanaryRevision started (or was last
	// retried); the progress deadline counts from it.
	// +optional
	StartedAt *metav1.Time `json:"startedAt,omitempty"`

	// CanaryNotReadySince is when the canary was last seen not Ready, or was
	// scaled up; the progress deadline counts from it.
	// +optional
	CanaryNotReadySince *metav1.Time `json:"canaryNotReadySince,omitempty"`

	// Abort is set when the rollout of CanaryRevision was aborted: traffic is
	// back on stable and the canary is scaled down until a retry or a new
	// revision.
	// +optional
	Abort *RolloutAbort `json:"abort,omitempty"`

	// ObservedRequests holds the value of each request annotation the
	// controller has acted on; an annotation whose value differs is pending.
	// +optional
	ObservedRequests Requests `json:"observedRequests,omitempty"`

	// Analysis explains the verdicts of the current (or last) rollout's
	// analyses, one entry per AnalysisRun.
	// +kubebuilder:validation:MaxItems=101
	// +optional
	Analysis []RolloutAnalysis `json:"analysis,omitempty"`

	// Rollback, while set, pins the Rollout on a revision rolled back to.
	// +optional
	Rollback *RolloutRollback `json:"rollback,omitempty"`

	// RollbackRequest is the answer to the last rollback request.
	// +optional
	RollbackRequest *RollbackRequestStatus `json:"rollbackRequest,omitempty"`

	// Rollbacks counts, per revision, the rollouts aborted and the
	// rollbacks made from it; the most recently counted last.
	// +kubebuilder:validation:MaxItems=50
	// +optional
	Rollbacks []RevisionRollbacks `json:"rollbacks,omitempty"`

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

// RolloutAbort says why a rollout was aborted.
type RolloutAbort struct {
	// Reason is the outcome that aborted it, such as AbortedByUser or AnalysisFailed.
	Reason string `json:"reason"`
	// Message explains it.
	Message string `json:"message"`
}

// Requests are people's runtime requests, written as annotations on the
// Rollout (which GitOps tools leave alone) by `kubectl tug`, never as spec
// edits. Each value is an opaque token, such as a timestamp; writing a new
// token makes a new request.
type Requests struct {
	// Promote moves past the current step.
	// +optional
	Promote string `json:"promote,omitempty"`
	// PromoteFull skips the remaining steps and promotes.
	// +optional
	PromoteFull string `json:"promoteFull,omitempty"`
	// Abort sends all traffic back to stable and scales the canary down.
	// +optional
	Abort string `json:"abort,omitempty"`
	// Retry starts an aborted rollout again from the first step.
	// +optional
	Retry string `json:"retry,omitempty"`
	// Rollback goes back to a revision from history and pins the Rollout
	// there; it is the id of the request in the tugboat.dev/rollback
	// annotation (a RollbackRequest as JSON).
	// +kubebuilder:validation:MaxLength=128
	// +optional
	Rollback string `json:"rollback,omitempty"`
	// RollbackCancel lifts a rollback's pin.
	// +kubebuilder:validation:MaxLength=128
	// +optional
	RollbackCancel string `json:"rollbackCancel,omitempty"`
}

// Annotations through which people steer a Rollout. Request annotations hold
// a new token per request; AnnotationPaused is a level: present and "true"
// holds the rollout where it is until removed.
const (
	AnnotationPromote     = "tugboat.dev/promote"
	AnnotationPromoteFull = "tugboat.dev/promote-full"
	AnnotationAbort       = "tugboat.dev/abort"
	AnnotationRetry       = "tugboat.dev/retry"
	AnnotationPaused      = "tugboat.dev/paused"
	// AnnotationRollback holds a RollbackRequest as JSON.
	AnnotationRollback       = "tugboat.dev/rollback"
	AnnotationRollbackCancel = "tugboat.dev/rollback-cancel"
)

// PendingRequests returns the request annotations of ro that the controller
// has not acted on yet.
func (ro *Rollout) PendingRequests() Requests {
	pending := func(key, observed string) string {
		if v := ro.Annotations[key]; v != "" && v != observed {
			return v
		}
		return ""
	}
	o := ro.Status.ObservedRequests
	return Requests{
		Promote:     pending(AnnotationPromote, o.Promote),
		PromoteFull: pending(AnnotationPromoteFull, o.PromoteFull),
		Abort:       pending(AnnotationAbort, o.Abort),
		Retry:       pending(AnnotationRetry, o.Retry),
		Rollback: func() string {
			if v := ro.Annotations[AnnotationRollback]; v != "" && RollbackRequestID(v) != o.Rollback {
				return RollbackRequestID(v)
			}
			return ""
		}(),
		RollbackCancel: pending(AnnotationRollbackCancel, o.RollbackCancel),
	}
}

// RollbackRequestID is the id a tugboat.dev/rollback annotation's value is
// known by: the request's own, or, for a value that is not a request, a hash
// of it (so that it is answered once, as refused).
func RollbackRequestID(value string) string {
	var req RollbackRequest
	if err := json.Unmarshal([]byte(value), &req); err == nil && req.ID != "" && len(req.ID) <= 64 {
		return req.ID
	}
	h := fnv.New64a()
	h.Write([]byte(value))
	return fmt.Sprintf("invalid-%016x", h.Sum64())
}

// PausedByUser reports whether a person has paused the rollout.
func (ro *Rollout) PausedByUser() bool { return ro.Annotations[AnnotationPaused] == "true" }

func init() {
	SchemeBuilder.Register(&Rollout{}, &RolloutList{})
}
