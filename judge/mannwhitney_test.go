package judge

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"testing"
)

// kayentaMW holds the vectors of Kayenta's MannWhitneySuite
// (kayenta-mannwhitney, Apache-2.0), with the values it asserts.
type kayentaMW struct {
	WilcoxonDiff struct {
		X, Y   []float64
		Points []struct{ Mu, Zq, Want float64 }
	}
	TieOutR, TieOutRLarge, ProblemCase struct {
		Experiment, Control    []float64
		Confidence             float64
		Lower, Upper, Estimate float64
	}
	Intermediate struct {
		X, Y                               []float64
		MuMin, MuMax, Z                    float64
		FLower1, FUpper1, FLower2, FUpper2 float64
	}
}

func loadKayentaMW(t *testing.T) kayentaMW {
	t.Helper()
	raw, err := os.ReadFile("testdata/kayenta_mannwhitney.json")
	if err != nil {
		t.Fatal(err)
	}
	var k kayentaMW
	if err := json.Unmarshal(raw, &k); err != nil {
		t.Fatal(err)
	}
	if len(k.WilcoxonDiff.X) == 0 || len(k.TieOutR.Experiment) == 0 || len(k.Intermediate.X) == 0 {
		t.Fatal("testdata lacks a vector")
	}
	return k
}

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

// TestMannWhitneyKayentaReference is Kayenta's published example:
// experiment [10,20,30,40] against control [1,2,3,4] at 95% gives the
// interval [6, 39] and the estimate 22.5.
func TestMannWhitneyKayentaReference(t *testing.T) {
	r, err := MannWhitney([]float64{10, 20, 30, 40}, []float64{1, 2, 3, 4}, 0.95)
	if err != nil {
		t.Fatal(err)
	}
	if r.Lower != 6 || r.Upper != 39 || r.Estimate != 22.5 {
		t.Errorf("got interval [%v, %v] estimate %v, want [6, 39] and 22.5", r.Lower, r.Upper, r.Estimate)
	}
	// W = 16 and, as R's wilcox.test with exact = FALSE, the p-value of
	// z = (16 - 8 - 0.5) / sqrt(16 * 9 / 12) = 2.1651: 0.030383.
	if r.U != 16 || !near(r.PValue, 0.030383, 5e-7) {
		t.Errorf("got U %v p %v, want 16 and 0.030383", r.U, r.PValue)
	}
}

// TestMannWhitneyKayentaVectors checks the other vectors of Kayenta's
// suite. Kayenta (and R) locate each bound with a root finder whose
// absolute tolerance is 1e-4 (BrentSolver's TOLERANCE, uniroot's tol); we
// compute the exact root, so we agree with their published numbers to that
// tolerance. Their "Problem Case" and the bounds of the "Intermediate
// Values" case are at the 1e-5 scale, below that tolerance, so their
// published bounds are the solver's noise and are not compared; their
// normal scores are.
func TestMannWhitneyKayentaVectors(t *testing.T) {
	k := loadKayentaMW(t)
	for _, p := range k.WilcoxonDiff.Points {
		z, _, _ := zAt(k.WilcoxonDiff.X, k.WilcoxonDiff.Y, p.Mu, 1)
		if !near(z-p.Zq, p.Want, 1e-6) {
			t.Errorf("wilcoxonDiff(mu=%v): got %v, want %v", p.Mu, z-p.Zq, p.Want)
		}
	}

	in := k.Intermediate
	d := differences(in.X, in.Y)
	if d[0] != in.MuMin || d[len(d)-1] != in.MuMax {
		t.Errorf("got differences [%v, %v], want [%v, %v]", d[0], d[len(d)-1], in.MuMin, in.MuMax)
	}
	for _, c := range []struct {
		name   string
		mu, zq float64
		want   float64
	}{
		{"fLower1", in.MuMin, in.Z, in.FLower1},
		{"fUpper1", in.MuMax, in.Z, in.FUpper1},
		{"fLower2", in.MuMin, -in.Z, in.FLower2},
		{"fUpper2", in.MuMax, -in.Z, in.FUpper2},
	} {
		z, _, _ := zAt(in.X, in.Y, c.mu, 1)
		if !near(z-c.zq, c.want, 1e-6) {
			t.Errorf("%s: got %v, want %v", c.name, z-c.zq, c.want)
		}
	}

	for name, v := range map[string]struct {
		Experiment, Control    []float64
		Confidence             float64
		Lower, Upper, Estimate float64
	}{"tie out with R": v(k.TieOutR), "tie out with R (large)": v(k.TieOutRLarge)} {
		r, err := MannWhitney(v.Experiment, v.Control, v.Confidence)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !near(r.Lower, v.Lower, 1e-4) || !near(r.Upper, v.Upper, 1e-4) || !near(r.Estimate, v.Estimate, 1e-4) {
			t.Errorf("%s: got [%v, %v] estimate %v, want [%v, %v] estimate %v within 1e-4",
				name, r.Lower, r.Upper, r.Estimate, v.Lower, v.Upper, v.Estimate)
		}
	}

	// The problem case's bounds are below the solver's tolerance; ours
	// must still be a proper interval around the estimate.
	pc := k.ProblemCase
	r, err := MannWhitney(pc.Experiment, pc.Control, pc.Confidence)
	if err != nil {
		t.Fatal(err)
	}
	if !(r.Lower <= r.Estimate && r.Estimate <= r.Upper) || !near(r.Lower, pc.Lower, 1e-4) || !near(r.Upper, pc.Upper, 1e-4) {
		t.Errorf("problem case: got [%v, %v] estimate %v", r.Lower, r.Upper, r.Estimate)
	}
}

func v(s struct {
	Experiment, Control    []float64
	Confidence             float64
	Lower, Upper, Estimate float64
}) struct {
	Experiment, Control    []float64
	Confidence             float64
	Lower, Upper, Estimate float64
} {
	return s
}

func TestMannWhitneyCases(t *testing.T) {
	for _, c := range []struct {
		name                   string
		x, y                   []float64
		conf                   float64
		lower, upper, estimate float64
		err                    string
	}{
		// Every difference is 9: the interval collapses onto it, where
		// Kayenta adds noise to get about the same.
		{name: "two constants", x: []float64{10, 10, 10, 10, 10}, y: []float64{1, 1, 1, 1, 1}, conf: 0.95, lower: 9, upper: 9, estimate: 9},
		// Worked by hand: the differences are -6 ... -1, and at 95% neither
		// bound's score reaches 1.96 inside them.
		{name: "negative shift", x: []float64{1, 2, 3}, y: []float64{4, 5, 6, 7}, conf: 0.95, lower: -6, upper: -1, estimate: -3.5},
		{name: "odd count", x: []float64{1, 2, 3}, y: []float64{1, 2, 4}, conf: 0.9, lower: -3, upper: 2, estimate: 0},
		{name: "all tied", x: []float64{3, 3}, y: []float64{3, 3, 3}, conf: 0.95, err: ErrAllTied.Error()},
		{name: "empty", x: nil, y: []float64{1}, conf: 0.95, err: "need samples on both sides, got 0 and 1"},
		{name: "confidence 1", x: []float64{1}, y: []float64{2}, conf: 1, err: "confidence must be in (0, 1), got 1"},
		{name: "NaN", x: []float64{1, math.NaN()}, y: []float64{2}, conf: 0.9, err: "sample holds NaN"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, err := MannWhitney(c.x, c.y, c.conf)
			if c.err != "" {
				if err == nil || err.Error() != c.err {
					t.Fatalf("got error %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Lower != c.lower || r.Upper != c.upper || r.Estimate != c.estimate {
				t.Errorf("got [%v, %v] estimate %v, want [%v, %v] estimate %v", r.Lower, r.Upper, r.Estimate, c.lower, c.upper, c.estimate)
			}
		})
	}
	if _, err := MannWhitney([]float64{1, 1}, []float64{1}, 0.9); !errors.Is(err, ErrAllTied) {
		t.Errorf("got %v, want ErrAllTied", err)
	}
}
