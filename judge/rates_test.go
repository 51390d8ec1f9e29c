package judge

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"gonum.org/v1/gonum/stat/distuv"
)

// rateSteps draws n steps of Poisson requests (rps a side per step) and
// binomial events at rate p for the baseline and p * ratio(i) for the
// canary at step i.
func rateSteps(r *rand.Rand, n int, perStep, p float64, ratio func(i int) float64) []RateStep {
	out := make([]RateStep, n)
	for i := range out {
		ct := distuv.Poisson{Lambda: perStep, Src: r}.Rand()
		bt := distuv.Poisson{Lambda: perStep, Src: r}.Rand()
		pc := min(1, p*ratio(i))
		var ce, be float64
		if ct > 0 {
			ce = distuv.Binomial{N: ct, P: pc, Src: r}.Rand()
		}
		if bt > 0 {
			be = distuv.Binomial{N: bt, P: p, Src: r}.Rand()
		}
		out[i] = RateStep{CanaryEvents: ce, CanaryTotal: ct, BaselineEvents: be, BaselineTotal: bt}
	}
	return out
}

func everyStep(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

// firstDecision looks after every step and returns the first decision
// other than Inconclusive and the step it came at (-1 for none).
func firstDecision(t *testing.T, steps []RateStep, starts []int, c RateConfig) (Classification, int) {
	t.Helper()
	for i := 1; i <= len(steps); i++ {
		var begun []int
		for _, s := range starts {
			if s < i {
				begun = append(begun, s)
			}
		}
		res, err := Rates(steps[:i], begun, c)
		if err != nil {
			t.Fatal(err)
		}
		if res.Decision == High || res.Decision == Low {
			return res.Decision, i
		}
	}
	return Inconclusive, -1
}

// wrongInAtMostAlpha draws 400 runs of 60 steps, looks after every step
// with a regression allowed to begin at each, and checks that wrong
// (High, or Pass) came at some look in at most alpha of them (Ville's
// bound), with room for the simulation's own error.
func wrongInAtMostAlpha(t *testing.T, seed uint64, draw func(r *rand.Rand) []RateStep, c RateConfig, wrong Classification) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 1))
	const runs = 400
	n := 0
	for range runs {
		steps := draw(r)
		for i := 1; i <= len(steps); i++ {
			res, err := Rates(steps[:i], everyStep(i), c)
			if err != nil {
				t.Fatal(err)
			}
			if res.Decision == wrong {
				n++
				break
			}
		}
	}
	// alpha 5%: 20 of 400; the binomial's 3 sigma above is 33.
	if limit := int(c.Alpha*runs + 3*math.Sqrt(c.Alpha*(1-c.Alpha)*runs)); n > limit {
		t.Errorf("%s in %d of %d runs, more than alpha %v allows (%d)", wrong, n, runs, c.Alpha, limit)
	}
	t.Logf("%s in %d of %d runs", wrong, n, runs)
}

// TestRatesFalseAlarmsOverEveryLook: a canary at the baseline's rate, or
// drifting below the margin, looked at after every one of 60 steps with a
// regression allowed to begin at each, is failed in at most alpha of runs
// (Ville's bound), with room for the simulation's own error.
func TestRatesFalseAlarmsOverEveryLook(t *testing.T) {
	c := DefaultRateConfig()
	c.Alpha, c.Margin, c.Starts = 0.05, 1.25, 60
	for _, tc := range []struct {
		name  string
		ratio func(i int) float64
	}{
		{"equal rates", func(int) float64 { return 1 }},
		{"at the margin", func(int) float64 { return 1.25 }},
		{"drifting below the margin", func(i int) float64 { return 1 + 0.25*math.Abs(math.Sin(float64(i)/5)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wrongInAtMostAlpha(t, 7, func(r *rand.Rand) []RateStep { return rateSteps(r, 60, 300, 0.02, tc.ratio) }, c, High)
		})
	}
}

// TestRatesCatchesALateRegression: three times the baseline's errors from
// step 40 on are caught soon after, because a test begins at every step; a
// single test begun at the first step is held back by the healthy steps
// before the onset.
func TestRatesCatchesALateRegression(t *testing.T) {
	c := DefaultRateConfig()
	c.Starts = 80
	r := rand.New(rand.NewPCG(3, 3))
	var everyStart, oneStart []int
	for range 20 {
		steps := rateSteps(r, 80, 3000, 0.01, func(i int) float64 {
			if i >= 40 {
				return 3
			}
			return 1
		})
		d, at := firstDecision(t, steps, everyStep(80), c)
		if d != High {
			t.Fatalf("a threefold regression from step 40 was %s", d)
		}
		if at <= 40 {
			t.Fatalf("failed at step %d, before the regression began", at)
		}
		everyStart = append(everyStart, at-40)
		single := c
		single.Starts = 1
		if d, at := firstDecision(t, steps, []int{0}, single); d == High {
			oneStart = append(oneStart, at-40)
		} else {
			oneStart = append(oneStart, 40)
		}
	}
	med := func(v []int) int {
		s := slices.Clone(v)
		slices.Sort(s)
		return s[len(s)/2]
	}
	if med(everyStart) > 3 {
		t.Errorf("median delay %d steps with a start at every step, want at most 3 (30 events a step)", med(everyStart))
	}
	if med(oneStart) <= med(everyStart) {
		t.Errorf("a single start was not slower (%d steps) than one at every step (%d)", med(oneStart), med(everyStart))
	}
}

func TestRatesVerdicts(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	healthy := rateSteps(r, 30, 3000, 0.01, func(int) float64 { return 1 })
	tripled := rateSteps(r, 30, 3000, 0.01, func(int) float64 { return 3 })
	halved := rateSteps(r, 30, 3000, 0.01, func(int) float64 { return 0.5 })
	thin := rateSteps(r, 30, 3, 0.01, func(int) float64 { return 1 })
	none := make([]RateStep, 10)
	for i := range none {
		none[i] = RateStep{CanaryTotal: 100, BaselineTotal: 100}
	}
	decrease, either, floor := DefaultRateConfig(), DefaultRateConfig(), DefaultRateConfig()
	decrease.Direction, either.Direction, floor.Floor = Decrease, Either, 0.001
	clean := make([]RateStep, 30)
	for i := range clean {
		clean[i] = RateStep{CanaryTotal: 1000, BaselineTotal: 1000}
	}
	belowFloor := rateSteps(r, 30, 3000, 0.0001, func(int) float64 { return 4 })
	for _, tc := range []struct {
		name   string
		steps  []RateStep
		c      RateConfig
		want   Classification
		reason string
	}{
		{"healthy with traffic passes", healthy, DefaultRateConfig(), Pass, "evidence of a regression"},
		{"tripled errors fail", tripled, DefaultRateConfig(), High, "rate ratio"},
		{"halved errors pass", halved, DefaultRateConfig(), Pass, ""},
		{"halved orders fail when decrease is watched", halved, decrease, Low, ""},
		{"either catches a decrease", halved, either, Low, ""},
		{"either passes only what neither way regressed", healthy, either, Pass, ""},
		{"thin traffic is inconclusive, saying how much more would decide", thin, DefaultRateConfig(), Inconclusive, "more requests on each side would decide"},
		{"no events at all is inconclusive", none, DefaultRateConfig(), Inconclusive, "no baseline events yet"},
		{"no steps is inconclusive", nil, DefaultRateConfig(), Inconclusive, "would not soon decide"},
		{"no events on either side cannot be compared without a floor", clean, DefaultRateConfig(), Inconclusive, "with no events on either side the rates cannot be compared"},
		{"no events on either side pass below a floor", clean, floor, Pass, ""},
		{"four times a rate far below the floor passes", belowFloor, floor, Pass, ""},
		{"tripled errors above the floor still fail", tripled, floor, High, ""},
		{"too few requests to show the floor say how many more", clean[:2], floor, Inconclusive, "more requests on each side would decide"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Rates(tc.steps, everyStep(len(tc.steps)), tc.c)
			if err != nil {
				t.Fatal(err)
			}
			if res.Decision != tc.want || !strings.Contains(res.Reason, tc.reason) {
				t.Errorf("got %s: %s; want %s with %q", res.Decision, res.Reason, tc.want, tc.reason)
			}
		})
	}
}

// TestRatesFloorPassesNoCanaryAtTheFloor: a canary whose rate is at the
// floor, against a baseline with no events at all (so that the ratio says
// nothing), is passed in at most alpha of runs looked at after every step.
func TestRatesFloorPassesNoCanaryAtTheFloor(t *testing.T) {
	c := DefaultRateConfig()
	c.Alpha, c.Floor, c.Starts = 0.05, 0.01, 60
	wrongInAtMostAlpha(t, 11, func(r *rand.Rand) []RateStep {
		steps := rateSteps(r, 60, 300, 0.01, func(int) float64 { return 1 })
		for i := range steps {
			steps[i].BaselineEvents = 0
		}
		return steps
	}, c, Pass)
}

// TestRatesFloorFailsNoCanaryAtTheFloor: a canary at the floor, ten times
// its baseline's rate, is failed in at most alpha of runs looked at after
// every step: below the floor an increase does not matter.
func TestRatesFloorFailsNoCanaryAtTheFloor(t *testing.T) {
	c := DefaultRateConfig()
	c.Alpha, c.Floor, c.Starts = 0.05, 0.01, 60
	tenfold := func(r *rand.Rand) []RateStep { return rateSteps(r, 60, 300, 0.001, func(int) float64 { return 10 }) }
	wrongInAtMostAlpha(t, 13, tenfold, c, High)
	// Without the floor the same canaries fail: the ratio alone is plain.
	c.Floor = 0
	if d, _ := firstDecision(t, tenfold(rand.New(rand.NewPCG(13, 2))), everyStep(60), c); d != High {
		t.Errorf("ten times the baseline's rate without a floor: %s, want High", d)
	}
}

// TestRatesMoreRequests: the estimate of how much more traffic would
// decide is about right: thin healthy traffic, extended by as many
// requests as it said, decides in at least half the runs.
func TestRatesMoreRequests(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	decided, judged := 0, 0
	for judged < 50 {
		first := rateSteps(r, 10, 25, 0.02, func(int) float64 { return 1 })
		res, err := Rates(first, []int{0}, DefaultRateConfig())
		if err != nil {
			t.Fatal(err)
		}
		if res.Decision != Inconclusive {
			continue // decided already, by chance: nothing to extend
		}
		if math.IsInf(res.MoreRequests, 1) {
			t.Fatalf("first 10 steps: %s", res.Reason)
		}
		judged++
		more := rateSteps(r, 1, res.MoreRequests, 0.02, func(int) float64 { return 1 })
		after, err := Rates(append(first, more...), []int{0}, DefaultRateConfig())
		if err != nil {
			t.Fatal(err)
		}
		if after.Decision != Inconclusive {
			decided++
		}
	}
	// Aimed at nine in ten at the rates seen; the rates themselves are
	// estimates from few events, so ask for at least half.
	if decided < 25 {
		t.Errorf("the traffic said to be needed decided %d of 50 runs, want at least half", decided)
	}
}

func TestRatesRefusesBadInput(t *testing.T) {
	for _, tc := range []struct {
		name  string
		steps []RateStep
		c     RateConfig
		want  string
	}{
		{"alpha", nil, RateConfig{Alpha: 0, Margin: 1, Effect: 2, Direction: Increase, Starts: 1}, "alpha"},
		{"margin", nil, RateConfig{Alpha: 0.01, Margin: 0.5, Effect: 2, Direction: Increase, Starts: 1}, "margin"},
		{"effect", nil, RateConfig{Alpha: 0.01, Margin: 2, Effect: 2, Direction: Increase, Starts: 1}, "effect"},
		{"direction", nil, RateConfig{Alpha: 0.01, Margin: 1, Effect: 2, Direction: "up", Starts: 1}, "direction"},
		{"starts", nil, RateConfig{Alpha: 0.01, Margin: 1, Effect: 2, Direction: Increase}, "starts"},
		{"negative", []RateStep{{CanaryEvents: -1, CanaryTotal: 1}}, DefaultRateConfig(), "not negative"},
		{"NaN", []RateStep{{CanaryTotal: math.NaN()}}, DefaultRateConfig(), "finite"},
		{"swapped", []RateStep{{CanaryEvents: 100, CanaryTotal: 5, BaselineTotal: 5}}, DefaultRateConfig(), "swapped"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Rates(tc.steps, nil, tc.c)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error naming %q", err, tc.want)
			}
		})
	}
}
