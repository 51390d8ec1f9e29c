package v1alpha1

import (
	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
)

// BurnRateMetric gates the canary on its SLO error-budget burn rate over a
// short and a long window, as the multi-window, multi-burn-rate alerts of
// the SRE workbook do (see docs/analysis.md). The burn rate of a window is
// (errors / total) / (1 - objective): 1 spends the budget exactly over the
// SLO's period, 14.4 spends 2% of a 30-day budget in an hour.
//
// A measurement fails when the canary burns faster than maxBurnRate over
// both windows, or, with maxRelativeBurnRate, faster than that many times
// the stable baseline's burn (at least 1) over both windows. Fewer than
// minEvents requests in the short window are Inconclusive. The metric
// decides each measurement, so it takes no successCondition or
// failureCondition.
//
// The queries go to the controller's Prometheus, or to an address the
// controller allows, as a judge metric's do.
//
// +kubebuilder:validation:XValidation:rule="has(self.baselineErrors) == has(self.baselineTotal)",message="set baselineErrors and baselineTotal together",fieldPath=".baselineTotal"
// +kubebuilder:validation:XValidation:rule="has(self.maxRelativeBurnRate) == has(self.baselineTotal)",message="maxRelativeBurnRate compares the canary with the stable baseline: set it with baselineErrors and baselineTotal, or none of the three",fieldPath=".maxRelativeBurnRate"
// +kubebuilder:validation:XValidation:rule="!self.shortWindow.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') || !self.longWindow.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') || duration(self.longWindow) > duration(self.shortWindow)",message="longWindow must be longer than shortWindow",fieldPath=".longWindow"
type BurnRateMetric struct {
	// Address of the Prometheus server, as provider.judge.address.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^(https?://[^ ]+|[^ ]*\{\{ *args\.[A-Za-z0-9_.-]+ *\}\}[^ ]*)$`
	// +optional
	Address string `json:"address,omitempty"`
	// Objective is the SLO's target share of good requests, from 0.9 to
	// 0.99999, such as 0.999; 1 - objective is the error budget.
	// +kubebuilder:validation:Minimum=0.9
	// +kubebuilder:validation:XValidation:rule="self <= 0.99999",message="objective must be at most 0.99999, an error budget of 0.001%"
	Objective float64 `json:"objective"`
	// Errors is the PromQL query of the canary's failed requests over a
	// window, such as
	// sum(increase(istio_requests_total{destination_workload="{{args.canary}}",response_code=~"5.."}[{{window}}])).
	// {{window}} is replaced by Tugboat with shortWindow, then longWindow;
	// {{args.NAME}} by the argument's value, quoted as in a Prometheus
	// metric. The values of the series it returns are added up; none is 0
	// errors.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=8192
	// +kubebuilder:validation:XValidation:rule="self.contains('{{window}}')",message="errors must hold {{window}}, which Tugboat replaces with each window"
	Errors string `json:"errors"`
	// Total is the query of all the canary's requests over {{window}}, as
	// errors. No series is no data.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=8192
	// +kubebuilder:validation:XValidation:rule="self.contains('{{window}}')",message="total must hold {{window}}, which Tugboat replaces with each window"
	Total string `json:"total"`
	// BaselineErrors is the errors query for the stable baseline, for
	// maxRelativeBurnRate.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=8192
	// +kubebuilder:validation:XValidation:rule="self.contains('{{window}}')",message="baselineErrors must hold {{window}}, which Tugboat replaces with each window"
	// +optional
	BaselineErrors string `json:"baselineErrors,omitempty"`
	// BaselineTotal is the total query for the stable baseline.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=8192
	// +kubebuilder:validation:XValidation:rule="self.contains('{{window}}')",message="baselineTotal must hold {{window}}, which Tugboat replaces with each window"
	// +optional
	BaselineTotal string `json:"baselineTotal,omitempty"`
	// ShortWindow is the window that makes the gate reset quickly once the
	// errors stop, from 1m to 24h, such as 5m.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') || (duration(self) >= duration('1m') && duration(self) <= duration('24h'))",message="shortWindow must be between 1m and 24h"
	ShortWindow argo.DurationString `json:"shortWindow"`
	// LongWindow is the window that makes the gate significant, longer
	// than shortWindow and at most 72h, such as 1h.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') || (duration(self) > duration('1m') && duration(self) <= duration('72h'))",message="longWindow must be longer than 1m and at most 72h"
	LongWindow argo.DurationString `json:"longWindow"`
	// MaxBurnRate fails the canary when it burns faster than this over
	// both windows, above 0 and at most 100000, such as 14.4 (the
	// workbook's page threshold for 1h and 5m).
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:ExclusiveMinimum=true
	// +kubebuilder:validation:Maximum=100000
	MaxBurnRate float64 `json:"maxBurnRate"`
	// MaxRelativeBurnRate fails the canary when it burns faster than this
	// many times the stable baseline over both windows, from 1 to 1000;
	// the baseline's burn counts as at least 1, so that a stable without
	// errors does not make a canary within its budget fail.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	// +optional
	MaxRelativeBurnRate *float64 `json:"maxRelativeBurnRate,omitempty"`
	// MinEvents is the fewest requests in the short window that are
	// judged, on each side, from 1 to 1000000000 (default 100); fewer is
	// Inconclusive, saying how many more are needed.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000000
	// +optional
	MinEvents *int64 `json:"minEvents,omitempty"`
	// Timeout of each query, in seconds (default 30).
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=600
	// +optional
	Timeout *int64 `json:"timeout,omitempty"`
}
