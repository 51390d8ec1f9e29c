package judge

import (
	"math"
	"math/rand/v2"
)

// newRNG is a seeded source: every simulation in these tests is
// reproducible.
func newRNG(seed uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// ar1 returns n values of a stationary Gaussian AR(1) series with lag-1
// autocorrelation rho, mean and marginal standard deviation sigma.
func ar1(r *rand.Rand, n int, rho, mean, sigma float64) []float64 {
	v := make([]float64, n)
	e := sigma * math.Sqrt(1-rho*rho)
	x := sigma * r.NormFloat64()
	for i := range v {
		v[i] = mean + x
		x = rho*x + e*r.NormFloat64()
	}
	return v
}
