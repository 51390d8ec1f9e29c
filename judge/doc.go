// Package judge compares a canary's samples of a metric with the stable
// baseline's, as Kayenta's NetflixACAJudge does: a Mann-Whitney U test with
// the Hodges-Lehmann estimate of the shift and its confidence interval,
// classified per metric by tolerance, effect size, direction and
// criticality, then scored over weighted groups into pass, marginal or
// fail. It adds what a gate judged at every interval needs: an
// anytime-valid sequential test, so that repeated looks do not inflate
// false rollbacks; an effective sample size for autocorrelated series; and
// an Inconclusive result that says how many more samples would decide.
//
// It is pure: samples come in as values and results go out as values. The
// method and its assumptions are described in docs/judge.md.
package judge
