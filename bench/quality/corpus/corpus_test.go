package corpus

import (
	"bytes"
	"math"
	"testing"
	"time"
)

var runStart = time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)

func TestSameSeedSameCorpus(t *testing.T) {
	text := func(seed uint64) string {
		var b bytes.Buffer
		if err := Default(seed, runStart, Sizes{Healthy: 1, Regressed: 2, Thin: 2}).WriteOpenMetrics(&b); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	if text(1) != text(1) {
		t.Error("the same seed gave two corpora")
	}
	if text(1) == text(2) {
		t.Error("two seeds gave the same corpus")
	}
}

func TestDefaultSizes(t *testing.T) {
	c := Default(1, runStart, Sizes{Healthy: 3, Regressed: 4, Thin: 2})
	count := map[Kind]map[float64]int{}
	for _, s := range c.Scenarios {
		if count[s.Kind] == nil {
			count[s.Kind] = map[float64]int{}
		}
		count[s.Kind][s.RPS]++
		if s.Kind == Errors && (s.ErrorFactor < 2 || s.ErrorFactor > 5) {
			t.Errorf("%s: error factor %g outside [2, 5]", s.Name, s.ErrorFactor)
		}
		if s.Kind == Latency && (s.LatencyFactor < 1.5 || s.LatencyFactor > 2) {
			t.Errorf("%s: latency factor %g outside [1.5, 2]", s.Name, s.LatencyFactor)
		}
		if s.Onset < 0 || s.Onset >= c.RunFor {
			t.Errorf("%s: onset %s outside the run", s.Name, s.Onset)
		}
	}
	want := map[Kind]map[float64]int{
		Healthy: {HighRPS: 3, LowRPS: 3, ThinRPS: 1},
		Errors:  {HighRPS: 2, LowRPS: 2, ThinRPS: 1},
		Latency: {HighRPS: 2, LowRPS: 2},
	}
	for k, byRPS := range want {
		for rps, n := range byRPS {
			if count[k][rps] != n {
				t.Errorf("%s at %g rps: %d scenarios, want %d", k, rps, count[k][rps], n)
			}
		}
	}
}

// TestSides checks what each side's counters show: they never decrease,
// the histogram's buckets are cumulative, and over the run the canary's
// error ratio and mean latency are its baseline's times the scenario's
// factors (within the noise).
func TestSides(t *testing.T) {
	c := Corpus{Seed: 7, RunStart: runStart, RunFor: 10 * time.Minute, History: 15 * time.Minute,
		CanaryAge: 2 * time.Minute, Step: 15 * time.Second, Noise: DefaultNoise}
	for _, tc := range []struct {
		name            string
		s               Scenario
		errors, latency float64 // canary / baseline over the run
	}{
		{"healthy", Scenario{Name: "h", RPS: 100, ErrorRatio: 0.01, LatencyMS: 50, ErrorFactor: 1, LatencyFactor: 1}, 1, 1},
		{"three times the errors", Scenario{Name: "e", RPS: 100, ErrorRatio: 0.01, LatencyMS: 50, ErrorFactor: 3, LatencyFactor: 1}, 3, 1},
		{"twice as slow", Scenario{Name: "l", RPS: 100, ErrorRatio: 0.01, LatencyMS: 50, ErrorFactor: 1, LatencyFactor: 2}, 1, 2},
		{"a shared incident", Scenario{Name: "i", RPS: 100, ErrorRatio: 0.01, LatencyMS: 50, ErrorFactor: 1, LatencyFactor: 1,
			Incident: &Incident{At: 2 * time.Minute, For: 2 * time.Minute, Errors: 5, Latency: 2}}, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			common := c.shared(newRand(0))
			stable, canary := c.side(tc.s, false, common, newRand(1)), c.side(tc.s, true, common, newRand(2))
			for _, sd := range []series{stable, canary} {
				for i := 1; i < len(sd.at); i++ {
					if sd.ok[i] < sd.ok[i-1] || sd.bad[i] < sd.bad[i-1] || sd.sum[i] < sd.sum[i-1] {
						t.Fatalf("%s: a counter decreased at %s", sd.workload, sd.at[i])
					}
					for j := 1; j < len(Buckets); j++ {
						if sd.buckets[i][j] < sd.buckets[i][j-1] {
							t.Fatalf("%s: bucket le=%g holds less than le=%g", sd.workload, Buckets[j], Buckets[j-1])
						}
					}
					if sd.buckets[i][len(Buckets)-1] > sd.ok[i]+sd.bad[i] {
						t.Fatalf("%s: the buckets hold more than the requests", sd.workload)
					}
				}
			}
			errs := ratio(c, canary, errorRatio) / ratio(c, stable, errorRatio)
			lat := ratio(c, canary, meanLatency) / ratio(c, stable, meanLatency)
			if math.Abs(errs/tc.errors-1) > 0.35 {
				t.Errorf("canary/baseline errors over the run: %.2f, want about %g", errs, tc.errors)
			}
			if math.Abs(lat/tc.latency-1) > 0.15 {
				t.Errorf("canary/baseline mean latency over the run: %.2f, want about %g", lat, tc.latency)
			}
		})
	}
}

func errorRatio(s series, i, j int) float64 {
	return (s.bad[j] - s.bad[i]) / (s.ok[j] + s.bad[j] - s.ok[i] - s.bad[i])
}

func meanLatency(s series, i, j int) float64 {
	return (s.sum[j] - s.sum[i]) / (s.ok[j] + s.bad[j] - s.ok[i] - s.bad[i])
}

// ratio is f over the run, from its start to its end.
func ratio(c Corpus, s series, f func(series, int, int) float64) float64 {
	i, j := -1, -1
	for k, at := range s.at {
		if i < 0 && !at.Before(c.RunStart) {
			i = k
		}
		if !at.After(c.RunStart.Add(c.RunFor)) {
			j = k
		}
	}
	return f(s, i, j)
}

// TestObjective sets the latency objective at the smallest bucket bound
// twice the median or more.
func TestObjective(t *testing.T) {
	for _, tt := range []struct{ median, want float64 }{{20, 50}, {25, 50}, {26, 100}, {100, 250}, {199, 500}, {6000, 10000}} {
		if got := (Scenario{LatencyMS: tt.median}).Objective(); got != tt.want {
			t.Errorf("median %gms: objective %g, want %g", tt.median, got, tt.want)
		}
	}
}
