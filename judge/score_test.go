package judge

import (
	"strings"
	"testing"
)

func scored(name string, c Classification, groups ...string) Scored {
	return Scored{Name: name, Result: MetricResult{Classification: c}, Groups: groups}
}

// TestScore holds Kayenta's ScorerSuite (its expected summary scores) and
// Tugboat's additions: bands, Inconclusive, muted metrics.
func TestScore(t *testing.T) {
	critical := func(s Scored) Scored { s.Result.Critical, s.Critical = true, true; return s }
	configured := func(s Scored) Scored { s.Critical = true; return s }
	muted := func(s Scored) Scored { s.Muted = true; return s }
	for _, c := range []struct {
		name    string
		weights map[string]float64
		metrics []Scored
		score   float64
		want    Classification
		reason  string
	}{
		{name: "single metric pass", metrics: []Scored{scored("a", Pass, "g")}, score: 100, want: Pass},
		{name: "single metric fail", metrics: []Scored{scored("a", High, "g")}, score: 0, want: Fail},
		{name: "single group nodata", metrics: []Scored{scored("a", NoData, "g")}, score: 0, want: Fail, reason: "50% or more metrics returned no data (1 of 1)"},
		{name: "two groups, one pass, one nodata", metrics: []Scored{scored("a", Pass, "p"), scored("b", Pass, "p"), scored("c", NoData, "n")}, score: 100, want: Pass},
		{name: "one group, two metrics", metrics: []Scored{scored("a", Pass, "g"), scored("b", High, "g")}, score: 50, want: Fail},
		{name: "one group, three metrics", metrics: []Scored{scored("a", Pass, "g"), scored("b", High, "g"), scored("c", Low, "g")}, score: 33.33, want: Fail},
		{name: "two groups, three metrics", weights: map[string]float64{"group-1": 75, "group-2": 25},
			metrics: []Scored{scored("a", Pass, "group-1"), scored("b", Pass, "group-1"), scored("c", High, "group-2")}, score: 75, want: Marginal},
		{name: "two groups, three metrics (equal weight)", weights: map[string]float64{"group-1": 50, "group-2": 50},
			metrics: []Scored{scored("a", Pass, "group-1"), scored("b", High, "group-1"), scored("c", High, "group-2")}, score: 25, want: Fail},
		{name: "two groups, three metrics (equal weight), one nodata", weights: map[string]float64{"group-1": 50, "group-2": 50},
			metrics: []Scored{scored("a", Pass, "group-1"), scored("b", NoData, "group-1"), scored("c", High, "group-2")}, score: 50, want: Fail},
		{name: "one good, one critical fail", metrics: []Scored{scored("a", Pass, "g"), critical(scored("b", High, "g"))}, score: 0, want: Fail, reason: "canary failed: b was classified as High"},
		{name: "one low, one critical good", metrics: []Scored{scored("a", Low, "g"), critical(scored("b", Pass, "g"))}, score: 50, want: Fail},
		{name: "one good, one critical nodata", metrics: []Scored{scored("a", Pass, "g"), critical(scored("b", NoData, "g"))}, score: 0, want: Fail},
		{name: "two groups (unequal weight), four metrics", weights: map[string]float64{"group1": 15, "group2": 85},
			metrics: []Scored{scored("a", High, "group1"), scored("b", Low, "group1"), scored("c", Pass, "group1"), scored("d", High, "group2")}, score: 5, want: Fail},
		// Tugboat's additions.
		{name: "unweighted groups share the rest", weights: map[string]float64{"a": 50},
			metrics: []Scored{scored("x", High, "a"), scored("y", Pass, "b"), scored("z", Pass, "c")}, score: 50, want: Fail},
		{name: "nodata fail counts against", metrics: []Scored{scored("a", Pass, "g"), scored("b", Pass, "g"), scored("c", Pass, "g"), scored("d", NoDataFail, "g")}, score: 75, want: Marginal},
		{name: "critical inconclusive waits", metrics: []Scored{scored("a", Pass, "g"), configured(scored("b", Inconclusive, "g"))}, score: 100, want: Inconclusive, reason: "a critical metric is inconclusive"},
		{name: "half inconclusive waits", metrics: []Scored{scored("a", Pass, "g"), scored("b", Inconclusive, "g")}, score: 100, want: Inconclusive, reason: "1 of 2 metrics are inconclusive"},
		{name: "a third inconclusive is scored without it", metrics: []Scored{scored("a", Pass, "g"), scored("b", Pass, "g"), scored("c", Inconclusive, "g")}, score: 100, want: Pass},
		{name: "critical failure beats inconclusive", metrics: []Scored{critical(scored("a", Low, "g")), configured(scored("b", Inconclusive, "g"))}, score: 0, want: Fail},
		{name: "muted fail ignored", metrics: []Scored{scored("a", Pass, "g"), muted(scored("b", High, "g"))}, score: 100, want: Pass},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := DefaultScoreConfig()
			cfg.GroupWeights = c.weights
			r, err := Score(c.metrics, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if r.Score != c.score || r.Classification != c.want {
				t.Errorf("got %v %s (%s), want %v %s", r.Score, r.Classification, r.Reason, c.score, c.want)
			}
			if !strings.Contains(r.Reason, c.reason) {
				t.Errorf("got reason %q, want it to hold %q", r.Reason, c.reason)
			}
		})
	}
}

func TestScoreConfigValidate(t *testing.T) {
	err := ScoreConfig{Pass: 101, Marginal: -1, GroupWeights: map[string]float64{"a": 80, "b": 30}}.Validate()
	for _, want := range []string{"pass: must be in [0, 100], got 101", "marginal: must be in [0, pass], got -1", "groupWeights: must add up to at most 100, got 110"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want it to hold %q", err, want)
		}
	}
}
