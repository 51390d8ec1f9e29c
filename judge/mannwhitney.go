package judge

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/gonum/stat/distuv"
)

// MannWhitneyResult is the two-sided Mann-Whitney U (Wilcoxon rank-sum)
// test of x against y, with the Hodges-Lehmann estimate of the location
// shift x - y and its confidence interval.
type MannWhitneyResult struct {
	// Lower and Upper bound the confidence interval of the shift x - y.
	Lower, Upper float64
	// Estimate is the Hodges-Lehmann estimate of the shift: the median of
	// the pairwise differences x_i - y_j.
	Estimate float64
	// U counts the pairs with x_i > y_j, ties counting one half.
	U float64
	// Z is the continuity-corrected normal score of U at no shift, and
	// PValue its two-sided p-value.
	Z, PValue float64
	// Sigma is the standard deviation of U under no shift, with the ties
	// correction and the variance inflation applied.
	Sigma float64
}

// ErrAllTied is returned when every observation of both samples has the
// same value: ranks carry no information then.
var ErrAllTied = errors.New("cannot compute a confidence interval when all observations are tied")

// MannWhitney tests x against y as Kayenta's MannWhitney.mannWhitneyUTest
// (and R's wilcox.test with conf.int, exact = FALSE, correct = TRUE) does:
// the normal approximation of U with the ties and continuity corrections.
// confidence is the interval's level, in (0, 1).
func MannWhitney(x, y []float64, confidence float64) (MannWhitneyResult, error) {
	return mannWhitney(x, y, confidence, 1)
}

// mannWhitney is MannWhitney with the variance of U multiplied by
// inflation (>= 1), the correction for autocorrelated samples.
//
// Kayenta and R find each bound as the root of
//
//	f(mu) = (U(mu) - nm/2 - sign(U(mu) - nm/2)/2) / sigma - z
//
// with a Brent solver whose absolute tolerance is 1e-4. U(mu), the number
// of pairs with x_i - mu > y_j, is a step function that only changes at
// the pairwise differences, so f's root is one of those differences (or,
// when f is zero over an interval, that interval). We find it exactly
// among the sorted differences instead of iterating: the result is the
// point the solver converges to, without its tolerance, which matters for
// metrics whose values are smaller than 1e-4.
func mannWhitney(x, y []float64, confidence, inflation float64) (MannWhitneyResult, error) {
	n, m := len(x), len(y)
	switch {
	case n == 0 || m == 0:
		return MannWhitneyResult{}, fmt.Errorf("need samples on both sides, got %d and %d", n, m)
	case !(confidence > 0 && confidence < 1):
		return MannWhitneyResult{}, fmt.Errorf("confidence must be in (0, 1), got %v", confidence)
	case !(inflation >= 1) || math.IsInf(inflation, 0):
		return MannWhitneyResult{}, fmt.Errorf("variance inflation must be finite and at least 1, got %v", inflation)
	}
	for _, v := range x {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return MannWhitneyResult{}, fmt.Errorf("sample holds %v", v)
		}
	}
	for _, v := range y {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return MannWhitneyResult{}, fmt.Errorf("sample holds %v", v)
		}
	}

	z0, sigma0, u := zAt(x, y, 0, inflation)
	if sigma0 == 0 {
		return MannWhitneyResult{}, ErrAllTied
	}
	res := MannWhitneyResult{U: u, Z: z0, Sigma: sigma0}
	res.PValue = 2 * math.Min(distuv.UnitNormal.CDF(z0), distuv.UnitNormal.Survival(z0))

	d := differences(x, y)
	res.Estimate = median(d)

	// Off the differences themselves there are no ties between the shifted
	// x and y, so sigma only depends on the ties within each sample.
	sigma := math.Sqrt(float64(n) * float64(m) / 12 *
		(float64(n+m+1) - (tieSum(x)+tieSum(y))/(float64(n+m)*float64(n+m-1))) * inflation)
	if sigma == 0 {
		return MannWhitneyResult{}, ErrAllTied
	}
	q := distuv.UnitNormal.Quantile(1 - (1-confidence)/2)
	res.Lower = stepRoot(d, sigma, q)
	res.Upper = stepRoot(d, sigma, -q)
	return res, nil
}

// stepRoot returns where f(mu) = h(U(mu))/sigma - zq changes sign, d being
// the sorted pairwise differences (see mannWhitney). k, the number of
// differences below mu, grows with mu and f falls with k; the root is the
// difference at which k passes the first level where f <= 0, the middle of
// the interval where f is zero when it is zero on one, and the smallest
// or largest difference when f keeps its sign, as Kayenta's findRoot.
func stepRoot(d []float64, sigma, zq float64) float64 {
	total := len(d)
	g := func(k int) float64 {
		dz := float64(total-k) - float64(total)/2
		return (dz-0.5*sign(dz))/sigma - zq
	}
	// Smallest k in [0, total] with g(k) <= 0; total+1 when there is none.
	lo, hi := 0, total+1
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if g(mid) <= 0 {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	k := lo
	switch {
	case k > total:
		return d[total-1]
	case k == 0:
		return d[0]
	}
	at := d[k-1]
	if g(k) < 0 {
		return at
	}
	// f is zero from d[k-1] until the first level where it is negative.
	lo, hi = k, total+1
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if g(mid) < 0 {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	if lo > total {
		return (at + d[total-1]) / 2
	}
	return (at + d[lo-1]) / 2
}

// zAt is Kayenta's wilcoxonDiff at quantile 0: the continuity-corrected
// normal score of U for the shift mu, ranking x - mu with y (ties get
// their average rank), with sigma (ties corrected, times inflation's
// square root) and U.
func zAt(x, y []float64, mu, inflation float64) (z, sigma, u float64) {
	n, m := len(x), len(y)
	all := make([]float64, 0, n+m)
	for _, v := range x {
		all = append(all, v-mu)
	}
	all = append(all, y...)
	r, ties := ranks(all)
	var w float64
	for i := range n {
		w += r[i]
	}
	fn, fm := float64(n), float64(m)
	u = w - fn*(fn+1)/2
	dz := u - fn*fm/2
	sigma = math.Sqrt(fn * fm / 12 * ((fn + fm + 1) - ties/((fn+fm)*(fn+fm-1))) * inflation)
	if sigma == 0 {
		return 0, 0, u
	}
	return (dz - 0.5*sign(dz)) / sigma, sigma, u
}

// ranks returns the average ranks (1-based) of v and the ties term
// sum(t^3 - t) over its groups of equal values.
func ranks(v []float64) ([]float64, float64) {
	idx := make([]int, len(v))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int {
		switch {
		case v[a] < v[b]:
			return -1
		case v[a] > v[b]:
			return 1
		}
		return 0
	})
	r := make([]float64, len(v))
	var ties float64
	for i := 0; i < len(idx); {
		j := i + 1
		for j < len(idx) && v[idx[j]] == v[idx[i]] {
			j++
		}
		avg := float64(i+j+1) / 2
		for k := i; k < j; k++ {
			r[idx[k]] = avg
		}
		if t := float64(j - i); t > 1 {
			ties += t*t*t - t
		}
		i = j
	}
	return r, ties
}

// tieSum is sum(t^3 - t) over v's groups of equal values.
func tieSum(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	var ties float64
	for i := 0; i < len(s); {
		j := i + 1
		for j < len(s) && s[j] == s[i] {
			j++
		}
		if t := float64(j - i); t > 1 {
			ties += t*t*t - t
		}
		i = j
	}
	return ties
}

// differences returns every x_i - y_j, sorted.
func differences(x, y []float64) []float64 {
	d := make([]float64, 0, len(x)*len(y))
	for _, a := range x {
		for _, b := range y {
			d = append(d, a-b)
		}
	}
	slices.Sort(d)
	return d
}

// median of sorted s, the mean of the middle two when len(s) is even.
func median(s []float64) float64 {
	h := len(s) / 2
	if len(s)%2 == 1 {
		return s[h]
	}
	return (s[h-1] + s[h]) / 2
}

func sign(v float64) float64 {
	switch {
	case v > 0:
		return 1
	case v < 0:
		return -1
	}
	return 0
}
