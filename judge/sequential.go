package judge

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// SequentialConfig is how the canary is watched at every look.
type SequentialConfig struct {
	// Alpha bounds the chance of ever raising a false alarm, over all the
	// looks of a rollout however many there are, in (0, 0.5].
	Alpha float64
	// Mixing is the spread tau of the normal mixture over the effect
	// theta = P(canary > baseline) - 1/2, in (0, 0.5]: the effect size the
	// test is most sensitive to. 0.1 is a shift of about a quarter of a
	// standard deviation.
	Mixing          float64
	Direction       Direction
	Autocorrelation Autocorrelation
	// MinSamples on each side before any alarm, in [1, 1000000].
	MinSamples int
}

// DefaultSequentialConfig: 5% false alarms over the whole rollout, tau
// 0.1, either direction, AR(1) correction, 10 samples a side.
func DefaultSequentialConfig() SequentialConfig {
	return SequentialConfig{Alpha: 0.05, Mixing: 0.1, Direction: Either, Autocorrelation: AR1, MinSamples: 10}
}

// Validate names every field out of bounds.
func (c SequentialConfig) Validate() error {
	var errs []error
	if !(c.Alpha > 0 && c.Alpha <= 0.5) {
		errs = append(errs, fmt.Errorf("alpha: must be in (0, 0.5], got %v", c.Alpha))
	}
	if !(c.Mixing > 0 && c.Mixing <= 0.5) {
		errs = append(errs, fmt.Errorf("mixing: must be in (0, 0.5], got %v", c.Mixing))
	}
	if !slices.Contains([]Direction{Increase, Decrease, Either}, c.Direction) {
		errs = append(errs, fmt.Errorf(`direction: must be "increase", "decrease" or "either", got %q`, c.Direction))
	}
	if c.Autocorrelation != AR1 && c.Autocorrelation != Independent {
		errs = append(errs, fmt.Errorf(`autocorrelation: must be "ar1" or "independent", got %q`, c.Autocorrelation))
	}
	if c.MinSamples < 1 || c.MinSamples > 1_000_000 {
		errs = append(errs, fmt.Errorf("minSamples: must be in [1, 1000000], got %d", c.MinSamples))
	}
	return errors.Join(errs...)
}

// SequentialResult is one look's verdict.
type SequentialResult struct {
	// Decision is High or Low once the evidence crosses the threshold,
	// else Inconclusive: keep looking.
	Decision Classification
	Reason   string
	// Theta is U / (n m) - 1/2, Variance its variance under no effect
	// (ties and autocorrelation accounted for).
	Theta, Variance float64
	// EValue is the mixture likelihood ratio; the alarm is at Threshold
	// = 1 / Alpha.
	EValue, Threshold                  float64
	CanarySamples, BaselineSamples     int
	CanaryEffective, BaselineEffective float64
}

// Sequential judges all the samples seen so far (each side in time order,
// NaNs dropped) at one of many looks, so that over every look of a
// rollout the chance of a false alarm stays below Alpha: call it at each
// look with the cumulative samples and act on the first High or Low.
//
// It is a mixture sequential probability ratio test (Robbins; Johari et
// al., "Always valid inference", 2017) on the normal approximation of the
// Mann-Whitney statistic: theta-hat = U/(nm) - 1/2 is nearly normal with
// variance V around the true theta, and mixing the likelihood ratio of
// theta against 0 over theta ~ N(0, tau^2) gives
//
//	Lambda = sqrt(V / (V + tau^2)) * exp(theta-hat^2 tau^2 / (2 V (V + tau^2)))
//
// a nonnegative martingale under no effect, so by Ville's inequality it
// ever reaches 1/alpha with probability at most alpha, however often and
// whenever it is looked at. Alpha spending (O'Brien-Fleming, Pocock) would
// need the number of looks fixed in advance; a rollout's looks depend on
// its steps and pauses, so the test must not. With AR(1), V grows by the
// samples' n / n_eff (see Lag1Autocorrelation), without which correlated
// samples would be counted as independent evidence.
func Sequential(canary, baseline []float64, c SequentialConfig) (SequentialResult, error) {
	if err := c.Validate(); err != nil {
		return SequentialResult{}, err
	}
	canary, baseline = removeNaNs(canary), removeNaNs(baseline)
	n, m := len(canary), len(baseline)
	res := SequentialResult{Decision: Inconclusive, Threshold: 1 / c.Alpha, EValue: 1,
		CanarySamples: n, BaselineSamples: m, CanaryEffective: float64(n), BaselineEffective: float64(m)}
	if n < c.MinSamples || m < c.MinSamples {
		res.Reason = fmt.Sprintf("canary has %d samples and baseline %d; at least %d a side are needed before the first look counts", n, m, c.MinSamples)
		return res, nil
	}
	for _, v := range slices.Concat(canary, baseline) {
		if math.IsInf(v, 0) {
			return SequentialResult{}, fmt.Errorf("sample holds %v", v)
		}
	}
	inflation := 1.0
	if c.Autocorrelation == AR1 {
		res.CanaryEffective = EffectiveSize(n, Lag1Autocorrelation(canary))
		res.BaselineEffective = EffectiveSize(m, Lag1Autocorrelation(baseline))
		inflation = varianceInflation(n, m, res.CanaryEffective, res.BaselineEffective)
	}
	_, sigma, u := zAt(canary, baseline, 0, inflation)
	nm := float64(n) * float64(m)
	res.Theta = u/nm - 0.5
	if sigma == 0 {
		res.Reason = "every sample has the same value"
		return res, nil
	}
	v := (sigma / nm) * (sigma / nm)
	tau2 := c.Mixing * c.Mixing
	logE := 0.5*math.Log(v/(v+tau2)) + res.Theta*res.Theta*tau2/(2*v*(v+tau2))
	res.Variance, res.EValue = v, math.Exp(logE)
	crossed := logE >= math.Log(res.Threshold)
	switch {
	case crossed && res.Theta > 0 && c.Direction != Decrease:
		res.Decision = High
	case crossed && res.Theta < 0 && c.Direction != Increase:
		res.Decision = Low
	}
	res.Reason = fmt.Sprintf("P(canary > baseline) - 1/2 = %s with standard error %s; evidence %s against the alarm at %s (%s effective canary samples, %s baseline)",
		num(res.Theta), num(math.Sqrt(v)), num(res.EValue), num(res.Threshold), num(res.CanaryEffective), num(res.BaselineEffective))
	return res, nil
}
