package traffic

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCanaryAt(t *testing.T) {
	for _, tt := range []struct {
		name   string
		weight int32
		want   Split
	}{
		{"zero sends all to stable", 0, Split{Stable: 100, Canary: 0}},
		{"a step weight", 10, Split{Stable: 90, Canary: 10}},
		{"full promotion", 100, Split{Stable: 0, Canary: 100}},
		{"above 100 is clamped", 150, Split{Stable: 0, Canary: 100}},
		{"negative is clamped", -5, Split{Stable: 100, Canary: 0}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, CanaryAt(tt.weight)); diff != "" {
				t.Errorf("CanaryAt(%d) (-want +got):\n%s", tt.weight, diff)
			}
		})
	}
}

func FuzzCanaryAtSumsTo100(f *testing.F) {
	for _, w := range []int32{0, 1, 50, 99, 100, -1, 101, 1 << 30, -1 << 30} {
		f.Add(w)
	}
	f.Fuzz(func(t *testing.T, w int32) {
		s := CanaryAt(w)
		if s.Stable+s.Canary != 100 || s.Stable < 0 || s.Canary < 0 {
			t.Errorf("CanaryAt(%d) = %v", w, s)
		}
	})
}

func TestStrings(t *testing.T) {
	if got := CanaryAt(10).String(); got != "90/10" {
		t.Errorf("Split.String() = %q", got)
	}
	if got := Regex.String(); got != "regex" {
		t.Errorf("MatchKind.String() = %q", got)
	}
}

func TestAllStable(t *testing.T) {
	beta := HeaderRoute{Name: "beta", Match: []HeaderMatch{{Header: "x-beta", Value: "1"}}}
	shadow := MirrorRoute{Name: "shadow", Percentage: 10}
	for _, tt := range []struct {
		name string
		d    Desired
		want bool
	}{
		{"at rest", AtRest(), true},
		{"a canary weight", Desired{Split: CanaryAt(10)}, false},
		{"a header route at weight 0", Desired{Split: CanaryAt(0), HeaderRoutes: []HeaderRoute{beta}}, false},
		{"a mirror route at weight 0", Desired{Split: CanaryAt(0), MirrorRoutes: []MirrorRoute{shadow}}, false},
		{"full promotion", Desired{Split: CanaryAt(100)}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.d.AllStable(); got != tt.want {
				t.Errorf("AllStable() = %v, want %v", got, tt.want)
			}
		})
	}
}
