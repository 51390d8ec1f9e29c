package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// MirrorPolicy, in a production namespace, says which preview namespaces
// may receive copies of which of its Rollouts' and VirtualServices' routes,
// how much, of which methods, and which request headers the copies lose.
// Without one, nothing in the namespace is mirrored.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:shortName=tmp,categories=tugboat
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type MirrorPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec MirrorPolicySpec `json:"spec"`
}

// MirrorPolicyList is a list of MirrorPolicies.
//
// +kubebuilder:object:root=true
type MirrorPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []MirrorPolicy `json:"items"`
}

// MirrorPolicySpec is a list of rules; the first that allows everything a
// Preview asks for decides.
type MirrorPolicySpec struct {
	// Rules, tried in order.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	// +listType=map
	// +listMapKey=name
	Rules []MirrorRule `json:"rules"`
}

// MirrorRule lets the selected namespaces mirror the named Rollouts and
// routes.
//
// +kubebuilder:validation:XValidation:rule="size(self.rollouts) + size(self.routes) > 0",message="a rule must name at least one of rollouts or routes"
// +kubebuilder:validation:XValidation:rule="self.methods.all(m, m in ['GET', 'HEAD', 'OPTIONS', 'TRACE']) || (has(self.allowUnsafeMethods) && self.allowUnsafeMethods)",message="methods other than GET, HEAD, OPTIONS and TRACE change state: set allowUnsafeMethods to allow them",fieldPath=".methods"
type MirrorRule struct {
	// Name of the rule, named in the Previews it allows or denies.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`
	// Namespaces selects, by label, the namespaces whose Previews the rule
	// lets mirror. An empty selector selects none: a rule names whom it
	// trusts.
	Namespaces metav1.LabelSelector `json:"namespaces"`
	// Rollouts are the Rollouts, in this namespace, that may be copied from.
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=253
	// +listType=set
	// +kubebuilder:default={}
	// +optional
	Rollouts []string `json:"rollouts"`
	// Routes are the VirtualService routes, in this namespace, that may be
	// copied from.
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:default={}
	// +optional
	Routes []PreviewRouteRef `json:"routes"`
	// MaxPercentage is the largest share a Preview may copy, from 1 to 100
	// (default 10).
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	// +kubebuilder:default=10
	// +optional
	MaxPercentage int32 `json:"maxPercentage,omitempty"`
	// MaxPreviews is how many Previews may mirror one route at once, from 1
	// to 32 (default 5): each adds routes to production's VirtualService.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=32
	// +kubebuilder:default=5
	// +optional
	MaxPreviews int32 `json:"maxPreviews,omitempty"`
	// Methods a Preview may receive copies of (default GET and HEAD).
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=9
	// +kubebuilder:validation:items:Enum=GET;HEAD;OPTIONS;TRACE;POST;PUT;PATCH;DELETE;CONNECT
	// +listType=set
	// +kubebuilder:default={GET,HEAD}
	// +optional
	Methods []string `json:"methods,omitempty"`
	// AllowUnsafeMethods lets a Preview that also opts in receive copies of
	// methods that change state.
	// +optional
	AllowUnsafeMethods bool `json:"allowUnsafeMethods,omitempty"`
	// RemoveHeaders are request headers the copies lose, besides
	// authorization, cookie, proxy-authorization and x-api-key, which they
	// always lose. Lower-case header names.
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=128
	// +kubebuilder:validation:items:Pattern=`^[!#$%&'*+.^_|~0-9a-z-]+$`
	// +listType=set
	// +optional
	RemoveHeaders []string `json:"removeHeaders,omitempty"`
}

func init() {
	SchemeBuilder.Register(&MirrorPolicy{}, &MirrorPolicyList{})
}
