package judge

import (
	"math"
	"slices"

	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/gonum/stat/distuv"
)

// removeNaNs drops NaN values; replaceNaNs sets them to 0. Kayenta's two
// NaN strategies.
func removeNaNs(v []float64) []float64 {
	return slices.DeleteFunc(slices.Clone(v), math.IsNaN)
}

func replaceNaNs(v []float64) []float64 {
	out := slices.Clone(v)
	for i, x := range out {
		if math.IsNaN(x) {
			out[i] = 0
		}
	}
	return out
}

// percentile is the p-th percentile (0-100) of v by the R-7 rule, as
// Kayenta's (Commons Math's) Percentile with EstimationType.R_7: linear
// between the order statistics at h = (n-1)p/100. gonum's stat.Quantile
// offers the rules only, which give other fences.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	h := float64(len(sorted)-1) * p / 100
	lo := math.Floor(h)
	i := int(lo)
	if i+1 >= len(sorted) {
		return sorted[len(sorted)-1]
	}
	return sorted[i] + (h-lo)*(sorted[i+1]-sorted[i])
}

// iqrOutliers reports which values lie outside Tukey's fences
// [Q1 - factor*IQR, Q3 + factor*IQR]. With reduceSensitivity, as Kayenta's
// judge uses it, the fences widen to at least the 1st and 99th
// percentiles.
func iqrOutliers(v []float64, factor float64, reduceSensitivity bool) []bool {
	s := slices.Clone(v)
	slices.Sort(s)
	q1, q3 := percentile(s, 25), percentile(s, 75)
	lower, upper := q1-factor*(q3-q1), q3+factor*(q3-q1)
	if reduceSensitivity {
		lower, upper = math.Min(percentile(s, 1), lower), math.Max(percentile(s, 99), upper)
	}
	out := make([]bool, len(v))
	for i, x := range v {
		out[i] = x < lower || x > upper
	}
	return out
}

// removeOutliers drops the values iqrOutliers flags, keeping the order.
func removeOutliers(v []float64, factor float64) []float64 {
	flags := iqrOutliers(v, factor, true)
	out := make([]float64, 0, len(v))
	for i, x := range v {
		if !flags[i] {
			out = append(out, x)
		}
	}
	return out
}

// meanRatio is mean(canary) / mean(baseline), NaN when either mean is 0,
// as Kayenta's EffectSizes.meanRatio.
func meanRatio(canary, baseline []float64) float64 {
	c, b := stat.Mean(canary, nil), stat.Mean(baseline, nil)
	if c == 0 || b == 0 {
		return math.NaN()
	}
	return c / b
}

// cles is the common-language effect size: the share of pairs in which
// the canary's value is the higher, ties counting one half (Vargha and
// Delaney's A, Kayenta's EffectSizes.cles).
func cles(canary, baseline []float64, u float64) float64 {
	return u / (float64(len(canary)) * float64(len(baseline)))
}

// MaxAutocorrelation bounds the estimated lag-1 autocorrelation, so that a
// nearly constant-trend series still counts as a few samples.
const MaxAutocorrelation = 0.95

// MinAutocorrelationSamples is the shortest series whose autocorrelation
// is estimated.
const MinAutocorrelationSamples = 10

// Lag1Autocorrelation estimates the lag-1 autocorrelation of a series in
// time order, on its ranks (so one outlier does not dominate it), with
// the first-order bias correction (n r + 1) / (n - 3) of the usual
// estimator r (whose expectation is about rho - (1 + 3 rho) / n, Marriott
// and Pope), clamped to [0, MaxAutocorrelation]: negative values would
// claim more information than the samples hold. Series of fewer than
// MinAutocorrelationSamples samples give 0: the estimate's own error
// (about 1/sqrt(n)) is then as large as the correlations it would find.
// Constant series give 0 too.
func Lag1Autocorrelation(series []float64) float64 {
	n := len(series)
	if n < MinAutocorrelationSamples {
		return 0
	}
	r, _ := ranks(series)
	mean := stat.Mean(r, nil)
	var num, den float64
	for i, v := range r {
		den += (v - mean) * (v - mean)
		if i > 0 {
			num += (v - mean) * (r[i-1] - mean)
		}
	}
	if den == 0 {
		return 0
	}
	rho := (float64(n)*(num/den) + 1) / float64(n-3)
	return math.Max(0, math.Min(MaxAutocorrelation, rho))
}

// EffectiveSize is the number of independent samples that carry as much
// information about a mean as n samples of an AR(1) series with lag-1
// autocorrelation rho: n (1 - rho) / (1 + rho).
func EffectiveSize(n int, rho float64) float64 {
	return float64(n) * (1 - rho) / (1 + rho)
}

// varianceInflation is the factor by which autocorrelation multiplies the
// variance of U / (n m): under no shift that variance is about
// 1/(12 n) + 1/(12 m) for independent samples, each term growing by its
// series' n / n_eff.
func varianceInflation(n, m int, nEff, mEff float64) float64 {
	inf := (1/nEff + 1/mEff) / (1/float64(n) + 1/float64(m))
	return math.Max(1, inf)
}

// SamplesNeeded is Noether's (1987) sample size for the two-sided
// Mann-Whitney test at level alpha to detect, with the given power, an
// alternative under which a canary value exceeds a baseline value with
// probability p, when the canary holds the fraction c of all samples:
//
//	N = (z_{1-alpha/2} + z_{power})^2 / (12 c (1 - c) (p - 1/2)^2)
//
// It returns the total N (canary and baseline), +Inf when p = 1/2.
func SamplesNeeded(p, alpha, power, c float64) float64 {
	if p == 0.5 || c <= 0 || c >= 1 {
		return math.Inf(1)
	}
	z := distuv.UnitNormal.Quantile(1-alpha/2) + distuv.UnitNormal.Quantile(power)
	return z * z / (12 * c * (1 - c) * (p - 0.5) * (p - 0.5))
}

// shiftProbability estimates p = P(Y + delta > Y') for two independent
// baseline values Y, Y': how often a baseline value raised by delta would
// beat another, the p Noether's formula needs for a shift of delta. It
// counts over the distinct pairs of the baseline's samples.
func shiftProbability(baseline []float64, delta float64) float64 {
	s := slices.Clone(baseline)
	slices.Sort(s)
	n := len(s)
	if n < 2 {
		return 0.5
	}
	var wins float64
	for i, y := range s {
		t := y + delta
		// values strictly below t, and equal to t
		lo, _ := slices.BinarySearch(s, t)
		hi := lo
		for hi < n && s[hi] == t {
			hi++
		}
		below, equal := float64(lo), float64(hi-lo)
		// do not pair a value with itself
		if s[i] < t {
			below--
		} else if s[i] == t {
			equal--
		}
		wins += below + equal/2
	}
	return wins / float64(n*(n-1))
}
