package v1alpha1

import (
	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// AnalysisTemplate is a reusable set of metrics, in one namespace, that
// rollout steps and background analysis measure.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:shortName=tat,categories=tugboat
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type AnalysisTemplate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec AnalysisTemplateSpec `json:"spec"`
}

// AnalysisTemplateList is a list of AnalysisTemplates.
//
// +kubebuilder:object:root=true
type AnalysisTemplateList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AnalysisTemplate `json:"items"`
}

// ClusterAnalysisTemplate is an AnalysisTemplate that every namespace can use.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=tcat,categories=tugboat
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ClusterAnalysisTemplate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec AnalysisTemplateSpec `json:"spec"`
}

// ClusterAnalysisTemplateList is a list of ClusterAnalysisTemplates.
//
// +kubebuilder:object:root=true
type ClusterAnalysisTemplateList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ClusterAnalysisTemplate `json:"items"`
}

// AnalysisTemplateSpec lists the metrics to measure and the arguments their
// queries take. The fields are Argo Rollouts' AnalysisTemplate's.
//
// +kubebuilder:validation:XValidation:rule="!has(self.args) || self.args.all(a, !(has(a.value) && has(a.valueFrom)))",message="an argument sets value or valueFrom, not both",fieldPath=".args"
type AnalysisTemplateSpec struct {
	// Metrics to measure; each reaches its own verdict and the worst one wins.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	// +listType=map
	// +listMapKey=name
	Metrics []Metric `json:"metrics"`
	// Args the queries refer to as {{args.NAME}}. An argument with no value
	// must be given one by the Rollout that uses the template.
	// +kubebuilder:validation:MaxItems=64
	// +listType=map
	// +listMapKey=name
	// +optional
	Args []argo.Argument `json:"args,omitempty"`
	// DryRun metrics are measured and reported but never change the verdict.
	// +kubebuilder:validation:MaxItems=32
	// +optional
	DryRun []argo.DryRun `json:"dryRun,omitempty"`
	// MeasurementRetention bounds how many measurements of a metric are kept.
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:XValidation:rule="self.all(r, r.limit >= 0 && r.limit <= 2147483647)",message="measurementRetention limit must be between 0 and 2147483647"
	// +optional
	MeasurementRetention []argo.MeasurementRetention `json:"measurementRetention,omitempty"`
}

// Metric is one measured quantity and the conditions that judge it. The
// fields are Argo Rollouts' Metric's, plus the no-data policy.
//
// +kubebuilder:validation:XValidation:rule="[has(self.provider.prometheus), has(self.provider.web), has(self.provider.job), has(self.provider.judge), has(self.provider.burnRate)].filter(x, x).size() == 1",message="set exactly one of provider.prometheus, provider.web, provider.job, provider.judge and provider.burnRate",fieldPath=".provider"
// +kubebuilder:validation:XValidation:rule="!has(self.provider.judge) || !(has(self.successCondition) || has(self.failureCondition))",message="a judge metric takes no successCondition or failureCondition: the judge decides each measurement",fieldPath=".provider.judge"
// +kubebuilder:validation:XValidation:rule="!has(self.provider.judge) || !has(self.minSamples)",message="a judge metric sets provider.judge.minSamples, not minSamples",fieldPath=".minSamples"
// +kubebuilder:validation:XValidation:rule="!has(self.provider.burnRate) || !(has(self.successCondition) || has(self.failureCondition))",message="a burnRate metric takes no successCondition or failureCondition: its thresholds decide each measurement",fieldPath=".provider.burnRate"
// +kubebuilder:validation:XValidation:rule="!has(self.provider.burnRate) || !has(self.minSamples)",message="a burnRate metric sets provider.burnRate.minEvents, not minSamples",fieldPath=".minSamples"
// +kubebuilder:validation:XValidation:rule="!has(self.inconclusiveLimit) || !has(self.extendWhileInconclusive) || self.extendWhileInconclusive == 0",message="extendWhileInconclusive takes Inconclusive measurements instead of counting them against inconclusiveLimit: set one of them",fieldPath=".extendWhileInconclusive"
// +kubebuilder:validation:XValidation:rule="!has(self.extendWhileInconclusive) || self.extendWhileInconclusive == 0 || (has(self.count) && (type(self.count) != int || self.count > 0))",message="extendWhileInconclusive extends a metric past its count: set count",fieldPath=".extendWhileInconclusive"
// +kubebuilder:validation:XValidation:rule="!has(self.count) || type(self.count) != int || self.count <= 1 || has(self.interval)",message="interval is required when count is more than 1",fieldPath=".interval"
// +kubebuilder:validation:XValidation:rule="!has(self.failureLimit) || type(self.failureLimit) != int || self.failureLimit != -1 || (has(self.consecutiveSuccessLimit) && (type(self.consecutiveSuccessLimit) != int || self.consecutiveSuccessLimit > 0))",message="failureLimit -1 (failures never fail the metric) needs consecutiveSuccessLimit above 0, as in Argo Rollouts",fieldPath=".failureLimit"
type Metric struct {
	// Name of the metric, unique in its template.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// Interval between measurements, such as 30s; at least 1s. Without it
	// the metric is measured once.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') || duration(self) >= duration('1s')",message="interval must be at least 1s"
	// +optional
	Interval argo.DurationString `json:"interval,omitempty"`
	// InitialDelay before the first measurement, such as 1m.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$`
	// +optional
	InitialDelay argo.DurationString `json:"initialDelay,omitempty"`
	// Count of measurements to take, from 0 to 2147483647 or an argument
	// ({{args.NAME}}); with only an interval (or count 0) the metric is
	// measured until the analysis ends.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:XIntOrString
	// +kubebuilder:validation:XValidation:rule="type(self) == int ? self >= 0 && self <= 2147483647 : true",message="count must be between 0 and 2147483647, or an argument"
	// +optional
	Count *intstr.IntOrString `json:"count,omitempty"`
	// SuccessCondition is an expression over result, such as result[0] >= 0.99.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	SuccessCondition string `json:"successCondition,omitempty"`
	// FailureCondition is an expression over result; a measurement that meets
	// neither condition is Inconclusive.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	FailureCondition string `json:"failureCondition,omitempty"`
	// FailureLimit is how many failed measurements are tolerated (default 0),
	// from 0 to 2147483647 or an argument; -1, only with a
	// consecutiveSuccessLimit, means failures never fail the metric.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:XIntOrString
	// +kubebuilder:validation:XValidation:rule="type(self) == int ? self >= -1 && self <= 2147483647 : true",message="failureLimit must be between 0 and 2147483647 (or -1 with consecutiveSuccessLimit), or an argument"
	// +optional
	FailureLimit *intstr.IntOrString `json:"failureLimit,omitempty"`
	// InconclusiveLimit is how many inconclusive measurements are tolerated
	// (default 0), from 0 to 2147483647 or an argument.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:XIntOrString
	// +kubebuilder:validation:XValidation:rule="type(self) == int ? self >= 0 && self <= 2147483647 : true",message="inconclusiveLimit must be between 0 and 2147483647, or an argument"
	// +optional
	InconclusiveLimit *intstr.IntOrString `json:"inconclusiveLimit,omitempty"`
	// ConsecutiveErrorLimit is how many errors in a row are tolerated before
	// the metric is in Error (default 4), from 0 to 2147483647 or an argument.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:XIntOrString
	// +kubebuilder:validation:XValidation:rule="type(self) == int ? self >= 0 && self <= 2147483647 : true",message="consecutiveErrorLimit must be between 0 and 2147483647, or an argument"
	// +optional
	ConsecutiveErrorLimit *intstr.IntOrString `json:"consecutiveErrorLimit,omitempty"`
	// ConsecutiveSuccessLimit is how many successes in a row make the metric
	// Successful early (default 0: disabled), from 0 to 2147483647 or an
	// argument.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:XIntOrString
	// +kubebuilder:validation:XValidation:rule="type(self) == int ? self >= 0 && self <= 2147483647 : true",message="consecutiveSuccessLimit must be between 0 and 2147483647, or an argument"
	// +optional
	ConsecutiveSuccessLimit *intstr.IntOrString `json:"consecutiveSuccessLimit,omitempty"`
	// ExtendWhileInconclusive is how many more measurements the metric may
	// take beyond count while its latest measurement is Inconclusive, from
	// 0 to 10000: the analysis, and the step waiting for it, goes on until
	// the data decide or the extension runs out, and the metric is
	// Inconclusive only then; inconclusive measurements count against no
	// limit, so it cannot be set with inconclusiveLimit. A judge or burnRate
	// metric without inconclusiveLimit extends by default by twice its count
	// (the step waits up to three times as long for enough traffic); any
	// other metric by 0, as in Argo Rollouts.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10000
	// +optional
	ExtendWhileInconclusive *int32 `json:"extendWhileInconclusive,omitempty"`
	// Provider is where the metric is measured.
	Provider MetricProvider `json:"provider"`
	// OnNoData is the phase of a measurement whose query returned no data (an
	// empty result or NaN).
	// +kubebuilder:validation:Enum=Inconclusive;Failed;Successful;Error
	// +kubebuilder:default=Inconclusive
	// +optional
	OnNoData argo.AnalysisPhase `json:"onNoData,omitempty"`
	// MinSamples is how many data points a range query must return for its
	// result to count; fewer is treated as no data.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=2147483647
	// +optional
	MinSamples *int32 `json:"minSamples,omitempty"`
}

// MetricProvider is where a metric is measured: a Prometheus query, an
// HTTP request, a Job, the canary judge's comparison of two queries, or an
// SLO burn-rate gate.
type MetricProvider struct {
	// Prometheus runs a PromQL query.
	// +optional
	Prometheus *PrometheusMetric `json:"prometheus,omitempty"`
	// Web asks an HTTP endpoint.
	// +optional
	Web *WebMetric `json:"web,omitempty"`
	// Job runs a Kubernetes Job.
	// +optional
	Job *JobMetric `json:"job,omitempty"`
	// Judge compares the canary's query with the baseline's (a Tugboat
	// extension).
	// +optional
	Judge *JudgeMetric `json:"judge,omitempty"`
	// BurnRate gates the canary on its SLO error-budget burn rate over a
	// short and a long window (a Tugboat extension).
	// +optional
	BurnRate *BurnRateMetric `json:"burnRate,omitempty"`
}

// PrometheusMetric is a PromQL query and the server it runs on. The fields are
// Argo Rollouts' PrometheusMetric's, with credentials read from Secrets, plus
// tls.
//
// +kubebuilder:validation:XValidation:rule="!(has(self.insecure) && self.insecure && has(self.tls))",message="set insecure or tls, not both: insecure turns off the verification that tls configures",fieldPath=".tls"
// +kubebuilder:validation:XValidation:rule="!has(self.tls) || !has(self.address) || self.address.startsWith('https://') || self.address.contains('{{')",message="tls applies to https:// addresses only",fieldPath=".tls"
type PrometheusMetric struct {
	// Address of the Prometheus server, such as http://prometheus.monitoring:9090,
	// or one taken from arguments ({{args.NAME}}, as in Argo). Empty means the
	// controller's default. Any other address must be allowed by the
	// controller's --prometheus-allowed-hosts (empty by default).
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^(https?://[^ ]+|[^ ]*\{\{ *args\.[A-Za-z0-9_.-]+ *\}\}[^ ]*)$`
	// +optional
	Address string `json:"address,omitempty"`
	// Query is the PromQL query; {{args.NAME}} is replaced by the argument's
	// value, quoted so that it cannot change the query's structure.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=8192
	Query string `json:"query"`
	// Timeout of a query, in seconds (default 30).
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=600
	// +optional
	Timeout *int64 `json:"timeout,omitempty"`
	// Insecure skips verification of the server's TLS certificate; never for
	// the controller's own Prometheus.
	// +optional
	Insecure bool `json:"insecure,omitempty"`
	// Headers added to each query request.
	// +kubebuilder:validation:MaxItems=16
	// +optional
	Headers []argo.WebMetricHeader `json:"headers,omitempty"`
	// RangeQuery makes this a range query over [start, end] with the given
	// step; result holds the values of every series at every step.
	// +optional
	RangeQuery *PrometheusRangeQuery `json:"rangeQuery,omitempty"`
	// Authentication to the server, with credentials from a Secret in the
	// namespace of the object being analysed.
	// +optional
	Authentication *PrometheusAuthentication `json:"authentication,omitempty"`
	// TLS verifies the server with a CA of its own and can present a client
	// certificate (a Tugboat extension). For the controller's default
	// address it is refused when the controller sets TLS for it, and
	// insecure always is.
	// +optional
	TLS *PrometheusTLS `json:"tls,omitempty"`
}

// PrometheusRangeQuery is Argo Rollouts' rangeQuery (PrometheusRangeQueryArgs),
// with bounds. Start and end are expressions with two functions: now(), the
// moment of the measurement, and duration("5m").
type PrometheusRangeQuery struct {
	// Start of the range, such as now() - duration("{{args.lookback}}").
	// Arguments may stand only inside a string.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	Start string `json:"start"`
	// End of the range, such as now().
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	End string `json:"end"`
	// Step between the points of each series, such as 1m, or an argument
	// ({{args.step}}). At most 11000 steps fit in the range, as in Prometheus.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^(([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+|\{\{ *args\.[A-Za-z0-9_.-]+ *\}\})$`
	Step argo.DurationString `json:"step"`
}

// PrometheusTLS is how the server's certificate is verified and which client
// certificate is presented.
//
// +kubebuilder:validation:XValidation:rule="has(self.secretName) || has(self.serverName)",message="tls needs secretName, serverName or both"
type PrometheusTLS struct {
	// SecretName names a Secret in the namespace of the object being
	// analysed, in the kubernetes.io/tls layout: ca.crt is the CA the
	// server's certificate must chain to (instead of the system's roots), and
	// tls.crt with tls.key, when present, a client certificate. A client
	// certificate, like other credentials, is sent only to the controller's
	// Prometheus.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +optional
	SecretName string `json:"secretName,omitempty"`
	// ServerName is the name the server's certificate must hold, when it is
	// not the address's host; it is also sent as SNI.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9]([A-Za-z0-9._:-]*[A-Za-z0-9])?$`
	// +optional
	ServerName string `json:"serverName,omitempty"`
}

// PrometheusAuthentication reads Prometheus credentials from a Secret.
//
// +kubebuilder:validation:XValidation:rule="!(has(self.bearerToken) && has(self.basicAuth))",message="set bearerToken or basicAuth, not both"
type PrometheusAuthentication struct {
	// BearerToken is the Secret key that holds a bearer token.
	// +optional
	BearerToken *argo.SecretKeyRef `json:"bearerToken,omitempty"`
	// BasicAuth names a Secret with the keys username and password.
	// +optional
	BasicAuth *BasicAuth `json:"basicAuth,omitempty"`
}

// BasicAuth names a Secret with the keys username and password.
type BasicAuth struct {
	// SecretName is the Secret's name.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	SecretName string `json:"secretName"`
}

// AnalysisRun is one run of a set of metrics: the measurements taken and the
// verdict reached.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=tar,categories=tugboat
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.phase`,description="Verdict of the run"
// +kubebuilder:printcolumn:name="Message",type=string,JSONPath=`.status.message`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type AnalysisRun struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   AnalysisRunSpec   `json:"spec"`
	Status AnalysisRunStatus `json:"status,omitempty"`
}

// AnalysisRunList is a list of AnalysisRuns.
//
// +kubebuilder:object:root=true
type AnalysisRunList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AnalysisRun `json:"items"`
}

// AnalysisRunSpec is the resolved set of metrics a run measures.
type AnalysisRunSpec struct {
	// Metrics to measure.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	// +listType=map
	// +listMapKey=name
	Metrics []Metric `json:"metrics"`
	// Args with their values.
	// +kubebuilder:validation:MaxItems=64
	// +listType=map
	// +listMapKey=name
	// +optional
	Args []argo.Argument `json:"args,omitempty"`
	// Terminate stops the run; the metrics measured so far decide the verdict.
	// +optional
	Terminate bool `json:"terminate,omitempty"`
	// DryRun metrics are measured and reported but never change the verdict.
	// +kubebuilder:validation:MaxItems=64
	// +optional
	DryRun []argo.DryRun `json:"dryRun,omitempty"`
	// MeasurementRetention bounds how many measurements of a metric are kept.
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:XValidation:rule="self.all(r, r.limit >= 0 && r.limit <= 2147483647)",message="measurementRetention limit must be between 0 and 2147483647"
	// +optional
	MeasurementRetention []argo.MeasurementRetention `json:"measurementRetention,omitempty"`
}

// AnalysisRunStatus holds the measurements and the verdict of a run.
//
// Its numbers are bounded, counters from 0 to 2147483647, so that no status,
// even one written by hand, fails to decode: an AnalysisRun that did would
// break the controller's list of them all.
type AnalysisRunStatus struct {
	// ObservedGeneration is the spec generation this status describes.
	// +kubebuilder:validation:Minimum=0
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Phase is the verdict: Pending, Running, Successful, Failed, Error or
	// Inconclusive.
	// +optional
	Phase argo.AnalysisPhase `json:"phase,omitempty"`
	// Message explains the phase.
	// +optional
	Message string `json:"message,omitempty"`
	// MetricResults holds each metric's counters and recent measurements, one
	// per metric.
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:XValidation:rule="self.all(r, [has(r.count) ? r.count : 0, has(r.successful) ? r.successful : 0, has(r.failed) ? r.failed : 0, has(r.inconclusive) ? r.inconclusive : 0, has(r.error) ? r.error : 0, has(r.consecutiveError) ? r.consecutiveError : 0, has(r.consecutiveSuccess) ? r.consecutiveSuccess : 0].all(n, n >= 0 && n <= 2147483647))",message="metricResults counters (count, successful, failed, inconclusive, error, consecutiveError, consecutiveSuccess) must be between 0 and 2147483647"
	// +optional
	MetricResults []argo.MetricResult `json:"metricResults,omitempty"`
	// StartedAt is when the run started.
	// +optional
	StartedAt *metav1.Time `json:"startedAt,omitempty"`
	// CompletedAt is when the run reached its verdict.
	// +optional
	CompletedAt *metav1.Time `json:"completedAt,omitempty"`
	// RunSummary counts the metrics by phase.
	// +kubebuilder:validation:XValidation:rule="[has(self.count) ? self.count : 0, has(self.successful) ? self.successful : 0, has(self.failed) ? self.failed : 0, has(self.inconclusive) ? self.inconclusive : 0, has(self.error) ? self.error : 0].all(n, n >= 0 && n <= 2147483647)",message="runSummary counts (count, successful, failed, inconclusive, error) must be between 0 and 2147483647"
	// +optional
	RunSummary argo.RunSummary `json:"runSummary,omitempty"`
	// DryRunSummary counts the dry-run metrics by phase.
	// +kubebuilder:validation:XValidation:rule="[has(self.count) ? self.count : 0, has(self.successful) ? self.successful : 0, has(self.failed) ? self.failed : 0, has(self.inconclusive) ? self.inconclusive : 0, has(self.error) ? self.error : 0].all(n, n >= 0 && n <= 2147483647)",message="dryRunSummary counts (count, successful, failed, inconclusive, error) must be between 0 and 2147483647"
	// +optional
	DryRunSummary *argo.RunSummary `json:"dryRunSummary,omitempty"`
	// Conditions of the run.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

func init() {
	SchemeBuilder.Register(&AnalysisTemplate{}, &AnalysisTemplateList{},
		&ClusterAnalysisTemplate{}, &ClusterAnalysisTemplateList{},
		&AnalysisRun{}, &AnalysisRunList{})
}
