package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the API group and version of Tugboat's kinds.
	GroupVersion = schema.GroupVersion{Group: "tugboat.dev", Version: "v1alpha1"}

	// SchemeBuilder registers Tugboat's kinds with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds Tugboat's kinds to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
