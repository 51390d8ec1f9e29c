package v1alpha1

import (
	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
)

// JudgeMetric compares the canary with the stable baseline, as Kayenta's
// judge does: two PromQL range queries over the same window, one for each
// side, whose points are compared by a Mann-Whitney test (see
// docs/judge.md). The judge decides each measurement, so the metric takes
// no successCondition or failureCondition: a regression in the watched
// direction is Failed, a change within the equivalence band Successful, and
// anything the data cannot tell yet Inconclusive, saying how many more
// samples would decide.
//
// The queries go to the controller's Prometheus, or to an address the
// controller allows, as a Prometheus metric's do; this first version has no
// headers, authentication or TLS of its own.
//
// +kubebuilder:validation:XValidation:rule="!self.lookback.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') || !self.step.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') || duration(self.lookback) >= duration(self.step) + duration(self.step)",message="lookback must hold at least two steps",fieldPath=".lookback"
// +kubebuilder:validation:XValidation:rule="!self.lookback.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') || !self.step.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') || duration(self.lookback).getSeconds() <= duration(self.step).getSeconds() * 11000",message="lookback holds at most 11000 steps, as Prometheus's range queries do",fieldPath=".lookback"
// +kubebuilder:validation:XValidation:rule="!has(self.rates) || !(has(self.tolerance) || has(self.equivalence) || has(self.minSamples))",message="tolerance, equivalence and minSamples judge the points of two series; with rates, set rates.margin and rates.effect",fieldPath=".rates"
// +kubebuilder:validation:XValidation:rule="!has(self.rates) || !has(self.sequential) || self.sequential",message="rates are always judged by the sequential test: leave sequential out or true",fieldPath=".sequential"
type JudgeMetric struct {
	// Address of the Prometheus server, as provider.prometheus.address:
	// empty means the controller's default, any other must be allowed by
	// --prometheus-allowed-hosts.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^(https?://[^ ]+|[^ ]*\{\{ *args\.[A-Za-z0-9_.-]+ *\}\}[^ ]*)$`
	// +optional
	Address string `json:"address,omitempty"`
	// Canary is the PromQL query of the canary's metric, such as its error
	// ratio; {{args.NAME}} is replaced by the argument's value, quoted so
	// that it cannot change the query's structure. It should return one
	// series; the points of several are pooled. With rates, it counts the
	// canary's events over each step instead, such as the difference of
	// its 5xx counter with itself one step earlier (see docs/judge.md).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=8192
	Canary string `json:"canary"`
	// Baseline is the same metric's query for the stable baseline.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=8192
	Baseline string `json:"baseline"`
	// Lookback is the window each measurement compares, ending at the
	// measurement, such as 10m.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') || (duration(self) >= duration('1s') && duration(self) <= duration('24h'))",message="lookback must be between 1s and 24h"
	Lookback argo.DurationString `json:"lookback"`
	// Step between the points of each side's series, such as 30s.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') || (duration(self) >= duration('1s') && duration(self) <= duration('1h'))",message="step must be between 1s and 1h"
	Step argo.DurationString `json:"step"`
	// Direction is which change fails: increase (a higher canary, as for
	// errors or latency), decrease, or either (the default).
	// +kubebuilder:validation:Enum=increase;decrease;either
	// +kubebuilder:default=either
	// +optional
	Direction string `json:"direction,omitempty"`
	// Tolerance is the share of the estimated shift that its interval must
	// clear for a change to count, from 0 to 1 (default 0.25, Kayenta's).
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1
	// +optional
	Tolerance *float64 `json:"tolerance,omitempty"`
	// Confidence is the level of the shift's interval, from 0.5 to below 1
	// (default 0.98, Kayenta's); with sequential, 1 - confidence also bounds
	// the chance of a false alarm over every look of the run.
	// +kubebuilder:validation:Minimum=0.5
	// +kubebuilder:validation:Maximum=1
	// +kubebuilder:validation:ExclusiveMaximum=true
	// +optional
	Confidence *float64 `json:"confidence,omitempty"`
	// Equivalence is the change, as a share of the baseline's mean, that
	// does not matter, from 0 to 10 (default 0.25): a measurement is
	// Successful only when the shift's interval lies within it. 0 passes
	// whatever is not a regression, as Kayenta does.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10
	// +optional
	Equivalence *float64 `json:"equivalence,omitempty"`
	// MinSamples is the fewest points on each side that are judged, from 1
	// to 11000 (default 5); fewer is Inconclusive. The sequential test
	// waits for at least 10.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=11000
	// +optional
	MinSamples *int32 `json:"minSamples,omitempty"`
	// Sequential (the default) fails the canary only when an anytime-valid
	// test over every point since the run started (at least the lookback,
	// at most 11000 steps) finds a regression, so that judging at every
	// interval does not add up to false rollbacks. false judges each
	// lookback window on its own, as Kayenta does.
	// +kubebuilder:default=true
	// +optional
	Sequential *bool `json:"sequential,omitempty"`
	// Rates, when set, compares the canary's rate of events with the
	// baseline's, request by request and step by step, instead of the
	// points of two series: canary and baseline count events (errors,
	// requests slower than a latency objective) over each step, and
	// rates.canaryTotal and rates.baselineTotal the requests they are out
	// of. See docs/judge.md.
	// +optional
	Rates *JudgeRates `json:"rates,omitempty"`
	// Timeout of each query, in seconds (default 30).
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=600
	// +optional
	Timeout *int64 `json:"timeout,omitempty"`
}

// JudgeRates are the totals a rate comparison divides the events by, and
// the ratios it decides between. A measurement fails on evidence, over every
// look since the run started, that the canary's rate is more than margin
// times the baseline's; passes on evidence that it is less than effect
// times, over the whole run and over its later half; and is Inconclusive
// otherwise, saying how many more requests would decide. 1 - confidence
// bounds the chance of either wrong verdict.
//
// +kubebuilder:validation:XValidation:rule="(has(self.margin) ? self.margin : 1.25) < (has(self.effect) ? self.effect : 2.0)",message="effect must be above margin (defaults 2 and 1.25)",fieldPath=".effect"
type JudgeRates struct {
	// CanaryTotal is the query of the canary's requests over each step,
	// such as the difference of its request counter with itself one step
	// earlier. Each of the four queries is summed into one series, and a
	// step without data counts none.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=8192
	CanaryTotal string `json:"canaryTotal"`
	// BaselineTotal is the same for the stable baseline.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=8192
	BaselineTotal string `json:"baselineTotal"`
	// Margin is the ratio of the canary's rate to the baseline's that is
	// not a regression, from 1 to 100 (default 1.25): what the canary's own
	// variation can reach on a healthy day.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	// +optional
	Margin *float64 `json:"margin,omitempty"`
	// Floor is the canary's rate of events per request below which an
	// increase does not matter, whatever the baseline's, from 0 to 0.1
	// (default 0: none), such as 0.001 for errors: a canary fails only on
	// evidence that its rate is above the floor too, and passes on
	// evidence that it is below it, so that a canary and a baseline that
	// both serve without errors can pass. It bounds increases only.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=0.1
	// +optional
	Floor *float64 `json:"floor,omitempty"`
	// Effect is the smallest ratio that must be caught, above margin and at
	// most 1000 (default 2): a canary passes only on evidence that its rate
	// is below effect times the baseline's.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:ExclusiveMinimum=true
	// +kubebuilder:validation:Maximum=1000
	// +optional
	Effect *float64 `json:"effect,omitempty"`
}
