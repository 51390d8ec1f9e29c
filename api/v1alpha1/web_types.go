package v1alpha1

import (
	"encoding/json"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
)

// WebMetric is an HTTP request whose JSON answer is the measurement: Argo
// Rollouts' WebMetric (an approval endpoint, a smoke test's verdict), with
// bounds. The host must be allowed by the controller's --web-allowed-hosts
// (empty by default); redirects are not followed, and an answer is read up to
// 1 MiB. The answer, or the part jsonPath picks, is the result the conditions
// see: result.approved == true, asFloat(result) < 0.05. Argo's
// authentication (OAuth2, SigV4) is not supported; a header from a Secret
// argument carries a token instead.
//
// +kubebuilder:validation:XValidation:rule="!(has(self.body) && has(self.jsonBody))",message="set body or jsonBody, not both",fieldPath=".body"
// +kubebuilder:validation:XValidation:rule="!(has(self.body) || has(self.jsonBody)) || (has(self.method) && self.method in ['POST', 'PUT'])",message="a body needs method POST or PUT",fieldPath=".method"
type WebMetric struct {
	// Method of the request: GET (the default), POST or PUT.
	// +kubebuilder:validation:Enum=GET;POST;PUT
	// +optional
	Method argo.WebMetricMethod `json:"method,omitempty"`
	// URL to ask, such as https://approvals.example.com/api/{{args.release}};
	// {{args.NAME}} is replaced by the argument's value, escaped so that it
	// stays within the path segment or query value it stands in. Arguments
	// from Secrets cannot stand in it.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^(https?://[^ ]+|\{\{ *args\.[A-Za-z0-9_.-]+ *\}\}[^ ]*)$`
	URL string `json:"url"`
	// Headers of the request. A value may hold arguments, those from Secrets
	// too (a token): they go only to allowed hosts and never into status.
	// +kubebuilder:validation:MaxItems=16
	// +optional
	Headers []WebHeader `json:"headers,omitempty"`
	// Body of a POST or PUT, as text; arguments are replaced as they are.
	// +kubebuilder:validation:MaxLength=65536
	// +optional
	Body string `json:"body,omitempty"`
	// JSONBody is the body of a POST or PUT as JSON, sent with Content-Type
	// application/json; an argument in one of its strings is replaced
	// JSON-escaped, so that it cannot change the body's structure.
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Type=object
	// +optional
	JSONBody json.RawMessage `json:"jsonBody,omitempty"`
	// TimeoutSeconds bounds the request (default 10).
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=600
	// +optional
	TimeoutSeconds int64 `json:"timeoutSeconds,omitempty"`
	// JSONPath picks the result from the answer, in kubectl's JSONPath
	// ({.status.approved}); the whole answer when empty.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	JSONPath string `json:"jsonPath,omitempty"`
	// Insecure skips verification of the server's TLS certificate.
	// +optional
	Insecure bool `json:"insecure,omitempty"`
}

// WebHeader is one header of a web metric's request: Argo Rollouts'
// WebMetricHeader, with bounds.
type WebHeader struct {
	// Key is the header's name.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9!#$%&'*+.^_|~-]+$`
	Key string `json:"key"`
	// Value is the header's value; {{args.NAME}} is replaced by the
	// argument's value.
	// +kubebuilder:validation:MaxLength=4096
	Value string `json:"value"`
}
