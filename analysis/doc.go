// Package analysis turns measurements into verdicts with Argo Rollouts'
// semantics: each measurement is judged by its metric's success and failure
// conditions, each metric by its limits, and a run by the worst of its
// metrics. It also renders metric queries so that template arguments can
// never change a query's structure. It is pure: the Prometheus adapter and
// the AnalysisRun reconciler do the I/O.
package analysis
