package v1alpha1

import (
	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Rollout moves a new version of a Deployment into production step by step,
// shifting Istio VirtualService weights and gating every step on analysis.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=tro,categories=tugboat
// +kubebuilder:printcolumn:name="Step",type=integer,JSONPath=`.status.currentStepIndex`,description="Index of the current step"
// +kubebuilder:printcolumn:name="Weight",type=integer,JSONPath=`.status.canaryWeight`,description="Share of traffic sent to the canary, in percent"
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`,description="Phase derived from the conditions"
// +kubebuilder:printcolumn:name="Stable",type=string,JSONPath=`.status.stableRevision`,priority=1
// +kubebuilder:printcolumn:name="Canary",type=string,JSONPath=`.status.canaryRevision`,priority=1
// +kubebuilder:printcolumn:name="Message",type=string,JSONPath=`.status.message`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="self.metadata.name.size() <= 56",message="metadata.name: at most 56 characters, since Tugboat names Services <name>-stable and <name>-canary and labels objects with the name"
type Rollout struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   RolloutSpec   `json:"spec"`
	Status RolloutStatus `json:"status,omitempty"`
}

// RolloutList is a list of Rollouts.
//
// +kubebuilder:object:root=true
type RolloutList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Rollout `json:"items"`
}

// RolloutSpec is the desired progression of a Deployment's new versions.
//
// +kubebuilder:validation:XValidation:rule="!has(self.analysis) || !has(self.analysis.startingStep) || self.analysis.startingStep < size(self.steps)",message="analysis.startingStep must be the index of a step (0 to len(steps)-1)",fieldPath=".analysis.startingStep"
// +kubebuilder:validation:XValidation:rule="self.steps.all(s, !has(s.setHeaderRoute) || !(s.setHeaderRoute.name in self.trafficRouting.istio.virtualService.routes))",message="a setHeaderRoute name must differ from the routes in trafficRouting.istio.virtualService.routes: Tugboat owns header routes and would overwrite a user route",fieldPath=".steps"
type RolloutSpec struct {
	// TargetRef names the Deployment whose new versions this Rollout moves into
	// production. The Deployment stays owned by its author (and GitOps tool);
	// Tugboat runs the stable version in a copy named <name>-primary.
	TargetRef TargetRef `json:"targetRef"`

	// Service describes the port that the stable and canary Services expose.
	Service ServiceSpec `json:"service"`

	// TrafficRouting names the mesh objects whose weights Tugboat moves.
	TrafficRouting TrafficRouting `json:"trafficRouting"`

	// Steps are run in order for each new revision of the target. Each step sets
	// exactly one action.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=100
	Steps []Step `json:"steps"`

	// Analysis runs in the background from StartingStep until the rollout ends;
	// a failed verdict aborts the rollout at any step.
	// +optional
	Analysis *BackgroundAnalysis `json:"analysis,omitempty"`

	// Windows restrict when a rollout may advance. Outside every allow window,
	// or inside any deny window, the rollout holds where it is.
	// +optional
	Windows *Windows `json:"windows,omitempty"`

	// Rollback controls the revisions kept for rolling back.
	// +optional
	Rollback *RollbackPolicy `json:"rollback,omitempty"`

	// AnalysisRunHistoryLimit is how many finished AnalysisRuns are kept per
	// revision (default 5, from 0 to 100); older finished runs of that
	// revision are deleted, oldest first. Runs still measuring, and the runs
	// the Rollout's status names (those of the current or last rollout,
	// status.analysis), are never deleted, whatever the limit: 0 keeps only
	// those. Runs of revisions older than the newest
	// rollback.revisionHistoryLimit revisions (by their latest run) are
	// deleted too, so that the runs a Rollout owns stay bounded however long
	// it lives.
	// +kubebuilder:default=5
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	AnalysisRunHistoryLimit *int32 `json:"analysisRunHistoryLimit,omitempty"`

	// ProgressDeadlineSeconds is how long the canary may take to become Ready,
	// and primary after promotion, before the rollout is aborted.
	// +kubebuilder:default=600
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=2147483647
	// +optional
	ProgressDeadlineSeconds *int32 `json:"progressDeadlineSeconds,omitempty"`

	// Notifications send the rollout's events to NotificationProviders of
	// this namespace.
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:XValidation:rule="self.all(n, !has(n.events) || n.events.all(e, e in ['started', 'stepAdvanced', 'paused', 'promoted', 'aborted', 'rolledBack', 'analysisFailed', 'inconclusive']))",message="a Rollout's events are started, stepAdvanced, paused, promoted, aborted, rolledBack, analysisFailed and inconclusive"
	// +optional
	Notifications []Notification `json:"notifications,omitempty"`
}

// TargetRef names the Deployment a Rollout manages.
type TargetRef struct {
	// APIVersion of the target; only apps/v1 is supported.
	// +kubebuilder:validation:Enum=apps/v1
	APIVersion string `json:"apiVersion"`
	// Kind of the target; only Deployment is supported.
	// +kubebuilder:validation:Enum=Deployment
	Kind string `json:"kind"`
	// Name of the Deployment, in the Rollout's namespace.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// ServiceSpec describes the Services that select the stable and canary pods.
type ServiceSpec struct {
	// Port the Services expose.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port"`
	// TargetPort on the pods: a port number (1 to 65535) or the name of a
	// container port (an IANA service name, such as http); defaults to Port.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=15
	// +kubebuilder:validation:XIntOrString
	// +kubebuilder:validation:XValidation:rule="type(self) == int ? self >= 1 && self <= 65535 : self.matches('^[a-z0-9]([a-z0-9-]*[a-z0-9])?$') && self.matches('[a-z]') && !self.contains('--')",message="must be a port number from 1 to 65535 or a port name: at most 15 lowercase letters, digits and hyphens, with at least one letter and no leading, trailing or double hyphen"
	// +optional
	TargetPort *intstr.IntOrString `json:"targetPort,omitempty"`
	// StableService names an existing Service for the stable pods; when empty
	// Tugboat creates <name>-stable.
	// +kubebuilder:validation:MaxLength=63
	// +optional
	StableService string `json:"stableService,omitempty"`
	// CanaryService names an existing Service for the canary pods; when empty
	// Tugboat creates <name>-canary.
	// +kubebuilder:validation:MaxLength=63
	// +optional
	CanaryService string `json:"canaryService,omitempty"`
}

// TrafficRouting names the mesh objects a Rollout moves traffic with.
type TrafficRouting struct {
	// Istio routes traffic through a VirtualService and, optionally, the
	// subsets of a DestinationRule.
	Istio IstioTrafficRouting `json:"istio"`
}

// IstioTrafficRouting names the Istio objects a Rollout changes. Both belong
// to the user; Tugboat changes only the weights of the named routes, the
// header routes it adds, and the labels of the named subsets.
//
// +kubebuilder:validation:XValidation:rule="!has(self.destinationRule) || self.destinationRule.stableSubsetName != self.destinationRule.canarySubsetName",message="destinationRule.stableSubsetName and destinationRule.canarySubsetName must differ",fieldPath=".destinationRule.canarySubsetName"
// +kubebuilder:validation:XValidation:rule="!has(self.destinationRule) || size(self.destinationRule.name) > 0",message="destinationRule.name is required",fieldPath=".destinationRule.name"
// +kubebuilder:validation:XValidation:rule="!has(self.destinationRule) || size(self.destinationRule.stableSubsetName) > 0",message="destinationRule.stableSubsetName is required",fieldPath=".destinationRule.stableSubsetName"
// +kubebuilder:validation:XValidation:rule="!has(self.destinationRule) || size(self.destinationRule.canarySubsetName) > 0",message="destinationRule.canarySubsetName is required",fieldPath=".destinationRule.canarySubsetName"
type IstioTrafficRouting struct {
	// VirtualService whose HTTP routes carry the split.
	VirtualService IstioVirtualService `json:"virtualService"`
	// DestinationRule whose subsets select the stable and canary pods. When set,
	// the routes split by subset of one host; otherwise by host, between the
	// stable and canary Services.
	// +optional
	DestinationRule *argo.IstioDestinationRule `json:"destinationRule,omitempty"`
}

// IstioVirtualService names a VirtualService and the HTTP routes in it that
// Tugboat sets the weights of.
type IstioVirtualService struct {
	// Name of the VirtualService, in the Rollout's namespace.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// Routes are the names of the HTTP routes whose stable and canary weights
	// Tugboat sets. Every other route is left as it is.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=253
	// +listType=set
	Routes []string `json:"routes"`
}

// Step is one action of a rollout. Exactly one field is set. The field names
// and shapes are Argo Rollouts' canary steps.
//
// +kubebuilder:validation:XValidation:rule="[has(self.setWeight), has(self.pause), has(self.analysis), has(self.setHeaderRoute), has(self.setCanaryScale), has(self.setMirrorRoute)].filter(x, x).size() == 1",message="a step must set exactly one of setWeight, pause, analysis, setHeaderRoute, setCanaryScale or setMirrorRoute"
// +kubebuilder:validation:XValidation:rule="!has(self.setCanaryScale) || [has(self.setCanaryScale.weight), has(self.setCanaryScale.replicas), has(self.setCanaryScale.matchTrafficWeight) && self.setCanaryScale.matchTrafficWeight].filter(x, x).size() == 1",message="setCanaryScale must set exactly one of weight, replicas or matchTrafficWeight",fieldPath=".setCanaryScale"
// +kubebuilder:validation:XValidation:rule="!has(self.setCanaryScale) || !has(self.setCanaryScale.weight) || (self.setCanaryScale.weight >= 0 && self.setCanaryScale.weight <= 100)",message="setCanaryScale.weight must be between 0 and 100",fieldPath=".setCanaryScale.weight"
// +kubebuilder:validation:XValidation:rule="!has(self.setCanaryScale) || !has(self.setCanaryScale.replicas) || (self.setCanaryScale.replicas >= 0 && self.setCanaryScale.replicas <= 2147483647)",message="setCanaryScale.replicas must be between 0 and 2147483647",fieldPath=".setCanaryScale.replicas"
// +kubebuilder:validation:XValidation:rule="!has(self.setMirrorRoute) || size(self.setMirrorRoute.name) > 0",message="setMirrorRoute.name is required",fieldPath=".setMirrorRoute.name"
// +kubebuilder:validation:XValidation:rule="!has(self.setMirrorRoute) || !has(self.setMirrorRoute.percentage) || (self.setMirrorRoute.percentage >= 0 && self.setMirrorRoute.percentage <= 100)",message="setMirrorRoute.percentage must be between 0 and 100",fieldPath=".setMirrorRoute.percentage"
type Step struct {
	// SetWeight sends this percentage of the managed routes' traffic to the canary.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	SetWeight *int32 `json:"setWeight,omitempty"`
	// Pause holds the rollout: for a duration (seconds, or a duration such as
	// 5m), or without one until a person promotes it.
	// +optional
	Pause *Pause `json:"pause,omitempty"`
	// Analysis runs the templates and waits for their verdict.
	// +optional
	Analysis *Analysis `json:"analysis,omitempty"`
	// SetHeaderRoute sends requests whose headers match to the canary, through a
	// route Tugboat adds under this name; a step with no match removes it.
	// +optional
	SetHeaderRoute *SetHeaderRoute `json:"setHeaderRoute,omitempty"`
	// SetCanaryScale sizes the canary independently of its traffic weight.
	// +optional
	SetCanaryScale *argo.SetCanaryScale `json:"setCanaryScale,omitempty"`
	// SetMirrorRoute mirrors a percentage of the matching requests to the canary,
	// through a route Tugboat adds under this name.
	// +optional
	SetMirrorRoute *argo.SetMirrorRoute `json:"setMirrorRoute,omitempty"`
}

// Windows restrict when a rollout may advance. With no allow window a rollout
// may advance at any time outside the deny windows.
type Windows struct {
	// Timezone is the IANA time zone the schedules are read in (default UTC).
	// +kubebuilder:validation:MaxLength=64
	// +optional
	Timezone string `json:"timezone,omitempty"`
	// Allow windows: a rollout advances only inside one of them.
	// +kubebuilder:validation:MaxItems=32
	// +optional
	Allow []Window `json:"allow,omitempty"`
	// Deny windows: a rollout never advances inside one of them.
	// +kubebuilder:validation:MaxItems=32
	// +optional
	Deny []Window `json:"deny,omitempty"`
}

// Window opens at each time its cron schedule fires and stays open for Duration.
type Window struct {
	// Schedule is a cron expression with five fields (minute hour day-of-month
	// month day-of-week) or a descriptor such as @daily.
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|@every [0-9a-z.]+|[^ ]+( +[^ ]+){4})$`
	Schedule string `json:"schedule"`
	// Duration the window stays open after each firing, such as 7h.
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$`
	Duration string `json:"duration"`
}

// RollbackPolicy controls the revisions kept for rolling back.
//
// +kubebuilder:validation:XValidation:rule="!has(self.fastTrackRevisions) || self.fastTrackRevisions <= self.revisionHistoryLimit",message="fastTrackRevisions must not exceed revisionHistoryLimit",fieldPath=".fastTrackRevisions"
type RollbackPolicy struct {
	// RevisionHistoryLimit is how many promoted revisions are kept.
	// +kubebuilder:default=10
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	// +optional
	RevisionHistoryLimit int32 `json:"revisionHistoryLimit,omitempty"`
	// FastTrackRevisions is how many of the revisions before the one serving
	// a rollback (kubectl tug rollback) may return to at once, without
	// running the steps again (default 1: the previous one). A rollback
	// further back goes through the steps: the old revision is rolled out
	// again as a canary, from history, gated by analysis, in a Deployment
	// of its own (<name>-rollback).
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000
	// +optional
	FastTrackRevisions *int32 `json:"fastTrackRevisions,omitempty"`
}
