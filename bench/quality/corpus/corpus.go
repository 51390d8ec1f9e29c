// Package corpus generates a synthetic corpus of canaries, deterministically
// from a seed: Istio's request counters and latency histograms for a canary
// and its stable baseline, with noisy, autocorrelated error ratios and
// latencies, low and high traffic, incidents that hit both sides, a canary
// that is slower while it warms up, and regressions of the canary's errors
// or latency that start at various moments of the run. It is pure: the
// samples come out as OpenMetrics text, for promtool to backfill.
package corpus

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"time"

	"gonum.org/v1/gonum/stat/distuv"
)

// Kind says what happens to a scenario's canary.
type Kind string

const (
	// Healthy canaries behave as their baseline does.
	Healthy Kind = "healthy"
	// Errors canaries return ErrorFactor times the baseline's error ratio from Onset on.
	Errors Kind = "errors"
	// Latency canaries answer LatencyFactor times slower from Onset on.
	Latency Kind = "latency"
)

// Incident is a stretch in which both sides fail and slow down alike.
type Incident struct {
	// At is when it starts, after the run starts (negative: before).
	At, For time.Duration
	// Errors and Latency multiply both sides' error ratio and latency.
	Errors, Latency float64
}

// Scenario is one canary and its baseline.
type Scenario struct {
	// Name is unique; the workloads are Name-canary and Name-stable.
	Name string
	Kind Kind
	// RPS is each side's mean request rate.
	RPS float64
	// ErrorRatio is the baseline's mean share of 5xx answers.
	ErrorRatio float64
	// LatencyMS is the baseline's median latency.
	LatencyMS float64
	// ErrorFactor and LatencyFactor multiply the canary's error ratio and
	// latency from Onset (after the run starts) on; 1 for a healthy canary.
	ErrorFactor, LatencyFactor float64
	Onset                      time.Duration
	// Incident, when set, hits both sides.
	Incident *Incident
}

// Objective is the scenario's latency objective in milliseconds: the
// smallest of Istio's bucket bounds at least twice the baseline's median,
// as a service owner would set it, so that a healthy side answers a few
// percent of its requests slower than it.
func (s Scenario) Objective() float64 {
	for _, le := range Buckets {
		if le >= 2*s.LatencyMS {
			return le
		}
	}
	return Buckets[len(Buckets)-1]
}

// Canary and Stable are the scenario's destination_workload labels.
func (s Scenario) Canary() string { return s.Name + "-canary" }
func (s Scenario) Stable() string { return s.Name + "-stable" }

// Corpus is a set of scenarios over one stretch of time: every scenario's
// run starts at RunStart and lasts RunFor; the stable side has History of
// data before it, and the canary takes traffic WarmUp before it.
type Corpus struct {
	Seed      uint64
	RunStart  time.Time
	RunFor    time.Duration
	History   time.Duration
	CanaryAge time.Duration
	// Step is the time between samples (Prometheus's scrape interval).
	Step      time.Duration
	Noise     Noise
	Scenarios []Scenario
}

// Sizes says how many scenarios of each sort Default builds.
type Sizes struct {
	// Healthy and Regressed are per traffic level (high and low); half
	// of Regressed regress errors and half latency.
	Healthy, Regressed int
	// Thin canaries take so little traffic that no judgement can be
	// sound; half are healthy and half regress errors.
	Thin int
}

// Traffic levels, requests per second on each side.
const (
	HighRPS = 100.0
	LowRPS  = 5.0
	ThinRPS = 0.5
)

// Default builds a corpus of the given sizes, its run starting at runStart:
// a 30-minute run (a gate of 10 looks a minute apart, extended by up to 20
// while Inconclusive), 15 minutes of history, the canary taking traffic 2
// minutes before the run, samples every 15s.
func Default(seed uint64, runStart time.Time, n Sizes) Corpus {
	r := rand.New(rand.NewPCG(seed, 0x70c0b))
	c := Corpus{Seed: seed, RunStart: runStart.UTC().Truncate(time.Minute), RunFor: 30 * time.Minute,
		History: 15 * time.Minute, CanaryAge: 2 * time.Minute, Step: 15 * time.Second, Noise: DefaultNoise}
	add := func(kind Kind, rps float64, i int) {
		s := Scenario{
			Name:          fmt.Sprintf("s%03d", len(c.Scenarios)),
			Kind:          kind,
			RPS:           rps,
			ErrorRatio:    0.005 + 0.015*r.Float64(), // 0.5% to 2%
			LatencyMS:     20 + 180*r.Float64(),      // 20 to 200 ms
			ErrorFactor:   1,
			LatencyFactor: 1,
		}
		switch kind {
		case Errors:
			s.ErrorFactor = 2 + 3*r.Float64()
		case Latency:
			s.LatencyFactor = 1.5 + 0.5*r.Float64()
		}
		if kind != Healthy {
			s.Onset = time.Duration(i%6) * time.Minute // 0 to 5 minutes into the run
		}
		if r.Float64() < 0.5 {
			s.Incident = &Incident{At: time.Duration(r.IntN(int(c.RunFor/time.Minute)-2)) * time.Minute, For: 2 * time.Minute,
				Errors: 3 + 2*r.Float64(), Latency: 1.5 + 0.5*r.Float64()}
		}
		c.Scenarios = append(c.Scenarios, s)
	}
	for _, rps := range []float64{HighRPS, LowRPS} {
		for i := range n.Healthy {
			add(Healthy, rps, i)
		}
		for i := range n.Regressed {
			kind := Errors
			if i%2 == 1 {
				kind = Latency
			}
			add(kind, rps, i/2)
		}
	}
	for i := range n.Thin {
		kind := Healthy
		if i%2 == 1 {
			kind = Errors
		}
		add(kind, ThinRPS, i)
	}
	return c
}

// Start and End bound the corpus's samples.
func (c Corpus) Start() time.Time { return c.RunStart.Add(-c.History) }
func (c Corpus) End() time.Time   { return c.RunStart.Add(c.RunFor + time.Minute) }

// Buckets are the latency histogram's upper bounds in milliseconds: Istio's
// default buckets up to 10s (the rest of them hold nothing here).
var Buckets = []float64{0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000}

// latencySigma is the spread of a request's log latency.
const latencySigma = 0.5

// Noise is the AR(1) noise of the log error ratio and the log median
// latency: its correlation from one sample to the next, and its standard
// deviation in the part both sides share (load, dependencies) and in each
// side's own.
type Noise struct {
	Phi                           float64
	SharedErrors, SharedLatency   float64
	ErrorsOfASide, LatencyOfASide float64
}

// DefaultNoise is Default's: samples 15s apart correlated at 0.9 (about
// 0.8 at the judge's 30s steps), a shared 30% spread of the error ratio
// and 10% of latency, and 10% and 5% of each side's own.
var DefaultNoise = Noise{Phi: 0.9, SharedErrors: 0.3, SharedLatency: 0.1, ErrorsOfASide: 0.1, LatencyOfASide: 0.05}

// QuietNoise is much less of it, and less correlated: what a gate sees of
// a service whose errors and latency barely move but for sampling.
var QuietNoise = Noise{Phi: 0.5, SharedErrors: 0.1, SharedLatency: 0.05, ErrorsOfASide: 0.05, LatencyOfASide: 0.02}

// ar1 is n steps of an AR(1) process of standard deviation sd, begun in its
// stationary distribution.
func ar1(r *rand.Rand, n int, phi, sd float64) []float64 {
	out := make([]float64, n)
	x, e := sd*r.NormFloat64(), sd*math.Sqrt(1-phi*phi)
	for i := range out {
		x = phi*x + e*r.NormFloat64()
		out[i] = x
	}
	return out
}

// shared is the noise both sides of a scenario share, per step from the
// corpus's start.
type shared struct{ errors, latency []float64 }

func (c Corpus) steps() int { return int(c.End().Sub(c.Start())/c.Step) + 1 }

func (c Corpus) shared(r *rand.Rand) shared {
	return shared{ar1(r, c.steps(), c.Noise.Phi, c.Noise.SharedErrors), ar1(r, c.steps(), c.Noise.Phi, c.Noise.SharedLatency)}
}

// series are one side's cumulative counters at each step.
type series struct {
	workload string
	at       []time.Time
	ok, bad  []float64   // istio_requests_total by response_code 200 and 500
	buckets  [][]float64 // cumulative per le, at each step
	sum      []float64
}

// side generates one side of a scenario.
// newRand is a scenario side's random stream.
func newRand(stream uint64) *rand.Rand { return rand.New(rand.NewPCG(0x5eed, stream)) }

func (c Corpus) side(s Scenario, canary bool, common shared, r *rand.Rand) series {
	out := series{workload: s.Stable()}
	from := c.Start()
	if canary {
		out.workload = s.Canary()
		from = c.RunStart.Add(-c.CanaryAge)
	}
	var ok, bad, sum float64
	per := make([]float64, len(Buckets)) // requests per bucket, not cumulative
	// This side's own noise, over the whole corpus's steps, so that both
	// sides draw alike.
	own := shared{ar1(r, c.steps(), c.Noise.Phi, c.Noise.ErrorsOfASide), ar1(r, c.steps(), c.Noise.Phi, c.Noise.LatencyOfASide)}
	dt := c.Step.Seconds()
	for t := from; !t.After(c.End()); t = t.Add(c.Step) {
		if t.After(from) { // the first sample is where the counters start
			at := int(t.Sub(c.Start()) / c.Step)
			ratio := s.ErrorRatio * math.Exp(own.errors[at]+common.errors[at])
			median := s.LatencyMS * math.Exp(own.latency[at]+common.latency[at])
			since := t.Sub(c.RunStart)
			if in := s.Incident; in != nil && since >= in.At && since < in.At+in.For {
				ratio, median = ratio*in.Errors, median*in.Latency
			}
			if canary {
				// Warming up: up to 50% slower, fading over a minute or so.
				median *= 1 + 0.5*math.Exp(-t.Sub(from).Minutes())
				if since >= s.Onset {
					ratio, median = ratio*s.ErrorFactor, median*s.LatencyFactor
				}
			}
			ratio = min(ratio, 1)
			n := distuv.Poisson{Lambda: s.RPS * dt, Src: r}.Rand()
			nbad := 0.0
			if n > 0 && ratio > 0 {
				nbad = distuv.Binomial{N: n, P: ratio, Src: r}.Rand()
			}
			ok, bad = ok+n-nbad, bad+nbad
			// Multinomial over the buckets, as successive binomials.
			left, below := n, 0.0
			mu := math.Log(median)
			for i, le := range Buckets {
				p := distuv.Normal{Mu: mu, Sigma: latencySigma}.CDF(math.Log(le))
				var k float64
				if left > 0 && p > below {
					k = distuv.Binomial{N: left, P: min(1, (p-below)/(1-below)), Src: r}.Rand()
				}
				left -= k
				below = p
				per[i] += k
			}
			sum += n * median * math.Exp(latencySigma*latencySigma/2)
		}
		out.at = append(out.at, t)
		out.ok, out.bad, out.sum = append(out.ok, ok), append(out.bad, bad), append(out.sum, sum)
		cum, total := make([]float64, len(Buckets)), 0.0
		for i, k := range per {
			total += k
			cum[i] = total
		}
		out.buckets = append(out.buckets, cum)
	}
	return out
}

// WriteOpenMetrics writes every scenario's samples, with timestamps, as
// OpenMetrics text: istio_requests_total by destination_workload and
// response_code, and the istio_request_duration_milliseconds histogram,
// as Istio's sidecars report them (reporter="destination").
func (c Corpus) WriteOpenMetrics(w io.Writer) error {
	b := bufio.NewWriterSize(w, 1<<16)
	var sides []series
	for i, s := range c.Scenarios {
		// Each scenario has its own stream, so that one scenario's data do
		// not depend on how many come before it.
		r := rand.New(rand.NewPCG(c.Seed, uint64(i)+1))
		common := c.shared(r)
		sides = append(sides, c.side(s, false, common, r), c.side(s, true, common, r))
	}
	const labels = `reporter="destination",destination_workload=%q,destination_workload_namespace="corpus"`
	fmt.Fprintln(b, "# TYPE istio_requests counter")
	for _, s := range sides {
		for _, code := range []struct {
			code string
			v    []float64
		}{{"200", s.ok}, {"500", s.bad}} {
			for i, t := range s.at {
				fmt.Fprintf(b, "istio_requests_total{"+labels+",response_code=%q} %g %d\n", s.workload, code.code, code.v[i], t.Unix())
			}
		}
	}
	fmt.Fprintln(b, "# TYPE istio_request_duration_milliseconds histogram")
	for _, s := range sides {
		for i, t := range s.at {
			l := fmt.Sprintf(labels, s.workload)
			for j, le := range Buckets {
				fmt.Fprintf(b, "istio_request_duration_milliseconds_bucket{%s,le=\"%g\"} %g %d\n", l, le, s.buckets[i][j], t.Unix())
			}
			count := s.ok[i] + s.bad[i]
			fmt.Fprintf(b, "istio_request_duration_milliseconds_bucket{%s,le=\"+Inf\"} %g %d\n", l, count, t.Unix())
			fmt.Fprintf(b, "istio_request_duration_milliseconds_sum{%s} %g %d\n", l, s.sum[i], t.Unix())
			fmt.Fprintf(b, "istio_request_duration_milliseconds_count{%s} %g %d\n", l, count, t.Unix())
		}
	}
	fmt.Fprintln(b, "# EOF")
	return b.Flush()
}
