package judge

import "testing"

func benchSamples(n int, shift float64) (a, b []float64) {
	r := newRNG(9)
	return ar1(r, n, 0.3, 100+shift, 10), ar1(r, n, 0.3, 100, 10)
}

func BenchmarkMannWhitney300(b *testing.B) {
	x, y := benchSamples(300, 2)
	for b.Loop() {
		if _, err := MannWhitney(x, y, 0.98); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkClassify300(b *testing.B) {
	x, y := benchSamples(300, 2)
	cfg := DefaultConfig()
	cfg.OutlierFactor = 3
	for b.Loop() {
		if _, err := Classify("m", x, y, cfg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSequential300(b *testing.B) {
	x, y := benchSamples(300, 2)
	cfg := DefaultSequentialConfig()
	for b.Loop() {
		if _, err := Sequential(x, y, cfg); err != nil {
			b.Fatal(err)
		}
	}
}
