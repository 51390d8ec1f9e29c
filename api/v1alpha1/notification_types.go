package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// NotificationProvider is a receiver of notifications, in the namespace of
// the Rollouts and Previews that name it: a Slack or Microsoft Teams incoming
// webhook, a generic JSON webhook, or a CloudEvents 1.0 receiver. Its host
// must be allowed by the controller's --notification-allowed-hosts (empty by
// default). Notifications are sent off the reconcile path: a receiver that is
// down or slow never delays or fails a rollout; its failures show here and in
// the tugboat_notifications_total metric.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=tnp,categories=tugboat
// +kubebuilder:printcolumn:name="Type",type=string,JSONPath=`.spec.type`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type NotificationProvider struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec NotificationProviderSpec `json:"spec"`
	// +optional
	Status NotificationProviderStatus `json:"status,omitempty"`
}

// NotificationProviderList is a list of NotificationProviders.
//
// +kubebuilder:object:root=true
type NotificationProviderList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []NotificationProvider `json:"items"`
}

// NotificationProviderType is the kind of receiver, which decides the shape
// of what is sent.
// +kubebuilder:validation:Enum=slack;msteams;webhook;cloudevents
type NotificationProviderType string

// The receivers Tugboat can send to.
const (
	// NotifySlack posts a Slack message (text and blocks) to an incoming webhook.
	NotifySlack NotificationProviderType = "slack"
	// NotifyMSTeams posts an Adaptive Card to a Teams incoming webhook.
	NotifyMSTeams NotificationProviderType = "msteams"
	// NotifyWebhook posts the notification as JSON.
	NotifyWebhook NotificationProviderType = "webhook"
	// NotifyCloudEvents posts a CloudEvents 1.0 event in binary mode.
	NotifyCloudEvents NotificationProviderType = "cloudevents"
)

// NotificationProviderSpec says where notifications go and how.
//
// +kubebuilder:validation:XValidation:rule="has(self.address) || has(self.secretRef)",message="set address, or secretRef to a Secret with an address key"
// +kubebuilder:validation:XValidation:rule="!has(self.channel) || self.type == 'slack'",message="channel is for slack only",fieldPath=".channel"
type NotificationProviderSpec struct {
	// Type of the receiver: slack, msteams, webhook or cloudevents.
	Type NotificationProviderType `json:"type"`
	// Address is the receiver's URL. A Secret's address key, when
	// secretRef names one, takes its place (a Slack or Teams webhook URL is
	// itself a credential).
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^https?://[^ ]+$`
	// +optional
	Address string `json:"address,omitempty"`
	// SecretRef names a Secret in this namespace with an address key (the
	// URL), a token key (sent as Authorization: Bearer to webhook and
	// cloudevents receivers), or both. The controller reads it only where a
	// RoleBinding to tugboat-secret-reader lets it.
	// +optional
	SecretRef *LocalObjectReference `json:"secretRef,omitempty"`
	// Channel overrides the Slack webhook's channel.
	// +kubebuilder:validation:MaxLength=80
	// +kubebuilder:validation:Pattern=`^[#@]?[a-z0-9._-]+$`
	// +optional
	Channel string `json:"channel,omitempty"`
	// TimeoutSeconds bounds each attempt (default 10).
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=60
	// +kubebuilder:default=10
	// +optional
	TimeoutSeconds int32 `json:"timeoutSeconds,omitempty"`
	// Suspend stops sending to this receiver; notifications meanwhile are
	// dropped, not kept.
	// +optional
	Suspend bool `json:"suspend,omitempty"`
}

// LocalObjectReference names an object in the same namespace.
type LocalObjectReference struct {
	// Name of the object.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// NotificationProviderStatus is what the controller found sending.
type NotificationProviderStatus struct {
	// ObservedGeneration is the spec generation the last delivery used.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Ready is True while notifications arrive, False with the
	// reason (DeliveryFailed, AddressRefused, SecretNotReadable) when the
	// last one could not be delivered.
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// LastDelivered is when a notification last arrived.
	// +optional
	LastDelivered *metav1.Time `json:"lastDelivered,omitempty"`
	// LastFailure is the last notification that could not be delivered.
	// +optional
	LastFailure *NotificationFailure `json:"lastFailure,omitempty"`
}

// NotificationFailure is a notification given up on.
type NotificationFailure struct {
	// Time the notification was given up on.
	Time metav1.Time `json:"time"`
	// ID of the notification (the CloudEvents id).
	// +kubebuilder:validation:MaxLength=128
	ID string `json:"id"`
	// Event is what the notification was about, and the object's name.
	// +kubebuilder:validation:MaxLength=512
	Event string `json:"event"`
	// Message says why it failed.
	// +kubebuilder:validation:MaxLength=1024
	Message string `json:"message"`
	// Attempts made.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	Attempts int32 `json:"attempts"`
}

// Notification subscribes a NotificationProvider of the same namespace to
// some of an object's events.
type Notification struct {
	// ProviderRef names the NotificationProvider.
	ProviderRef LocalObjectReference `json:"providerRef"`
	// Events to send; every event when empty. A Rollout's events are
	// started, stepAdvanced, paused, promoted, aborted, rolledBack,
	// analysisFailed and inconclusive; a Preview's are mirroring,
	// succeeded, failed, inconclusive, expired and denied.
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:items:Enum=started;stepAdvanced;paused;promoted;aborted;rolledBack;analysisFailed;inconclusive;mirroring;succeeded;failed;expired;denied
	// +listType=set
	// +optional
	Events []string `json:"events,omitempty"`
}

func init() {
	SchemeBuilder.Register(&NotificationProvider{}, &NotificationProviderList{})
}
