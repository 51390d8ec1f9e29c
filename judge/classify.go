package judge

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/gonum/stat/distuv"
)

// Classification is a metric's (or, for the score, the judgement's)
// outcome. The metric labels are Kayenta's, plus Inconclusive.
type Classification string

const (
	Pass Classification = "Pass"
	High Classification = "High"
	Low  Classification = "Low"
	// NoData: a side has no samples. NoDataFail: the same for a metric
	// that must have data, which then counts against the score.
	NoData     Classification = "Nodata"
	NoDataFail Classification = "NodataFailMetric"
	// Inconclusive: too few samples, or an interval neither outside the
	// tolerance nor inside the equivalence band; more data would decide.
	Inconclusive Classification = "Inconclusive"
	Error        Classification = "Error"
	// Marginal and Fail are the score's, with Pass and Inconclusive.
	Marginal Classification = "Marginal"
	Fail     Classification = "Fail"
)

// Direction is which change of a metric is a failure.
type Direction string

const (
	Increase Direction = "increase"
	Decrease Direction = "decrease"
	Either   Direction = "either"
)

// NaNStrategy is what becomes of NaN samples: removed, or replaced by 0.
type NaNStrategy string

const (
	RemoveNaN  NaNStrategy = "remove"
	ReplaceNaN NaNStrategy = "replace"
)

// EffectMeasure is how the size of a change is measured against its
// allowed and critical thresholds.
type EffectMeasure string

const (
	// MeanRatio is mean(canary) / mean(baseline); thresholds around 1.
	MeanRatio EffectMeasure = "meanRatio"
	// CLES is the share of pairs where the canary is higher; thresholds
	// around 0.5.
	CLES EffectMeasure = "cles"
)

// Autocorrelation is whether samples in time order are treated as an
// AR(1) series (their variance inflated by n / n_eff) or as independent.
type Autocorrelation string

const (
	AR1         Autocorrelation = "ar1"
	Independent Autocorrelation = "independent"
)

// Config is how one metric is classified. Start from DefaultConfig: the
// zero value is not valid.
type Config struct {
	Direction Direction
	// Tolerance: a change is High (Low) only when the interval's lower
	// (upper) bound lies beyond Tolerance times the estimate's magnitude,
	// in [0, 1]. Kayenta's judge uses 0.25.
	Tolerance float64
	// Confidence is the interval's level, in [0.5, 1). Kayenta's judge
	// uses 0.98.
	Confidence float64
	// EffectMeasure and the thresholds: a High also needs an effect of at
	// least AllowedIncrease, a Low one of at most AllowedDecrease, and a
	// High (Low) of a Critical metric fails the judgement when its effect
	// is at least CriticalIncrease (at most CriticalDecrease). An effect
	// that cannot be computed (a zero mean) is not checked. Kayenta's
	// defaults are 1 for MeanRatio and 0.5 for CLES.
	EffectMeasure                      EffectMeasure
	AllowedIncrease, AllowedDecrease   float64
	CriticalIncrease, CriticalDecrease float64
	NaNStrategy                        NaNStrategy
	// OutlierFactor > 0 removes values outside Tukey's fences at that many
	// interquartile ranges (widened to the 1st and 99th percentiles), as
	// Kayenta's outlier strategy "remove" (factor 3 by default there); 0
	// keeps every value.
	OutlierFactor float64
	// Critical: a High, Low, no data or error of this metric fails the
	// whole judgement. MustHaveData: no data counts against the score.
	Critical, MustHaveData bool
	// MinSamples is the fewest samples on each side (after NaN and
	// outlier removal) that are judged; fewer is Inconclusive.
	MinSamples int
	// Equivalence > 0 is the relative change of the baseline's mean that
	// does not matter: the metric passes only when its interval lies
	// within +-Equivalence times that mean (on the side Direction
	// watches); otherwise it is Inconclusive. 0 passes whatever is not
	// High or Low, as Kayenta does. Also the change that the "how many
	// more samples" estimate is for (Tolerance when 0).
	Equivalence float64
	// Power is the chance of telling that change that the estimate aims
	// for, in [0.5, 1).
	Power           float64
	Autocorrelation Autocorrelation
}

// DefaultConfig is Kayenta's judge (tolerance 0.25, confidence 0.98, mean
// ratio effect sizes of 1, NaNs removed, outliers kept) with Tugboat's
// additions: at least 5 samples a side, a 25% equivalence band, 80%
// power for the estimate, and the AR(1) correction.
func DefaultConfig() Config {
	return Config{
		Direction: Either, Tolerance: 0.25, Confidence: 0.98,
		EffectMeasure: MeanRatio, AllowedIncrease: 1, AllowedDecrease: 1, CriticalIncrease: 1, CriticalDecrease: 1,
		NaNStrategy: RemoveNaN, MinSamples: 5, Equivalence: 0.25, Power: 0.8, Autocorrelation: AR1,
	}
}

// Validate names every field that is out of its bounds.
func (c Config) Validate() error {
	var errs []error
	bad := func(field string, v any, want string) {
		errs = append(errs, fmt.Errorf("%s: must be %s, got %v", field, want, v))
	}
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	if !slices.Contains([]Direction{Increase, Decrease, Either}, c.Direction) {
		bad("direction", fmt.Sprintf("%q", c.Direction), `"increase", "decrease" or "either"`)
	}
	if !(c.Tolerance >= 0 && c.Tolerance <= 1) {
		bad("tolerance", c.Tolerance, "in [0, 1]")
	}
	if !(c.Confidence >= 0.5 && c.Confidence < 1) {
		bad("confidence", c.Confidence, "in [0.5, 1)")
	}
	if c.EffectMeasure != MeanRatio && c.EffectMeasure != CLES {
		bad("effectMeasure", fmt.Sprintf("%q", c.EffectMeasure), `"meanRatio" or "cles"`)
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"allowedIncrease", c.AllowedIncrease}, {"allowedDecrease", c.AllowedDecrease},
		{"criticalIncrease", c.CriticalIncrease}, {"criticalDecrease", c.CriticalDecrease}} {
		if !finite(f.v) || f.v < 0 || (c.EffectMeasure == CLES && f.v > 1) {
			bad(f.name, f.v, "finite and at least 0 (at most 1 for cles)")
		}
	}
	if c.NaNStrategy != RemoveNaN && c.NaNStrategy != ReplaceNaN {
		bad("nanStrategy", fmt.Sprintf("%q", c.NaNStrategy), `"remove" or "replace"`)
	}
	if !finite(c.OutlierFactor) || c.OutlierFactor < 0 || c.OutlierFactor > 100 {
		bad("outlierFactor", c.OutlierFactor, "in [0, 100]")
	}
	if c.MinSamples < 1 || c.MinSamples > 1_000_000 {
		bad("minSamples", c.MinSamples, "in [1, 1000000]")
	}
	if !(c.Equivalence >= 0 && c.Equivalence <= 10) {
		bad("equivalence", c.Equivalence, "in [0, 10]")
	}
	if !(c.Power >= 0.5 && c.Power < 1) {
		bad("power", c.Power, "in [0.5, 1)")
	}
	if c.Autocorrelation != AR1 && c.Autocorrelation != Independent {
		bad("autocorrelation", fmt.Sprintf("%q", c.Autocorrelation), `"ar1" or "independent"`)
	}
	return errors.Join(errs...)
}

// MetricResult is one metric's classification and the numbers behind it.
// Numbers that were not computed are NaN.
type MetricResult struct {
	Classification Classification
	Reason         string
	// Critical: this result fails the whole judgement.
	Critical bool
	// Estimate is the Hodges-Lehmann shift canary - baseline, Lower and
	// Upper its interval at the configured confidence.
	Estimate, Lower, Upper float64
	// Ratio is mean(canary) / mean(baseline) (NaN when a mean is 0),
	// EffectSize the configured measure, PValue the two-sided p-value.
	Ratio, EffectSize, PValue float64
	// Samples judged on each side, and what they are worth once their
	// autocorrelation is accounted for.
	CanarySamples, BaselineSamples     int
	CanaryEffective, BaselineEffective float64
	// MoreCanarySamples, when Inconclusive, estimates how many more canary
	// samples (and proportionally baseline ones) would tell a change of
	// Equivalence at the configured confidence and power; -1 when it
	// cannot be estimated.
	MoreCanarySamples int
}

// Classify judges canary against baseline, both in time order, as
// Kayenta's MannWhitneyClassifier with Tugboat's additions (see Config).
// name only appears in reasons. It returns an error for an invalid
// config; a failure of the test itself is an Error result.
func Classify(name string, canary, baseline []float64, c Config) (MetricResult, error) {
	if err := c.Validate(); err != nil {
		return MetricResult{}, err
	}
	nan := math.NaN()
	r := MetricResult{Estimate: nan, Lower: nan, Upper: nan, Ratio: nan, EffectSize: nan, PValue: nan, MoreCanarySamples: -1}

	prep := removeNaNs
	if c.NaNStrategy == ReplaceNaN {
		prep = replaceNaNs
	}
	canary, baseline = prep(canary), prep(baseline)
	if c.OutlierFactor > 0 {
		canary, baseline = removeOutliers(canary, c.OutlierFactor), removeOutliers(baseline, c.OutlierFactor)
	}
	r.CanarySamples, r.BaselineSamples = len(canary), len(baseline)
	r.CanaryEffective, r.BaselineEffective = float64(len(canary)), float64(len(baseline))

	if len(canary) == 0 || len(baseline) == 0 {
		if c.NaNStrategy == ReplaceNaN {
			r.Classification, r.Ratio = Pass, 1
			return r, nil
		}
		r.Reason = fmt.Sprintf("no data for %s: canary has %d samples, baseline %d", name, len(canary), len(baseline))
		switch {
		case c.MustHaveData && !c.Critical:
			r.Classification = NoDataFail
		default:
			r.Classification, r.Critical = NoData, c.Critical
		}
		return r, nil
	}
	if sortedEqual(canary, baseline) {
		r.Classification, r.Ratio = Pass, 1
		r.Reason = fmt.Sprintf("the canary's and baseline's samples of %s are identical", name)
		return r, nil
	}
	if allEqual(canary, baseline) {
		r.Classification, r.Ratio = Pass, 1
		r.Reason = fmt.Sprintf("every sample of %s has the same value", name)
		return r, nil
	}

	inflation := 1.0
	if c.Autocorrelation == AR1 {
		r.CanaryEffective = EffectiveSize(len(canary), Lag1Autocorrelation(canary))
		r.BaselineEffective = EffectiveSize(len(baseline), Lag1Autocorrelation(baseline))
		inflation = varianceInflation(len(canary), len(baseline), r.CanaryEffective, r.BaselineEffective)
	}
	if len(canary) < c.MinSamples || len(baseline) < c.MinSamples {
		r.Classification = Inconclusive
		r.MoreCanarySamples = moreSamples(canary, baseline, c, inflation)
		r.Reason = fmt.Sprintf("%s: canary has %d samples and baseline %d, fewer than the %d needed on each side; %s",
			name, len(canary), len(baseline), c.MinSamples, moreText(r, c))
		return r, nil
	}

	mw, err := mannWhitney(canary, baseline, c.Confidence, inflation)
	if err != nil {
		r.Classification, r.Critical = Error, c.Critical
		r.Reason = fmt.Sprintf("%s could not be compared: %v", name, err)
		return r, nil
	}
	r.Estimate, r.Lower, r.Upper, r.PValue = mw.Estimate, mw.Lower, mw.Upper, mw.PValue
	r.Ratio = meanRatio(canary, baseline)
	r.EffectSize = r.Ratio
	if c.EffectMeasure == CLES {
		r.EffectSize = cles(canary, baseline, mw.U)
	}

	bound := c.Tolerance * math.Abs(mw.Estimate)
	unknown := math.IsNaN(r.EffectSize)
	// The interval is the set of shifts the test does not reject. A bound
	// that falls on a pairwise difference (as 0 does when both sides hold
	// many zeros) belongs to it only if the test at that shift does not
	// reject; Kayenta's solver stops within 1e-4 of it, on either side.
	q := distuv.UnitNormal.Quantile(1 - (1-c.Confidence)/2)
	beyond := func(edge, at float64, up bool) bool {
		if edge != at {
			return up == (edge > at)
		}
		z, _, _ := zAt(canary, baseline, at, inflation)
		return up && z > q || !up && z < -q
	}
	high := c.Direction != Decrease && beyond(mw.Lower, bound, true) && (unknown || r.EffectSize >= c.AllowedIncrease)
	low := c.Direction != Increase && beyond(mw.Upper, -bound, false) && (unknown || r.EffectSize <= c.AllowedDecrease)
	shift := fmt.Sprintf("shift %s [%s, %s] at %s%%", num(mw.Estimate), num(mw.Lower), num(mw.Upper), num(100*c.Confidence))
	switch {
	case high:
		r.Classification = High
		r.Critical = c.Critical && (unknown || r.EffectSize >= c.CriticalIncrease)
		r.Reason = fmt.Sprintf("%s was classified as High%s: %s, mean ratio %s", name, criticalText(r.Critical), shift, num(r.Ratio))
		return r, nil
	case low:
		r.Classification = Low
		r.Critical = c.Critical && (unknown || r.EffectSize <= c.CriticalDecrease)
		r.Reason = fmt.Sprintf("%s was classified as Low%s: %s, mean ratio %s", name, criticalText(r.Critical), shift, num(r.Ratio))
		return r, nil
	}
	if c.Equivalence == 0 {
		r.Classification = Pass
		return r, nil
	}
	band := c.Equivalence * math.Abs(stat.Mean(baseline, nil))
	within := (c.Direction == Decrease || mw.Upper <= band) && (c.Direction == Increase || mw.Lower >= -band)
	if within {
		r.Classification = Pass
		r.Reason = fmt.Sprintf("%s is within %s%% of the baseline: %s", name, num(100*c.Equivalence), shift)
		return r, nil
	}
	r.Classification = Inconclusive
	r.MoreCanarySamples = moreSamples(canary, baseline, c, inflation)
	r.Reason = fmt.Sprintf("%s: %s reaches beyond the %s%% band (+-%s) without clearing the tolerance; canary has %d samples; %s",
		name, shift, num(100*c.Equivalence), num(band), len(canary), moreText(r, c))
	return r, nil
}

// moreSamples estimates, by Noether's formula, how many more canary
// samples would tell a change of the equivalence (else tolerance) share of
// the baseline's mean, at the configured confidence and power, keeping the
// current ratio of canary to baseline samples and scaling by the variance
// inflation of autocorrelation. -1 when it cannot be estimated.
func moreSamples(canary, baseline []float64, c Config, inflation float64) int {
	rel := c.Equivalence
	if rel == 0 {
		rel = c.Tolerance
	}
	delta := rel * math.Abs(stat.Mean(baseline, nil))
	p := shiftProbability(baseline, delta)
	frac := float64(len(canary)) / float64(len(canary)+len(baseline))
	total := SamplesNeeded(p, 1-c.Confidence, c.Power, frac) * inflation
	if math.IsInf(total, 0) || math.IsNaN(total) || total > 1e9 {
		return -1
	}
	more := int(math.Ceil(frac*total)) - len(canary)
	return max(more, 1)
}

func moreText(r MetricResult, c Config) string {
	rel := c.Equivalence
	if rel == 0 {
		rel = c.Tolerance
	}
	if r.MoreCanarySamples < 0 {
		return "the baseline's spread does not allow an estimate of how many more samples would decide"
	}
	return fmt.Sprintf("about %d more canary samples would be needed to tell a %s%% change at %s%% confidence with %s%% power",
		r.MoreCanarySamples, num(100*rel), num(100*c.Confidence), num(100*c.Power))
}

func criticalText(critical bool) string {
	if critical {
		return " (critical)"
	}
	return ""
}

func num(v float64) string { return fmt.Sprintf("%.4g", v) }

func sortedEqual(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func allEqual(a, b []float64) bool {
	for _, v := range a {
		if v != a[0] {
			return false
		}
	}
	for _, v := range b {
		if v != a[0] {
			return false
		}
	}
	return true
}
