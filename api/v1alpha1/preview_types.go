package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Preview copies a share of a production route's traffic to a preview
// environment's Service, throws the preview's answers away, and says, from
// analysis, whether the preview behaved as production does. It lives in the
// preview's namespace; the production namespace allows it with a
// MirrorPolicy, and without one nothing is mirrored.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=tpv,categories=tugboat
// +kubebuilder:printcolumn:name="Source",type=string,JSONPath=`.status.source`,description="The production route copied from"
// +kubebuilder:printcolumn:name="Percent",type=integer,JSONPath=`.spec.percentage`,description="Share of the route's matching requests copied"
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Expires",type=date,JSONPath=`.status.expiresAt`,priority=1
// +kubebuilder:printcolumn:name="Rule",type=string,JSONPath=`.status.rule`,priority=1,description="The mirror policy rule that allowed (or came closest to allowing) it"
// +kubebuilder:printcolumn:name="Message",type=string,JSONPath=`.status.message`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="self.metadata.name.size() <= 63",message="metadata.name: at most 63 characters, since Tugboat labels objects with the name"
type Preview struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   PreviewSpec   `json:"spec"`
	Status PreviewStatus `json:"status,omitempty"`
}

// PreviewList is a list of Previews.
//
// +kubebuilder:object:root=true
type PreviewList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Preview `json:"items"`
}

// PreviewSpec is what a preview asks to be copied, and how it is judged.
//
// +kubebuilder:validation:XValidation:rule="self.methods.all(m, m in ['GET', 'HEAD', 'OPTIONS', 'TRACE']) || (has(self.allowUnsafeMethods) && self.allowUnsafeMethods)",message="methods other than GET, HEAD, OPTIONS and TRACE change state: set allowUnsafeMethods to copy them (the mirror policy must allow them too)",fieldPath=".methods"
type PreviewSpec struct {
	// Source is the production route whose traffic is copied.
	Source PreviewSource `json:"source"`

	// Service is the preview's Service, in the Preview's namespace, that
	// receives the copies.
	Service PreviewService `json:"service"`

	// Percentage of the source route's matching requests that are copied,
	// from 1 to 100 (default 10). The source's mirror policy bounds it.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	// +kubebuilder:default=10
	// +optional
	Percentage int32 `json:"percentage,omitempty"`

	// Methods are the request methods copied (default GET and HEAD).
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=9
	// +kubebuilder:validation:items:Enum=GET;HEAD;OPTIONS;TRACE;POST;PUT;PATCH;DELETE;CONNECT
	// +listType=set
	// +kubebuilder:default={GET,HEAD}
	// +optional
	Methods []string `json:"methods,omitempty"`

	// AllowUnsafeMethods opts in to copying methods that change state (POST,
	// PUT, PATCH, DELETE, CONNECT). The mirror policy must allow them as well.
	// +optional
	AllowUnsafeMethods bool `json:"allowUnsafeMethods,omitempty"`

	// Match narrows the copies to requests that meet any one of these
	// conditions, on top of the methods (default: every request of those
	// methods).
	// +kubebuilder:validation:MaxItems=8
	// +optional
	Match []PreviewMatch `json:"match,omitempty"`

	// TTL is how long the preview may receive copies, from its creation: a
	// duration such as 30m or 24h, from 1m to 720h (default 24h). Once it
	// has run out without a verdict, the Preview is Expired and the mirror
	// goes.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') && duration(self) >= duration('1m') && duration(self) <= duration('720h')",message="must be a duration such as 30m or 24h, from 1m to 720h"
	// +kubebuilder:default="24h"
	// +optional
	TTL *metav1.Duration `json:"ttl,omitempty"`

	// Analysis compares the preview with production while it receives
	// copies; its verdict is the Preview's. Arguments may take
	// valueFrom.fieldRef.fieldPath from the Preview (metadata.name,
	// metadata.namespace, spec.service.name, spec.source.namespace,
	// status.sourceWorkload...). Without it, the preview receives copies
	// until its ttl and has no verdict.
	// +optional
	Analysis *Analysis `json:"analysis,omitempty"`

	// Notifications send the preview's phase changes to
	// NotificationProviders of this namespace.
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:XValidation:rule="self.all(n, !has(n.events) || n.events.all(e, e in ['mirroring', 'succeeded', 'failed', 'inconclusive', 'expired', 'denied']))",message="a Preview's events are mirroring, succeeded, failed, inconclusive, expired and denied"
	// +optional
	Notifications []Notification `json:"notifications,omitempty"`
}

// PreviewSource names the production route copied from: the managed route
// of a Rollout, or one route of a VirtualService. Exactly one is set.
//
// +kubebuilder:validation:XValidation:rule="has(self.rollout) != has(self.virtualService)",message="set exactly one of source.rollout or source.virtualService"
type PreviewSource struct {
	// Namespace is the production namespace.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Namespace string `json:"namespace"`
	// Rollout names a Rollout in Namespace: its first managed route (the
	// first of trafficRouting.istio.virtualService.routes) is copied, at
	// whatever weights the Rollout sets.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Rollout string `json:"rollout,omitempty"`
	// VirtualService names a VirtualService in Namespace and the route of it
	// that is copied.
	// +optional
	VirtualService *PreviewRouteRef `json:"virtualService,omitempty"`
}

// PreviewRouteRef names one HTTP route of a VirtualService.
type PreviewRouteRef struct {
	// Name of the VirtualService.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// Route is the name of the HTTP route.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Route string `json:"route"`
}

// PreviewService is the Service that receives the copies.
type PreviewService struct {
	// Name of the Service, in the Preview's namespace.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`
	// Port the copies are sent to, from 1 to 65535.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port"`
}

// PreviewMatch is one condition a copied request meets: all that it sets
// must hold. The method is not among them: spec.methods says which.
type PreviewMatch struct {
	// Path is how the request's path must match.
	// +optional
	Path *StringMatch `json:"path,omitempty"`
	// Headers are conditions on request headers, all of which must hold.
	// +kubebuilder:validation:MaxItems=8
	// +optional
	Headers []HeaderRoutingMatch `json:"headers,omitempty"`
}

// PreviewStatus is what the controller found and decided.
type PreviewStatus struct {
	// ObservedGeneration is the spec generation this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Phase is Pending, Denied, Mirroring, Succeeded, Failed, Inconclusive or
	// Expired. The last four are final for the spec they were reached with:
	// the mirror is gone.
	// +kubebuilder:validation:Enum=Pending;Denied;Mirroring;Succeeded;Failed;Inconclusive;Expired
	// +optional
	Phase string `json:"phase,omitempty"`
	// Message says why the preview is in its phase.
	// +optional
	Message string `json:"message,omitempty"`
	// Source is the production route copied from, as namespace/virtualservice/route.
	// +optional
	Source string `json:"source,omitempty"`
	// SourceWorkload is the production Deployment the copied requests reach
	// (a Rollout's <name>-primary), for analysis arguments that compare the
	// preview with it; empty for a VirtualService source.
	// +optional
	SourceWorkload string `json:"sourceWorkload,omitempty"`
	// Rule is the mirror policy rule (policy/rule) that allows the preview,
	// or the one that came closest when it is Denied.
	// +optional
	Rule string `json:"rule,omitempty"`
	// RemovedHeaders are the request headers the copies lose before they
	// reach the preview.
	// +optional
	RemovedHeaders []string `json:"removedHeaders,omitempty"`
	// ExpiresAt is when the ttl runs out.
	// +optional
	ExpiresAt *metav1.Time `json:"expiresAt,omitempty"`
	// MirroringSince is when the copies started, for this spec.
	// +optional
	MirroringSince *metav1.Time `json:"mirroringSince,omitempty"`
	// Analysis explains the verdict, metric by metric, as a Rollout's status
	// does.
	// +optional
	Analysis *RolloutAnalysis `json:"analysis,omitempty"`
	// Conditions: Ready (a verdict of Succeeded), Reconciling (not final yet)
	// and Stalled (Denied, Failed, Inconclusive or Expired) for kstatus-aware
	// tools, and Mirroring (whether copies flow).
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

func init() {
	SchemeBuilder.Register(&Preview{}, &PreviewList{})
}
