// Package v1alpha1 holds Tugboat's API, group tugboat.dev: Rollout,
// AnalysisTemplate, ClusterAnalysisTemplate and AnalysisRun.
//
// Field names follow Argo Rollouts wherever the concept is the same, and the
// Go types are Argo's own where they fit (steps, analysis references,
// arguments, measurements), so that Argo manifests carry over with a change of
// apiVersion and kind. The schema validates what it can (OpenAPI and CEL); the
// controller reports what only it can check (cron schedules, time zones, that
// named objects exist) as the InvalidSpec condition.
//
// +kubebuilder:object:generate=true
// +groupName=tugboat.dev
package v1alpha1
