package judge

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
)

// Scored is one metric's result with what the score needs to know of it.
type Scored struct {
	Name   string
	Result MetricResult
	// Groups the metric counts in; Muted metrics count in none.
	Groups []string
	Muted  bool
	// Critical is the metric's configuration (Config.Critical): an
	// Inconclusive critical metric holds the judgement back.
	Critical bool
}

// ScoreConfig is how metric results become one judgement.
type ScoreConfig struct {
	// GroupWeights are percentages; groups without a weight share what
	// the weights leave of 100 equally, as Kayenta's WeightedSumScorer.
	GroupWeights map[string]float64
	// Pass and Marginal are the score bands (0-100): a score of at least
	// Pass passes, at least Marginal is marginal, lower fails.
	Pass, Marginal float64
}

// DefaultScoreConfig has Spinnaker's usual bands: pass at 95, marginal at
// 75.
func DefaultScoreConfig() ScoreConfig { return ScoreConfig{Pass: 95, Marginal: 75} }

// NoDataThreshold is the share (percent) of metrics without data at which
// the judgement fails, as Kayenta's.
const NoDataThreshold = 50

// Validate names every field out of bounds.
func (c ScoreConfig) Validate() error {
	var errs []error
	if !(c.Pass >= 0 && c.Pass <= 100) {
		errs = append(errs, fmt.Errorf("pass: must be in [0, 100], got %v", c.Pass))
	}
	if !(c.Marginal >= 0 && c.Marginal <= c.Pass) {
		errs = append(errs, fmt.Errorf("marginal: must be in [0, pass], got %v", c.Marginal))
	}
	var sum float64
	for _, g := range slices.Sorted(maps.Keys(c.GroupWeights)) {
		w := c.GroupWeights[g]
		if !(w >= 0 && w <= 100) {
			errs = append(errs, fmt.Errorf("groupWeights[%s]: must be in [0, 100], got %v", g, w))
		}
		sum += w
	}
	if sum > 100 && !math.IsNaN(sum) {
		errs = append(errs, fmt.Errorf("groupWeights: must add up to at most 100, got %v", sum))
	}
	return errors.Join(errs...)
}

// GroupScore is one group's share of passing metrics, 0-100.
type GroupScore struct {
	Name   string
	Score  float64
	NoData bool
	// Counts of the group's metrics by classification.
	Counts map[Classification]int
}

// ScoreResult is the judgement over all metrics.
type ScoreResult struct {
	// Classification is Pass, Marginal or Fail by the score, or
	// Inconclusive.
	Classification Classification
	Score          float64
	Reason         string
	Groups         []GroupScore
}

// Score weighs the metric results into one judgement, as Kayenta's
// WeightedSumScorer and ThresholdScoreClassifier: a failing critical
// metric fails it (score 0); so does NoDataThreshold% or more metrics
// without data; otherwise each group scores the share of its Pass among
// its Pass, High, Low and NoDataFail metrics (a group with none of those
// counts as 100), and the score is the weighted sum, rounded to two
// decimals. Tugboat's Inconclusive, which Kayenta lacks, counts like no
// data in a group; a critical metric that is Inconclusive, or half the
// metrics or more being Inconclusive, makes the judgement Inconclusive
// (wait for more data) unless it already fails.
func Score(metrics []Scored, c ScoreConfig) (ScoreResult, error) {
	if err := c.Validate(); err != nil {
		return ScoreResult{}, err
	}
	var live []Scored
	for _, m := range metrics {
		if !m.Muted {
			live = append(live, m)
		}
	}
	res := ScoreResult{Groups: groupScores(live)}
	var noData, inconclusive int
	var criticalInconclusive string
	for _, m := range live {
		r := m.Result
		if r.Critical && r.Classification != Pass && r.Classification != Inconclusive {
			res.Classification, res.Reason = Fail, "canary failed: "+reasonOf(m)
			return res, nil
		}
		switch r.Classification {
		case NoData:
			noData++
		case Inconclusive:
			inconclusive++
			if m.Critical {
				criticalInconclusive = reasonOf(m)
			}
		}
	}
	if len(live) > 0 && float64(noData)/float64(len(live))*100 >= NoDataThreshold {
		res.Classification = Fail
		res.Reason = fmt.Sprintf("canary failed: %d%% or more metrics returned no data (%d of %d)", NoDataThreshold, noData, len(live))
		return res, nil
	}
	res.Score = summary(res.Groups, c.GroupWeights)
	switch {
	case criticalInconclusive != "":
		res.Classification, res.Reason = Inconclusive, "a critical metric is inconclusive: "+criticalInconclusive
	case len(live) > 0 && float64(inconclusive)/float64(len(live))*100 >= NoDataThreshold:
		res.Classification = Inconclusive
		res.Reason = fmt.Sprintf("%d of %d metrics are inconclusive", inconclusive, len(live))
	case res.Score >= c.Pass:
		res.Classification = Pass
	case res.Score >= c.Marginal:
		res.Classification = Marginal
	default:
		res.Classification = Fail
	}
	return res, nil
}

func reasonOf(m Scored) string {
	if m.Result.Reason != "" {
		return m.Result.Reason
	}
	return fmt.Sprintf("%s was classified as %s", m.Name, m.Result.Classification)
}

func groupScores(metrics []Scored) []GroupScore {
	byName := map[string]*GroupScore{}
	var order []string
	for _, m := range metrics {
		for _, g := range m.Groups {
			gs, ok := byName[g]
			if !ok {
				gs = &GroupScore{Name: g, Counts: map[Classification]int{}}
				byName[g] = gs
				order = append(order, g)
			}
			gs.Counts[m.Result.Classification]++
		}
	}
	out := make([]GroupScore, 0, len(order))
	for _, g := range order {
		gs := byName[g]
		pass := gs.Counts[Pass]
		total := pass + gs.Counts[High] + gs.Counts[Low] + gs.Counts[NoDataFail]
		gs.NoData = total == 0
		if !gs.NoData {
			gs.Score = float64(pass) / float64(total) * 100
		}
		out = append(out, *gs)
	}
	return out
}

func summary(groups []GroupScore, weights map[string]float64) float64 {
	var weighted float64
	var unweighted int
	for _, w := range weights {
		weighted += w
	}
	for _, g := range groups {
		if _, ok := weights[g.Name]; !ok {
			unweighted++
		}
	}
	share := 0.0
	if unweighted > 0 {
		share = (100 - weighted) / float64(unweighted)
	}
	var s float64
	for _, g := range groups {
		score := g.Score
		if g.NoData {
			score = 100
		}
		w, ok := weights[g.Name]
		if !ok {
			w = share
		}
		s += score * w / 100
	}
	return math.Round(s*100) / 100
}
