package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// RolloutRollback is a rollback that holds (or, with ThroughSteps, is on
// its way): primary serves Revision, an
// earlier revision from history, while the target's template is still
// Target, the one rolled back from. A GitOps tool keeps showing the target
// as in sync, and nothing fights. A new template on the target (the fix, or
// a revert to Revision) ends the pin, as does `kubectl tug rollback
// --cancel`.
type RolloutRollback struct {
	// Request is the id of the request that made it.
	// +kubebuilder:validation:MaxLength=128
	Request string `json:"request"`
	// Revision is the hash of the revision rolled back to; it is the stable
	// revision while the pin holds.
	// +kubebuilder:validation:MaxLength=64
	Revision string `json:"revision"`
	// Number is Revision's number in the history (kubectl tug history).
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=9007199254740991
	Number int64 `json:"number"`
	// From is the revision that was stable when the rollback was made.
	// +kubebuilder:validation:MaxLength=64
	From string `json:"from"`
	// Target is the target's revision the pin holds off: while the target's
	// template is this one, it is not rolled out.
	// +kubebuilder:validation:MaxLength=64
	Target string `json:"target"`
	// Reason is what the person who asked gave.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Reason string `json:"reason,omitempty"`
	// RequestedBy is the user the request names (kubectl tug records the
	// user it runs as; the API server's audit log can confirm it).
	// +kubebuilder:validation:MaxLength=512
	// +optional
	RequestedBy string `json:"requestedBy,omitempty"`
	// Since is when the rollback was made.
	Since metav1.Time `json:"since"`
	// ThroughSteps: the rollback is on its way, through the steps, with
	// Revision rolled out as a canary from history (further back than
	// spec.rollback.fastTrackRevisions); it holds once promoted. Stable is
	// still the revision rolled back from meanwhile.
	// +optional
	ThroughSteps bool `json:"throughSteps,omitempty"`
}

// RollbackRequestStatus is the controller's answer to the last rollback
// request: carried out, or refused and why.
type RollbackRequestStatus struct {
	// ID is the request's id.
	// +kubebuilder:validation:MaxLength=128
	ID string `json:"id"`
	// Accepted: the rollback was made (status.rollback shows it).
	Accepted bool `json:"accepted"`
	// Message says what was done, or why not.
	// +kubebuilder:validation:MaxLength=4096
	// +optional
	Message string `json:"message,omitempty"`
}

// RevisionRollbacks counts how often one revision was rolled back from:
// aborted by Tugboat (analysis, deadline) or a person, and rolled back from
// on request after it was promoted. Many rollbacks of one version across
// Rollouts point to a widespread problem (kubectl tug rollbacks).
type RevisionRollbacks struct {
	// Revision is the pod template hash.
	// +kubebuilder:validation:MaxLength=64
	Revision string `json:"revision"`
	// Images are its containers' images.
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=1024
	// +optional
	Images []string `json:"images,omitempty"`
	// Aborted counts the rollouts of this revision that were aborted.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=2147483647
	// +optional
	Aborted int32 `json:"aborted,omitempty"`
	// Requested counts the rollbacks made on request from this revision.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=2147483647
	// +optional
	Requested int32 `json:"requested,omitempty"`
}

// RollbackRequest is the value of the tugboat.dev/rollback annotation, as
// JSON: kubectl tug rollback writes it; a new ID makes a new request.
type RollbackRequest struct {
	// ID makes the request distinct.
	ID string `json:"id"`
	// ToRevision is the history number to go back to; 0 means the revision
	// that was stable before the one serving.
	ToRevision int64 `json:"toRevision,omitempty"`
	// Reason and User are recorded with the rollback.
	Reason string `json:"reason,omitempty"`
	User   string `json:"user,omitempty"`
}

// MaxRollbackCounts bounds status.rollbacks; the oldest entries go first.
const MaxRollbackCounts = 50

// A Rollout's history is its ControllerRevisions, one per promoted
// revision, labelled LabelRollout with the Rollout's name, numbered by
// their revision field. These annotations say what a person needs to pick
// one (kubectl tug history).
const (
	LabelRollout = "tugboat.dev/rollout"
	// AnnotationRevision is the pod template hash.
	AnnotationRevision = "tugboat.dev/revision"
	// AnnotationImages are the containers' images, comma-separated.
	AnnotationImages = "tugboat.dev/images"
	// AnnotationPromotedAt is when the revision became stable (RFC 3339).
	AnnotationPromotedAt = "tugboat.dev/promoted-at"
	// AnnotationPromotedBy is how: initial (the first) or steps.
	AnnotationPromotedBy = "tugboat.dev/promoted-by"
	// AnnotationAnalysis is a one-line summary of the analysis it passed.
	AnnotationAnalysis = "tugboat.dev/analysis"
)

// AnnotationRolledBack, on the RolledBack event of a rollback made on
// request, holds a RollbackEvent as JSON: what a pipeline needs to turn the
// rollback into a revert pull request.
const AnnotationRolledBack = "tugboat.dev/rolled-back"

// RollbackEvent is what a RolledBack event's AnnotationRolledBack says.
type RollbackEvent struct {
	Namespace string `json:"namespace"`
	Rollout   string `json:"rollout"`
	// From and To are the revisions (pod template hashes) rolled back from
	// and to; ToNumber is To's number in history.
	From     string `json:"from"`
	To       string `json:"to"`
	ToNumber int64  `json:"toNumber"`
	// FromImages and ToImages are their containers' images.
	FromImages []string `json:"fromImages,omitempty"`
	ToImages   []string `json:"toImages,omitempty"`
	// Target is the target's revision the rollback holds off.
	Target      string `json:"target"`
	Reason      string `json:"reason,omitempty"`
	RequestedBy string `json:"requestedBy,omitempty"`
	Request     string `json:"request"`
}
