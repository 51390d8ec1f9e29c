package judge

import (
	"encoding/json"
	"math"
	"os"
	"strings"
	"testing"
)

// kayentaCase is one MannWhitneyClassifier test of Kayenta's
// ClassifierSuite (kayenta-judge, Apache-2.0), extracted to testdata.
type kayentaCase struct {
	Name                                      string
	Experiment, Control                       []float64
	Tolerance, Confidence                     float64
	EffectSizeThresholds, CriticalThresholds  []float64
	EffectSizeMeasure, Direction, NanStrategy string
	Critical                                  bool
	Want                                      Classification
	WantCritical                              *bool
	WantDeviationNaN                          bool
	WantDeviation                             *float64
	WantReason                                bool
}

// kayentaConfig is Config as Kayenta's classifier runs: no minimum, no
// equivalence band, independent samples.
func kayentaConfig(k kayentaCase) Config {
	c := DefaultConfig()
	c.Tolerance, c.Confidence = k.Tolerance, k.Confidence
	c.Direction, c.NaNStrategy = Direction(k.Direction), NaNStrategy(k.NanStrategy)
	c.EffectMeasure, c.Critical = EffectMeasure(k.EffectSizeMeasure), k.Critical
	if e := k.EffectSizeThresholds; e != nil {
		c.AllowedDecrease, c.AllowedIncrease = e[0], e[1]
	}
	if e := k.CriticalThresholds; e != nil {
		c.CriticalDecrease, c.CriticalIncrease = e[0], e[1]
	}
	c.MinSamples, c.Equivalence, c.Autocorrelation = 1, 0, Independent
	return c
}

func TestClassifyKayentaSuite(t *testing.T) {
	raw, err := os.ReadFile("testdata/kayenta_classifier.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []kayentaCase
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatal(err)
	}
	if len(cases) != 34 {
		t.Fatalf("got %d cases, want Kayenta's 34", len(cases))
	}
	for _, k := range cases {
		t.Run(k.Name, func(t *testing.T) {
			r, err := Classify("m", k.Experiment, k.Control, kayentaConfig(k))
			if err != nil {
				t.Fatal(err)
			}
			if k.Want != "" && r.Classification != k.Want {
				t.Errorf("got %s (%s), want %s", r.Classification, r.Reason, k.Want)
			}
			if k.WantCritical != nil && r.Critical != *k.WantCritical {
				t.Errorf("got critical %v, want %v", r.Critical, *k.WantCritical)
			}
			if k.WantDeviationNaN && !math.IsNaN(r.Ratio) {
				t.Errorf("got ratio %v, want NaN", r.Ratio)
			}
			if k.WantDeviation != nil && r.Ratio != *k.WantDeviation {
				t.Errorf("got ratio %v, want %v", r.Ratio, *k.WantDeviation)
			}
			if k.WantReason && r.Reason == "" {
				t.Error("got no reason")
			}
		})
	}
}

func TestClassify(t *testing.T) {
	ramp := func(n int, from, step float64) []float64 {
		v := make([]float64, n)
		for i := range v {
			v[i] = from + step*float64((i*7)%n) // shuffled ramp: no trend in time
		}
		return v
	}
	def := DefaultConfig()
	with := func(f func(*Config)) Config { c := def; f(&c); return c }
	for _, c := range []struct {
		name             string
		canary, baseline []float64
		cfg              Config
		want             Classification
		critical         bool
		reason           string
		more             bool
	}{
		{name: "few samples", canary: []float64{10, 11, 12}, baseline: ramp(20, 10, 0.2), cfg: def, want: Inconclusive,
			reason: "m: canary has 3 samples and baseline 20, fewer than the 5 needed on each side; about ", more: true},
		{name: "wide interval", canary: ramp(8, 5, 2), baseline: ramp(8, 6, 2), cfg: def, want: Inconclusive,
			reason: "reaches beyond the 25% band", more: true},
		{name: "within the band", canary: ramp(60, 100, 0.5), baseline: ramp(60, 100.2, 0.5), cfg: def, want: Pass, reason: "is within 25% of the baseline"},
		{name: "wide interval passes as Kayenta", canary: ramp(8, 5, 2), baseline: ramp(8, 6, 2), cfg: with(func(c *Config) { c.Equivalence = 0 }), want: Pass},
		{name: "doubled", canary: ramp(40, 200, 1), baseline: ramp(40, 100, 0.5), cfg: def, want: High, reason: "m was classified as High: shift 109.8 [102, 117.5] at 98%, mean ratio 2"},
		{name: "doubled, critical", canary: ramp(40, 200, 1), baseline: ramp(40, 100, 0.5), cfg: with(func(c *Config) { c.Critical = true }), want: High, critical: true, reason: "High (critical)"},
		{name: "halved, increase only", canary: ramp(40, 50, 0.25), baseline: ramp(40, 100, 0.5), cfg: with(func(c *Config) { c.Direction = Increase }), want: Pass},
		{name: "halved", canary: ramp(40, 50, 0.25), baseline: ramp(40, 100, 0.5), cfg: def, want: Low},
		{name: "no canary data", canary: []float64{math.NaN()}, baseline: ramp(10, 1, 1), cfg: def, want: NoData, reason: "no data for m: canary has 0 samples, baseline 10"},
		{name: "no canary data, must have", canary: nil, baseline: ramp(10, 1, 1), cfg: with(func(c *Config) { c.MustHaveData = true }), want: NoDataFail},
		{name: "no canary data, critical", canary: nil, baseline: ramp(10, 1, 1), cfg: with(func(c *Config) { c.Critical, c.MustHaveData = true, true }), want: NoData, critical: true},
		{name: "NaN replaced", canary: []float64{math.NaN(), math.NaN()}, baseline: []float64{0, 0}, cfg: with(func(c *Config) { c.NaNStrategy = ReplaceNaN }), want: Pass, reason: "identical"},
		// One canary spike: kept, it is just a sample; removed as an
		// outlier, the rest equals the baseline.
		{name: "outlier removed", canary: append(ramp(30, 10, 0.1), 1e6), baseline: ramp(30, 10, 0.1), cfg: with(func(c *Config) { c.OutlierFactor = 3 }), want: Pass, reason: "identical"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, err := Classify("m", c.canary, c.baseline, c.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if r.Classification != c.want || r.Critical != c.critical {
				t.Errorf("got %s critical %v (%s), want %s critical %v", r.Classification, r.Critical, r.Reason, c.want, c.critical)
			}
			if !strings.Contains(r.Reason, c.reason) {
				t.Errorf("got reason %q, want it to hold %q", r.Reason, c.reason)
			}
			if c.more != (r.MoreCanarySamples > 0) {
				t.Errorf("got %d more samples needed", r.MoreCanarySamples)
			}
		})
	}
}

// TestClassifyMoreSamplesDecide checks the estimate of how many more
// samples are needed: with that many more from the same sources, the
// metric is no longer Inconclusive (most of the time: 80% power; this
// seed's draw decides).
func TestClassifyMoreSamplesDecide(t *testing.T) {
	rng := newRNG(7)
	draw := func(n int, mean float64) []float64 {
		v := make([]float64, n)
		for i := range v {
			v[i] = mean * math.Exp(0.3*rng.NormFloat64())
		}
		return v
	}
	cfg := DefaultConfig()
	canary, baseline := draw(6, 100), draw(6, 100)
	r, err := Classify("latency", canary, baseline, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Noether for this source: a 25% shift of a log-normal with sigma 0.3
	// wins p ~ 0.72, (2.326 + 0.842)^2 / (12 * 0.25 * 0.22^2) ~ 70 in all,
	// 35 a side; six samples estimate p and the spread loosely.
	if r.Classification != Inconclusive || r.MoreCanarySamples <= 0 || r.MoreCanarySamples > 150 {
		t.Fatalf("got %s with %d more (%s), want Inconclusive with an estimate", r.Classification, r.MoreCanarySamples, r.Reason)
	}
	t.Log(r.Reason)
	more := r.MoreCanarySamples
	canary, baseline = append(canary, draw(more, 100)...), append(baseline, draw(more, 100)...)
	if r, _ = Classify("latency", canary, baseline, cfg); r.Classification != Pass {
		t.Errorf("with %d more samples: got %s (%s), want Pass", more, r.Classification, r.Reason)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("default: %v", err)
	}
	c := DefaultConfig()
	c.Direction, c.Tolerance, c.Confidence, c.NaNStrategy = "up", 2, 1, "drop"
	c.MinSamples, c.Power, c.AllowedIncrease, c.Autocorrelation = 0, 0.2, math.Inf(1), "none"
	err := c.Validate()
	for _, want := range []string{
		`direction: must be "increase", "decrease" or "either", got "up"`,
		"tolerance: must be in [0, 1], got 2", "confidence: must be in [0.5, 1), got 1",
		`nanStrategy: must be "remove" or "replace", got "drop"`, "minSamples: must be in [1, 1000000], got 0",
		"power: must be in [0.5, 1), got 0.2", "allowedIncrease: must be finite", `autocorrelation: must be "ar1" or "independent", got "none"`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want it to hold %q", err, want)
		}
	}
	if _, err := Classify("m", []float64{1}, []float64{2}, Config{}); err == nil {
		t.Error("the zero Config was accepted")
	}
}

// TestOutliersKayenta is Kayenta's DetectorSuite for the IQR detector.
func TestOutliersKayenta(t *testing.T) {
	nist := []float64{30, 171, 184, 201, 212, 250, 265, 270, 272, 289, 305, 306, 322, 322, 336, 346,
		351, 370, 390, 404, 409, 411, 436, 437, 439, 441, 444, 448, 451, 453, 470, 480,
		482, 487, 494, 495, 499, 503, 514, 521, 522, 527, 548, 550, 559, 560, 570, 572,
		574, 578, 585, 592, 592, 607, 616, 618, 621, 629, 637, 638, 640, 656, 668, 707,
		709, 719, 737, 739, 752, 758, 766, 792, 792, 794, 802, 818, 830, 832, 843, 858,
		860, 869, 918, 925, 953, 991, 1000, 1005, 1068, 1441}
	nistWant := make([]bool, len(nist))
	nistWant[len(nist)-1] = true
	for _, c := range []struct {
		name string
		data []float64
		want []bool
	}{
		{"IQR Detection", []float64{21, 23, 24, 25, 50, 29, 23, 21}, []bool{false, false, false, false, true, false, false, false}},
		{"IQR Detect Two Sided", []float64{1, 1, 1, 5, -1, -1, -1, -5}, []bool{false, false, false, true, false, false, false, true}},
		{"IQR Empty Data", nil, []bool{}},
		{"IQR NIST Test", nist, nistWant},
	} {
		got := iqrOutliers(c.data, 1.5, false)
		if len(got) != len(c.want) {
			t.Fatalf("%s: got %d flags", c.name, len(got))
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("%s: value %d (%v): got outlier %v", c.name, i, c.data[i], got[i])
			}
		}
	}
}

func TestLag1Autocorrelation(t *testing.T) {
	rng := newRNG(3)
	for _, rho := range []float64{0, 0.5, 0.8} {
		var sum float64
		const runs = 200
		for range runs {
			sum += Lag1Autocorrelation(ar1(rng, 200, rho, 1, 1))
		}
		// ranks of a Gaussian AR(1) have lag-1 correlation (6/pi) asin(rho/2)
		want := 6 / math.Pi * math.Asin(rho/2)
		if got := sum / runs; math.Abs(got-want) > 0.03 {
			t.Errorf("rho %v: got mean estimate %.3f, want %.3f", rho, got, want)
		}
	}
	if got := EffectiveSize(100, 0.6); got != 25 {
		t.Errorf("got n_eff %v, want 25", got)
	}
}

func TestSamplesNeeded(t *testing.T) {
	// Noether: alpha 0.05, power 0.8, equal split, p = 0.7:
	// (1.959964 + 0.841621)^2 / (12 * 0.25 * 0.04) = 65.407.
	if got := SamplesNeeded(0.7, 0.05, 0.8, 0.5); math.Abs(got-65.407) > 0.001 {
		t.Errorf("got %v, want 65.407", got)
	}
	if !math.IsInf(SamplesNeeded(0.5, 0.05, 0.8, 0.5), 1) {
		t.Error("p = 1/2 needs infinitely many")
	}
	// 0..99 raised by 10 beats another of them in i+9 of 99 pairs, half
	// a win more when i+10 <= 99: (4860 + 990) / 9900.
	b := make([]float64, 100)
	for i := range b {
		b[i] = float64(i)
	}
	if got := shiftProbability(b, 10); math.Abs(got-5850.0/9900) > 1e-12 {
		t.Errorf("got %v, want 5850/9900", got)
	}
}
