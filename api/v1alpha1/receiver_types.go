package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Receiver lets CI outside the cluster act on Rollouts of its namespace
// without cluster credentials, through the controller's trigger endpoint
// (off unless --receiver-address is set): a request signed with the key in
// the Receiver's Secret may set a container's image to one matching a
// pattern, promote, abort or roll back, on the Rollouts named here and no
// others. Unsigned, wrongly signed, stale and replayed requests are refused
// and change nothing; every accepted one is an event on the Rollout naming
// the Receiver. Requests go to POST /hook/<namespace>/<name>.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=trc,categories=tugboat
// +kubebuilder:printcolumn:name="Type",type=string,JSONPath=`.spec.type`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Receiver struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec ReceiverSpec `json:"spec"`
	// +optional
	Status ReceiverStatus `json:"status,omitempty"`
}

// ReceiverList is a list of Receivers.
//
// +kubebuilder:object:root=true
type ReceiverList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Receiver `json:"items"`
}

// ReceiverType is the shape of the requests a Receiver takes.
// +kubebuilder:validation:Enum=generic;github
type ReceiverType string

// The request shapes.
const (
	// ReceiverGeneric takes a Tugboat request as JSON, signed in
	// X-Tugboat-Signature (sha256=HMAC-SHA256 over "<timestamp>.<body>")
	// with the time in X-Tugboat-Timestamp (Unix seconds).
	ReceiverGeneric ReceiverType = "generic"
	// ReceiverGitHub takes GitHub's deployment webhook, signed in
	// X-Hub-Signature-256: the request is the deployment's payload, and the
	// deployment's created_at is its time.
	ReceiverGitHub ReceiverType = "github"
)

// ReceiverSpec says who may ask what, of which Rollouts.
//
// +kubebuilder:validation:XValidation:rule="has(self.actions.setImage) || self.actions.promote || self.actions.abort || self.actions.rollback",message="allow at least one action",fieldPath=".actions"
type ReceiverSpec struct {
	// Type of the requests: generic or github.
	Type ReceiverType `json:"type"`
	// SecretRef names a Secret in this namespace whose token key is the
	// HMAC key the requests are signed with (at least 32 bytes). The
	// controller reads it only where a RoleBinding to
	// tugboat-secret-reader lets it.
	SecretRef LocalObjectReference `json:"secretRef"`
	// Rollouts the requests may act on, by name, in this namespace.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=253
	// +listType=set
	Rollouts []string `json:"rollouts"`
	// Actions the requests may ask for.
	Actions ReceiverActions `json:"actions"`
}

// ReceiverActions are the actions a Receiver allows.
type ReceiverActions struct {
	// SetImage allows setting a container's image on a Rollout's target
	// Deployment, which starts a rollout, to an image matching one of its
	// patterns.
	// +optional
	SetImage *SetImageAction `json:"setImage,omitempty"`
	// Promote allows `kubectl tug promote`.
	// +optional
	Promote bool `json:"promote,omitempty"`
	// Abort allows `kubectl tug abort`.
	// +optional
	Abort bool `json:"abort,omitempty"`
	// Rollback allows `kubectl tug rollback` (to the previous stable
	// revision, or to the revision the request names).
	// +optional
	Rollback bool `json:"rollback,omitempty"`
}

// SetImageAction bounds the images a Receiver may set.
type SetImageAction struct {
	// Images are patterns, in Go's path.Match syntax, that the image must
	// match: ghcr.io/acme/web:* allows any tag of one repository, and no
	// other repository.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=512
	Images []string `json:"images"`
	// Containers the image may be set on; every container when empty.
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=63
	// +optional
	Containers []string `json:"containers,omitempty"`
}

// ReceiverStatus is what the controller found and accepted.
type ReceiverStatus struct {
	// Accepted are the signatures of recently accepted requests, so that a
	// replay is refused after a restart too; entries older than the
	// freshness window go.
	// +kubebuilder:validation:MaxItems=256
	// +optional
	Accepted []AcceptedRequest `json:"accepted,omitempty"`
	// LastRequest says what the last accepted request did.
	// +optional
	LastRequest *ReceiverRequest `json:"lastRequest,omitempty"`
}

// AcceptedRequest is one accepted request, known by its signature.
type AcceptedRequest struct {
	// Digest is the SHA-256 of the request's signature.
	// +kubebuilder:validation:MaxLength=64
	Digest string `json:"digest"`
	// Time the request was signed at.
	Time metav1.Time `json:"time"`
}

// ReceiverRequest is an accepted request.
type ReceiverRequest struct {
	// Time it was accepted.
	Time metav1.Time `json:"time"`
	// Action it asked for.
	// +kubebuilder:validation:MaxLength=32
	Action string `json:"action"`
	// Rollout it acted on.
	// +kubebuilder:validation:MaxLength=253
	Rollout string `json:"rollout"`
	// Message says what was done.
	// +kubebuilder:validation:MaxLength=1024
	Message string `json:"message"`
}

func init() {
	SchemeBuilder.Register(&Receiver{}, &ReceiverList{})
}
