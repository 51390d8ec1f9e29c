package judge

import (
	"errors"
	"fmt"
	"math"
	"strconv"
)

// RateStep is one step of a rate comparison: the events (errors, requests
// slower than a latency objective) and the requests they are out of, on
// each side, over the same stretch of time.
type RateStep struct {
	CanaryEvents, CanaryTotal     float64
	BaselineEvents, BaselineTotal float64
}

// RateConfig is how two rates are compared.
type RateConfig struct {
	// Alpha bounds the chance of a wrong verdict: of failing a canary
	// whose rate is at most Margin times the baseline's, over every look
	// and every moment a regression might have begun; and of passing one
	// whose rate is Effect times the baseline's or more. In (0, 0.5].
	Alpha float64
	// Margin is the ratio of the canary's rate to the baseline's that is
	// not a regression, in [1, 100].
	Margin float64
	// Effect is the smallest ratio that must be caught, above Margin and at
	// most 1000: a canary is passed only on evidence that its ratio is
	// below it.
	Effect float64
	// Direction is which change fails: Increase (more events, as errors)
	// or Decrease (fewer, as orders placed). Either watches both, each at
	// half of Alpha.
	Direction Direction
	// Floor is the canary's rate of events below which an increase does
	// not matter, whatever the baseline's, in [0, 0.1]; 0 is none. With a
	// floor, a canary fails only on evidence that its rate is above the
	// floor too, and evidence that it is below the floor passes as
	// evidence of no regression does, so that a canary and a baseline
	// that both serve without errors can pass. It bounds increases only
	// (Direction Increase, and that half of Either).
	Floor float64
	// Starts is how many moments the regression may begin at, in
	// [1, 100000]: the test is the average of one started at each, so
	// that a regression that begins late is not hidden by the healthy data
	// before it. The looks of a bounded analysis are the natural choice.
	Starts int
}

// DefaultRateConfig: 1% wrong verdicts, not a regression up to the
// baseline's rate, twice it must be caught, more events fail, a regression
// may begin at any of 30 looks.
func DefaultRateConfig() RateConfig {
	return RateConfig{Alpha: 0.01, Margin: 1, Effect: 2, Direction: Increase, Starts: 30}
}

// Validate names every field out of bounds.
func (c RateConfig) Validate() error {
	var errs []error
	if !(c.Alpha > 0 && c.Alpha <= 0.5) {
		errs = append(errs, fmt.Errorf("alpha: must be in (0, 0.5], got %v", c.Alpha))
	}
	if !(c.Margin >= 1 && c.Margin <= 100) {
		errs = append(errs, fmt.Errorf("margin: must be in [1, 100], got %v", c.Margin))
	}
	if !(c.Effect > c.Margin && c.Effect <= 1000) {
		errs = append(errs, fmt.Errorf("effect: must be above margin %v and at most 1000, got %v", c.Margin, c.Effect))
	}
	if !(c.Floor >= 0 && c.Floor <= 0.1) {
		errs = append(errs, fmt.Errorf("floor: must be in [0, 0.1], got %v", c.Floor))
	}
	if c.Direction != Increase && c.Direction != Decrease && c.Direction != Either {
		errs = append(errs, fmt.Errorf(`direction: must be "increase", "decrease" or "either", got %q`, c.Direction))
	}
	if c.Starts < 1 || c.Starts > 100_000 {
		errs = append(errs, fmt.Errorf("starts: must be in [1, 100000], got %d", c.Starts))
	}
	return errors.Join(errs...)
}

// RateResult is one look's verdict on two rates.
type RateResult struct {
	// Decision is High (or Low, for Decrease) once the evidence of a
	// regression crosses the threshold, Pass once the evidence that there
	// is none does, else Inconclusive.
	Decision Classification
	Reason   string
	// Ratio is the canary's rate over the baseline's, over every step.
	Ratio float64
	// Regression and NoRegression are the evidence (e-values) for and
	// against a regression; each decides at Threshold = 1 / Alpha (2 /
	// Alpha for Either).
	Regression, NoRegression, Threshold float64
	// Events and Totals are the sums over the steps, canary then baseline.
	CanaryEvents, CanaryTotal, BaselineEvents, BaselineTotal float64
	// MoreRequests, when Inconclusive, is about how many more requests on
	// each side would decide at the rates seen so far; +Inf when those
	// rates would never decide (their ratio lies where neither test gains).
	MoreRequests float64
}

// floorShare is the weight of the evidence that the canary's rate is below
// the floor in the evidence of no regression.
const floorShare = 0.1

// ratioGrid are the ratios, as multiples of the null's in log terms, that
// the regression test mixes over: from halfway to Effect to four times
// beyond it (with Margin 1 and Effect 2: 1.41, 2, 2.83, 4, 8).
var ratioGrid = []float64{0.5, 1, 1.5, 2, 3}

// Rates compares the canary's rate of events with the baseline's, step by
// step, so that what hits both sides at once (load, an incident
// downstream) cancels: given a step's events, each is the canary's with
// chance q = r a / (r a + b), where a and b are the sides' requests and r
// the ratio of their rates. The evidence of a regression is the likelihood
// ratio of r above Margin against r = Margin, mixed over a grid of ratios
// (ratioGrid) and over the Starts moments at which the regression may
// have begun (a step's share of them, the first at step 0); the evidence of
// none, that of r at or below Margin against r = Effect, over every step.
// Both are nonnegative supermartingales when their null holds, at every
// step and whatever the step's rates, so that by Ville's inequality
// neither reaches 1/Alpha with chance above Alpha, however often it is
// looked at: repeated looks do not add up to false rollbacks, and slow
// drifts of either side's rate below the margin do not count as evidence.
//
// starts says at which steps the regression test begins one of its
// averaged tests, in the same places at every look (the steps at which
// looks were taken, say); nil is one at the first step.
func Rates(steps []RateStep, starts []int, c RateConfig) (RateResult, error) {
	if err := c.Validate(); err != nil {
		return RateResult{}, err
	}
	for i, s := range steps {
		for _, v := range []float64{s.CanaryEvents, s.CanaryTotal, s.BaselineEvents, s.BaselineTotal} {
			if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
				return RateResult{}, fmt.Errorf("step %d holds %v: counts must be finite and not negative", i, v)
			}
		}
		if s.CanaryEvents > s.CanaryTotal*(1+1e-9)+1 || s.BaselineEvents > s.BaselineTotal*(1+1e-9)+1 {
			return RateResult{}, fmt.Errorf("step %d counts more events than requests (%v of %v, %v of %v): are the events and totals queries swapped?",
				i, s.CanaryEvents, s.CanaryTotal, s.BaselineEvents, s.BaselineTotal)
		}
	}
	if starts == nil {
		starts = []int{0}
	}
	for _, s := range starts {
		if s < 0 {
			return RateResult{}, fmt.Errorf("start %d is before the first step", s)
		}
	}
	res := RateResult{Decision: Inconclusive, Threshold: 1 / c.Alpha, Ratio: math.NaN()}
	for _, s := range steps {
		res.CanaryEvents += s.CanaryEvents
		res.CanaryTotal += s.CanaryTotal
		res.BaselineEvents += s.BaselineEvents
		res.BaselineTotal += s.BaselineTotal
	}
	if res.CanaryTotal > 0 && res.BaselineTotal > 0 && res.BaselineEvents > 0 {
		res.Ratio = (res.CanaryEvents / res.CanaryTotal) / (res.BaselineEvents / res.BaselineTotal)
	}
	alpha := c.Alpha
	directions := []Direction{c.Direction}
	if c.Direction == Either {
		alpha /= 2
		directions = []Direction{Increase, Decrease}
	}
	res.Threshold = 1 / alpha
	res.NoRegression = math.Inf(1)
	res.MoreRequests = math.Inf(1)
	for _, d := range directions {
		oriented := steps
		if d == Decrease {
			oriented = swapSides(steps)
		}
		reg := regressionEvidence(oriented, starts, c)
		if c.Floor > 0 && d == Increase {
			// Below the floor an increase does not matter: a regression
			// needs evidence of a rate above it as well.
			reg = min(reg, aboveFloorEvidence(oriented, starts, c))
		}
		// No regression over the whole run, and none over its later half,
		// so that one that began late is not passed on the strength of the
		// healthy steps before it.
		half := oriented[len(oriented)/2:]
		none := min(noRegressionEvidence(oriented, c), noRegressionEvidence(half, c))
		var below float64
		if c.Floor > 0 && d == Increase {
			// A regression is now a rate above effect times the baseline's
			// and above the floor: evidence against either rules it out,
			// and a weighted average of the two is evidence against both at
			// once. Most of the weight stays on the comparison, which
			// decides most canaries; the floor is for sides without events.
			below = min(floorEvidence(oriented, c.Floor), floorEvidence(half, c.Floor))
			none = floorShare*below + (1-floorShare)*none
		}
		if reg > res.Regression {
			res.Regression = reg
		}
		// Both directions must be ruled out to pass.
		res.NoRegression = min(res.NoRegression, none)
		switch {
		case reg >= res.Threshold && d == Increase:
			res.Decision = High
		case reg >= res.Threshold:
			res.Decision = Low
		}
		res.MoreRequests = min(res.MoreRequests, moreRequests(oriented, reg, none, res.Threshold, c))
		if c.Floor > 0 && d == Increase && none < res.Threshold {
			res.MoreRequests = min(res.MoreRequests, requestsBelowFloor(oriented, below, res.Threshold/floorShare, c.Floor))
		}
	}
	if res.Decision == Inconclusive && res.NoRegression >= res.Threshold {
		res.Decision = Pass
	}
	res.Reason = rateReason(res, c)
	return res, nil
}

// swapSides turns a decrease of the canary's rate into an increase of the
// baseline's relative to it.
func swapSides(steps []RateStep) []RateStep {
	out := make([]RateStep, len(steps))
	for i, s := range steps {
		out[i] = RateStep{CanaryEvents: s.BaselineEvents, CanaryTotal: s.BaselineTotal, BaselineEvents: s.CanaryEvents, BaselineTotal: s.CanaryTotal}
	}
	return out
}

// logLR is the log likelihood ratio of one step's split of events between
// the sides, at ratio r1 against r0. A step in which either side served
// nothing says nothing.
func logLR(s RateStep, r1, r0 float64) float64 {
	if s.CanaryTotal <= 0 || s.BaselineTotal <= 0 || s.CanaryEvents+s.BaselineEvents == 0 {
		return 0
	}
	q := func(r float64) float64 { return r * s.CanaryTotal / (r*s.CanaryTotal + s.BaselineTotal) }
	q1, q0 := q(r1), q(r0)
	return s.CanaryEvents*math.Log(q1/q0) + s.BaselineEvents*math.Log((1-q1)/(1-q0))
}

// regressionEvidence is the average, over the ratio grid and over Starts
// moments, of the likelihood ratio of r against Margin from each moment
// on (fromStarts).
func regressionEvidence(steps []RateStep, starts []int, c RateConfig) float64 {
	span := math.Log(c.Effect / c.Margin)
	total := 0.0
	for _, k := range ratioGrid {
		r := c.Margin * math.Exp(k*span)
		total += fromStarts(steps, starts, c.Starts, func(s RateStep) float64 { return logLR(s, r, c.Margin) })
	}
	return total / float64(len(ratioGrid))
}

// aboveFloorEvidence is the average over Starts moments of the likelihood
// ratio of the canary's rate at twice the floor against the floor, from
// each moment on: a nonnegative supermartingale while the rate is at or
// below the floor.
func aboveFloorEvidence(steps []RateStep, starts []int, c RateConfig) float64 {
	up, down := math.Log(2), math.Log((1-2*c.Floor)/(1-c.Floor))
	return fromStarts(steps, starts, c.Starts, func(s RateStep) float64 {
		return s.CanaryEvents*up + (s.CanaryTotal-s.CanaryEvents)*down
	})
}

// fromStarts is the average over n moments of the product of a step's
// likelihood ratio (its log, logLR) from each moment on. The moments are
// the first n of starts (those past the last step not begun yet, so still
// 1), and, when starts holds fewer, as many more to come, each still 1: a
// fixed mixture, whatever the number of looks.
func fromStarts(steps []RateStep, starts []int, n int, logLR func(RateStep) float64) float64 {
	if len(starts) > n {
		starts = starts[:n]
	}
	// Cumulative log LR from the end back, so each start is one sum.
	tail := make([]float64, len(steps)+1)
	for i := len(steps) - 1; i >= 0; i-- {
		tail[i] = tail[i+1] + logLR(steps[i])
	}
	total := float64(n - len(starts))
	for _, s := range starts {
		total += math.Exp(tail[min(s, len(steps))])
	}
	return total / float64(n)
}

// noRegressionEvidence is the likelihood ratio of r at or below Margin
// (the average of Margin and half of it) against Effect, over every step.
func noRegressionEvidence(steps []RateStep, c RateConfig) float64 {
	total := 0.0
	for _, r := range []float64{c.Margin, c.Margin / 2} {
		sum := 0.0
		for _, s := range steps {
			sum += logLR(s, r, c.Effect)
		}
		total += math.Exp(sum)
	}
	return total / 2
}

// floorEvidence is the likelihood ratio of the canary's rate at half the
// floor against the floor, over every step: a nonnegative supermartingale
// while the rate is at or above the floor.
func floorEvidence(steps []RateStep, floor float64) float64 {
	sum := 0.0
	for _, s := range steps {
		sum += s.CanaryEvents*math.Log(0.5) + (s.CanaryTotal-s.CanaryEvents)*math.Log((1-floor/2)/(1-floor))
	}
	return math.Exp(sum)
}

// requestsBelowFloor is, as moreRequests, about how many more canary
// requests would bring the evidence that its rate is below the floor to
// threshold, at the rate seen so far.
func requestsBelowFloor(steps []RateStep, evidence, threshold, floor float64) float64 {
	var events, total float64
	for _, s := range steps {
		events, total = events+s.CanaryEvents, total+s.CanaryTotal
	}
	p := (events + 0.5) / (total + 1)
	a, b := math.Log(0.5), math.Log((1-floor/2)/(1-floor))
	d, v := p*a+(1-p)*b, p*(1-p)*(a-b)*(a-b)
	if d <= 0 {
		return math.Inf(1)
	}
	const z = 1.2816
	missing := math.Log(threshold) - math.Log(max(evidence, 1e-300))
	root := (z*math.Sqrt(v) + math.Sqrt(z*z*v+4*d*missing)) / (2 * d)
	return root * root
}

// moreRequests estimates how many more requests on each side would bring
// either evidence to the threshold in nine cases out of ten, were the
// rates seen so far to go on. Each event adds to the log evidence a step
// of mean D (the Kullback-Leibler divergence) and variance V, so after n
// more events it is about normal, n D above where it is with variance n V:
// n solves n D - z sqrt(n V) = the log evidence still missing, z = 1.28.
func moreRequests(steps []RateStep, reg, none, threshold float64, c RateConfig) float64 {
	var ce, ct, be, bt float64
	for _, s := range steps {
		ce, ct, be, bt = ce+s.CanaryEvents, ct+s.CanaryTotal, be+s.BaselineEvents, bt+s.BaselineTotal
	}
	if ct <= 0 || bt <= 0 {
		return math.Inf(1)
	}
	// The rates, with half an event each so that none seen is not a rate
	// of zero.
	pc, pb := (ce+0.5)/(ct+1), (be+0.5)/(bt+1)
	events := pc + pb // per request on each side
	q := pc / (pc + pb)
	const z = 1.2816 // the normal's 90th percentile
	eventsFor := func(r1, r0, evidence float64) float64 {
		q1, q0 := r1/(r1+1), r0/(r0+1)
		a, b := math.Log(q1/q0), math.Log((1-q1)/(1-q0))
		d, v := q*a+(1-q)*b, q*(1-q)*(a-b)*(a-b)
		missing := math.Log(threshold) - math.Log(max(evidence, 1e-300))
		if d <= 0 {
			return math.Inf(1)
		}
		root := (z*math.Sqrt(v) + math.Sqrt(z*z*v+4*d*missing)) / (2 * d)
		return root * root
	}
	need := math.Inf(1)
	if reg < threshold {
		for _, k := range ratioGrid {
			need = min(need, eventsFor(c.Margin*math.Pow(c.Effect/c.Margin, k), c.Margin, reg))
		}
	}
	if none < threshold {
		need = min(need, eventsFor(c.Margin, c.Effect, none))
	}
	return need / events
}

func rateReason(r RateResult, c RateConfig) string {
	ratio := "no baseline events yet"
	if !math.IsNaN(r.Ratio) {
		ratio = "rate ratio " + num(r.Ratio)
	}
	seen := fmt.Sprintf("%s (canary %s events in %s requests, baseline %s in %s); evidence of a regression above %s× %s, of none (below %s×) %s, each deciding at %s",
		ratio, count(r.CanaryEvents), count(r.CanaryTotal), count(r.BaselineEvents), count(r.BaselineTotal),
		num(c.Margin), num(r.Regression), num(c.Effect), num(r.NoRegression), num(r.Threshold))
	if r.Decision != Inconclusive {
		return seen
	}
	if r.CanaryEvents+r.BaselineEvents == 0 && r.CanaryTotal > 0 && r.BaselineTotal > 0 && c.Floor == 0 {
		return seen + "; with no events on either side the rates cannot be compared (a floor lets a canary pass whose events are rare enough)"
	}
	if math.IsInf(r.MoreRequests, 1) {
		return seen + "; at these rates more traffic would not soon decide"
	}
	return fmt.Sprintf("%s; about %s more requests on each side would decide at these rates", seen, count(math.Ceil(r.MoreRequests)))
}

// count shows a count of events or requests whole, as people count them
// (increase() and the like make fractions), up to a trillion.
func count(v float64) string {
	if v >= 1e12 {
		return num(v)
	}
	return strconv.FormatFloat(math.Round(v), 'f', 0, 64)
}
