package judge

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/stat/distuv"
)

// Simulated rollouts: looks of perLook new samples a side, up to looks
// looks, from AR(1) series with lag-1 autocorrelation rho.
const (
	simRuns    = 400
	simLooks   = 20
	simPerLook = 15
	simRho     = 0.6
)

// rollout returns the canary's and baseline's series of one simulated
// rollout: log-normal (values exp of an AR(1) with standard deviation
// sigma, 0.5 being a latency's usual spread), the canary's scaled by
// factor. Ranks do not change under exp, so sigma only matters once the
// canary differs.
func rollout(r *rand.Rand, factor, sigma float64) (canary, baseline []float64) {
	n := simLooks * simPerLook
	c, b := ar1(r, n, simRho, 0, sigma), ar1(r, n, simRho, 0, sigma)
	for i := range c {
		c[i], b[i] = factor*math.Exp(c[i]), math.Exp(b[i])
	}
	return c, b
}

// firstAlarm returns the look (1-based) at which decide first alarms, 0
// when it never does.
func firstAlarm(canary, baseline []float64, decide func(c, b []float64) bool) int {
	for k := 1; k <= simLooks; k++ {
		if decide(canary[:k*simPerLook], baseline[:k*simPerLook]) {
			return k
		}
	}
	return 0
}

// plain is the naive gate: a two-sided Mann-Whitney test at 5% at every
// look, samples taken as independent.
func plain(c, b []float64) bool {
	z, _, _ := zAt(c, b, 0, 1)
	return 2*distuv.UnitNormal.Survival(math.Abs(z)) < 0.05
}

func sequential(cfg SequentialConfig) func(c, b []float64) bool {
	return func(c, b []float64) bool {
		r, err := Sequential(c, b, cfg)
		if err != nil {
			panic(err)
		}
		return r.Decision != Inconclusive
	}
}

// TestSequentialFalseAlarms runs stable against stable: no look should
// alarm, and over all 20 looks of a rollout the sequential test alarms in
// at most alpha (5%, plus 2.5 points for the simulation's own error: its
// standard error at 5% over 400 runs is 1.1 points) of the rollouts. The
// plain per-look test, on the same rollouts, alarms far more often: that
// is the inflation the sequential test prevents, from repeated looks and
// from autocorrelation; without the AR(1) correction the sequential test
// inflates too.
func TestSequentialFalseAlarms(t *testing.T) {
	rng := newRNG(42)
	cfg := DefaultSequentialConfig()
	independent := cfg
	independent.Autocorrelation = Independent
	var seq, naive, noAR int
	for range simRuns {
		c, b := rollout(rng, 1, 1)
		if firstAlarm(c, b, sequential(cfg)) > 0 {
			seq++
		}
		if firstAlarm(c, b, plain) > 0 {
			naive++
		}
		if firstAlarm(c, b, sequential(independent)) > 0 {
			noAR++
		}
	}
	rate := func(k int) float64 { return float64(k) / simRuns }
	t.Logf("false alarms over %d looks: sequential %.3f, plain per-look test %.3f, sequential without the AR(1) correction %.3f",
		simLooks, rate(seq), rate(naive), rate(noAR))
	if rate(seq) > cfg.Alpha+0.025 {
		t.Errorf("sequential test: %.3f of stable rollouts alarmed, want at most %.3f", rate(seq), cfg.Alpha+0.025)
	}
	if rate(naive) < 3*cfg.Alpha {
		t.Errorf("plain per-look test: %.3f of stable rollouts alarmed; the simulation no longer shows the inflation", rate(naive))
	}
	if rate(noAR) < 2*cfg.Alpha {
		t.Errorf("without the AR(1) correction: %.3f of stable rollouts alarmed; the simulation no longer shows what the correction prevents", rate(noAR))
	}
}

// TestSequentialPower: a canary whose values are twice the baseline's
// (log-normal with sigma 0.5, AR(1) 0.6) is caught, as High, within the
// first 10 of its 20 looks in at least 95% of rollouts.
func TestSequentialPower(t *testing.T) {
	rng := newRNG(43)
	cfg := DefaultSequentialConfig()
	caught, sumLook := 0, 0
	for range simRuns / 2 {
		c, b := rollout(rng, 2, 0.5)
		k := firstAlarm(c, b, func(c, b []float64) bool {
			r, _ := Sequential(c, b, cfg)
			if r.Decision == Low {
				t.Fatalf("a doubled canary was judged Low: %s", r.Reason)
			}
			return r.Decision == High
		})
		if k > 0 && k <= 10 {
			caught++
			sumLook += k
		}
	}
	share := float64(caught) / (simRuns / 2)
	t.Logf("doubled canary caught in %.3f of rollouts, at look %.1f on average (%d samples a look)", share, float64(sumLook)/float64(max(caught, 1)), simPerLook)
	if share < 0.95 {
		t.Errorf("doubled canary caught within 10 looks in %.3f of rollouts, want at least 0.95", share)
	}
}

func TestSequentialCases(t *testing.T) {
	cfg := DefaultSequentialConfig()
	r, err := Sequential([]float64{1, 2}, []float64{1, 2, 3}, cfg)
	if err != nil || r.Decision != Inconclusive || r.Reason != "canary has 2 samples and baseline 3; at least 10 a side are needed before the first look counts" {
		t.Errorf("few samples: got %+v, %v", r, err)
	}
	low, high := make([]float64, 40), make([]float64, 40)
	for i := range low {
		low[i], high[i] = float64((i*7)%40), float64(100+(i*7)%40)
	}
	if r, _ := Sequential(high, low, cfg); r.Decision != High {
		t.Errorf("got %s, want High: %s", r.Decision, r.Reason)
	}
	dec := cfg
	dec.Direction = Decrease
	if r, _ := Sequential(high, low, dec); r.Decision != Inconclusive {
		t.Errorf("decrease watched: got %s, want Inconclusive", r.Decision)
	}
	if r, _ := Sequential(low, high, cfg); r.Decision != Low {
		t.Errorf("got %s, want Low", r.Decision)
	}
	bad := SequentialConfig{Alpha: 0, Mixing: 1, Direction: "x", Autocorrelation: "y"}
	if err := bad.Validate(); err == nil || err.Error() != "alpha: must be in (0, 0.5], got 0\nmixing: must be in (0, 0.5], got 1\n"+
		`direction: must be "increase", "decrease" or "either", got "x"`+"\n"+`autocorrelation: must be "ar1" or "independent", got "y"`+"\nminSamples: must be in [1, 1000000], got 0" {
		t.Errorf("got %v", err)
	}
}
