// Package reconciler is the AnalysisRun controller: it takes each metric's
// measurements on schedule, keeps them (bounded) in the run's status with
// Argo's counters, and reaches the run's verdict. One status patch per
// reconcile; waiting is RequeueAfter.
package reconciler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/tugboatdev/tugboat/analysis"
	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

// Consumer-side interfaces: only the methods this package calls.
type (
	measurer interface {
		Measure(ctx context.Context, namespace string, m *v1alpha1.PrometheusMetric, query string, ts time.Time) analysis.Sample
	}
	// secrets reads one Secret's data; nil means no Secret access.
	secrets  = func(ctx context.Context, namespace, name string) (map[string][]byte, error)
	recorder interface {
		Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any)
	}
)

// Reconciler drives AnalysisRuns.
type Reconciler struct {
	Client   client.Client
	Measurer measurer
	Secrets  secrets
	// Recorder, when set, marks each metric's transitions with an event on
	// the Rollout that owns the run.
	Recorder recorder
	// Metrics, when set, counts measurements and verdicts.
	Metrics *Metrics
	Now     func() time.Time
	// Coalesce is how long successful measurements that change no verdict
	// may wait, in memory, before they are written; failures, inconclusive
	// and erring measurements and every phase change are written at once.
	// Zero writes every measurement. A restart re-measures what was not
	// written; it never loses a failure that was counted.
	Coalesce time.Duration

	memos sync.Map // types.NamespacedName -> memo
}

// memo is a run's status as this controller last made it, and when it last
// wrote it. It holds measurements not written yet, so it stays valid while
// the cache shows the run as it was before the last write (the cache has not
// caught up) or as that write left it; any other version means someone else
// changed the run, and the cache is read afresh.
type memo struct {
	before, written string // resourceVersions
	status          v1alpha1.AnalysisRunStatus
	lastWrite       time.Time
}

func (m memo) validAt(rv string) bool {
	return rv == m.before || (m.written != "" && rv == m.written)
}

// +kubebuilder:rbac:groups=tugboat.dev,resources=analysisruns,verbs=get;list;watch
// +kubebuilder:rbac:groups=tugboat.dev,resources=analysisruns/status,verbs=get;patch;update
// +kubebuilder:rbac:groups=tugboat.dev,resources=analysistemplates;clusteranalysistemplates,verbs=get;list;watch

// defaultRetention is how many measurements of a metric status keeps.
const defaultRetention = 10

// Reconcile takes the measurements that are due and records the verdict.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	var run v1alpha1.AnalysisRun
	if err := r.Client.Get(ctx, req.NamespacedName, &run); err != nil {
		if apierrors.IsNotFound(err) {
			r.memos.Delete(req.NamespacedName)
		}
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if run.Status.Phase.Completed() {
		r.memos.Delete(req.NamespacedName)
		return reconcile.Result{}, nil
	}
	base := run.DeepCopy()
	var m memo
	if v, ok := r.memos.Load(req.NamespacedName); ok {
		m = v.(memo)
	}
	if m.validAt(run.ResourceVersion) {
		run.Status = *m.status.DeepCopy()
	} else {
		m.before, m.written = run.ResourceVersion, ""
	}
	before := run.Status.DeepCopy()
	now := r.Now()
	wake := r.step(ctx, &run, now)
	if err := ctx.Err(); err != nil {
		return reconcile.Result{}, err // stopping: what was cut short is not a measurement
	}
	run.Status.ObservedGeneration = run.Generation
	if equality.Semantic.DeepEqual(base.Status, run.Status) {
		return requeue(wake, now), nil
	}
	if r.Coalesce > 0 && now.Sub(m.lastWrite) < r.Coalesce && onlySuccesses(before, &run.Status) {
		m.status = *run.Status.DeepCopy()
		r.memos.Store(req.NamespacedName, m)
		return requeue(wake, now), nil
	}
	patch := client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})
	if err := r.Client.Status().Patch(ctx, &run, patch); err != nil {
		if apierrors.IsConflict(err) {
			return reconcile.Result{RequeueAfter: 100 * time.Millisecond}, nil
		}
		return reconcile.Result{}, fmt.Errorf("patch status of analysisrun %s: %w", req.NamespacedName, err)
	}
	r.memos.Store(req.NamespacedName, memo{before: base.ResourceVersion, written: run.ResourceVersion, status: *run.Status.DeepCopy(), lastWrite: now})
	r.Metrics.written(&base.Status, &run.Status)
	r.announce(base, &run)
	return requeue(wake, now), nil
}

// onlySuccesses reports whether after differs from before by successful
// measurements alone: no phase changed, nothing failed, erred or was
// inconclusive. Such a change can wait to be written.
func onlySuccesses(before, after *v1alpha1.AnalysisRunStatus) bool {
	if before.Phase != after.Phase || before.StartedAt == nil || len(before.MetricResults) != len(after.MetricResults) {
		return false
	}
	for i, a := range after.MetricResults {
		b := before.MetricResults[i]
		if a.Name != b.Name || a.Phase != b.Phase || a.Failed != b.Failed || a.Inconclusive != b.Inconclusive || a.Error != b.Error {
			return false
		}
	}
	return true
}

func requeue(wake, now time.Time) reconcile.Result {
	if wake.IsZero() {
		return reconcile.Result{}
	}
	return reconcile.Result{RequeueAfter: max(wake.Sub(now), 100*time.Millisecond)}
}

// step measures every metric that is due and sets the run's phase; it
// returns when the next measurement is due (zero when none is).
func (r *Reconciler) step(ctx context.Context, run *v1alpha1.AnalysisRun, now time.Time) time.Time {
	s := &run.Status
	if s.StartedAt == nil {
		s.StartedAt = &metav1.Time{Time: now}
		s.Phase = argo.AnalysisPhaseRunning
	}
	args, secret, argErr := r.args(ctx, run)
	dry := analysis.DryRunMetrics(run.Spec)
	phases := map[string]argo.AnalysisPhase{}
	var wake time.Time
	for i := range run.Spec.Metrics {
		m := &run.Spec.Metrics[i]
		res := result(s, m.Name, dry[m.Name])
		if !res.Phase.Completed() && !run.Spec.Terminate {
			if next := r.measureIfDue(ctx, run, m, res, measureArgs{analysis.Args{Values: args, Secret: secret}, argErr}, now); !next.IsZero() && (wake.IsZero() || next.Before(wake)) {
				wake = next
			}
		}
		phases[m.Name] = res.Phase
	}
	phase := analysis.RunPhase(phases, dry)
	if run.Spec.Terminate && !phase.Completed() {
		// Stopped early: what was measured so far decides, as in Argo.
		phase = argo.AnalysisPhaseSuccessful
		for name, p := range phases {
			if !dry[name] && p.Completed() && p != argo.AnalysisPhaseSuccessful {
				phase = analysis.RunPhase(map[string]argo.AnalysisPhase{name: p}, nil)
			}
		}
		s.Message = "terminated"
	}
	s.Phase = phase
	s.RunSummary, s.DryRunSummary = summaries(s.MetricResults)
	if phase.Completed() {
		s.CompletedAt = &metav1.Time{Time: now}
		if s.Message == "" {
			s.Message = verdictMessage(s.MetricResults, phase)
		}
		return time.Time{}
	}
	return wake
}

// measureArgs are a run's resolved arguments, which of them came from
// Secrets, and why any could not be resolved.
type measureArgs struct {
	analysis.Args
	err error
}

// measureIfDue takes a metric's measurement when it is due and returns when
// the next one is.
func (r *Reconciler) measureIfDue(ctx context.Context, run *v1alpha1.AnalysisRun, m *v1alpha1.Metric, res *argo.MetricResult, a measureArgs, now time.Time) time.Time {
	due, err := nextDue(m, res, run.Status.StartedAt.Time)
	if err != nil {
		res.Phase, res.Message = argo.AnalysisPhaseError, err.Error()
		return time.Time{}
	}
	if now.Before(due) {
		return due
	}
	// Secret values go into the query and nowhere else: limits and
	// conditions see only the other arguments, so that no error message,
	// value or verdict can tell a Secret's value.
	plain := a.Plain()
	var limits analysis.Limits
	if err = a.CheckLimits(*m); err == nil {
		limits, err = analysis.LimitsOf(*m, plain)
	}
	prom := *m.Provider.Prometheus
	var query, shown string
	if err == nil && a.err != nil && slices.ContainsFunc(analysis.ArgNames(prom.Query), func(n string) bool { _, ok := a.Values[n]; return !ok }) {
		// An argument that cannot be resolved now (a Secret not readable
		// yet) may resolve next time: an error measurement, counted against
		// consecutiveErrorLimit. Nothing is rendered or sent.
		r.record(run, m, res, analysis.Sample{Err: a.err}, plain, a.Shown(prom.Query), limits, now)
		return r.next(m, res, run)
	}
	if err == nil {
		query, shown, err = a.Render(prom.Query)
	}
	if err == nil {
		err = a.RenderTarget(&prom)
	}
	if err == nil {
		err = a.CheckAddress(prom)
	}
	if err == nil && prom.RangeQuery != nil {
		prom.RangeQuery, err = a.RenderRange(*prom.RangeQuery)
	}
	if err != nil {
		// An argument that would change the query, or a limit that does not
		// resolve, is the template's fault: no query is sent, the metric errs.
		res.Phase, res.Message = argo.AnalysisPhaseError, err.Error()
		return time.Time{}
	}
	sample := r.measure(ctx, run.Namespace, &prom, query, now, a.In(prom.Query))
	if sample.Err != nil && a.In(prom.Query) {
		// Prometheus's errors may quote the query, Secret values and all.
		sample.Err = a.Scrub(sample.Err)
	}
	r.record(run, m, res, sample, plain, shown, limits, now)
	return r.next(m, res, run)
}

// secretMeasurer is a measurer that can keep a query out of URLs: the
// Prometheus adapter never sends such a query by GET.
type secretMeasurer interface {
	MeasureSecret(ctx context.Context, namespace string, m *v1alpha1.PrometheusMetric, query string, ts time.Time) analysis.Sample
}

// measure sends a query through the measurer; one holding values from
// Secrets goes by MeasureSecret when the measurer has it (the adapter does;
// stand-ins in tests need not).
func (r *Reconciler) measure(ctx context.Context, namespace string, prom *v1alpha1.PrometheusMetric, query string, ts time.Time, holdsSecrets bool) analysis.Sample {
	if sm, ok := r.Measurer.(secretMeasurer); ok && holdsSecrets {
		return sm.MeasureSecret(ctx, namespace, prom, query, ts)
	}
	return r.Measurer.Measure(ctx, namespace, prom, query, ts)
}

// record judges a sample and adds the measurement to the metric's result.
func (r *Reconciler) record(run *v1alpha1.AnalysisRun, m *v1alpha1.Metric, res *argo.MetricResult, sample analysis.Sample, plain map[string]string, shown string, limits analysis.Limits, now time.Time) {
	phase, value, msg := analysis.Judge(*m, sample, plain)
	meas := argo.Measurement{
		Phase:      phase,
		Value:      value,
		Message:    msg,
		StartedAt:  &metav1.Time{Time: now},
		FinishedAt: &metav1.Time{Time: r.Now()},
	}
	res.Measurements = append(res.Measurements, meas)
	if keep := retention(run.Spec, m.Name); len(res.Measurements) > keep {
		res.Measurements = res.Measurements[len(res.Measurements)-keep:]
	}
	analysis.Record(res, phase)
	res.Phase = analysis.Assess(*res, limits)
	res.Message = msg
	if res.Metadata == nil {
		res.Metadata = map[string]string{}
	}
	res.Metadata["ResolvedPrometheusQuery"] = shown // Secret values masked
}

// next is when the metric's next measurement is due; zero once it is done.
func (r *Reconciler) next(m *v1alpha1.Metric, res *argo.MetricResult, run *v1alpha1.AnalysisRun) time.Time {
	if res.Phase.Completed() {
		return time.Time{}
	}
	next, _ := nextDue(m, res, run.Status.StartedAt.Time)
	return next
}

// nextDue is when a metric's next measurement is due (analysis.NextDue).
func nextDue(m *v1alpha1.Metric, res *argo.MetricResult, started time.Time) (time.Time, error) {
	if len(res.Measurements) == 0 {
		return analysis.NextDue(*m, started, nil)
	}
	return analysis.NextDue(*m, started, &res.Measurements[len(res.Measurements)-1].StartedAt.Time)
}

// args resolves the run's arguments: values, and Secret references read now
// (never stored in the run).
func (r *Reconciler) args(ctx context.Context, run *v1alpha1.AnalysisRun) (map[string]string, map[string]bool, error) {
	out := map[string]string{}
	secret := map[string]bool{}
	var errs []error
	for _, a := range run.Spec.Args {
		switch {
		case a.Value != nil:
			out[a.Name] = *a.Value
		case a.ValueFrom != nil && a.ValueFrom.SecretKeyRef != nil:
			ref := a.ValueFrom.SecretKeyRef
			if r.Secrets == nil {
				errs = append(errs, fmt.Errorf("argument %q reads Secret %s, but this controller has no Secret access", a.Name, ref.Name))
				continue
			}
			secret[a.Name] = true // readable or not: its value is never shown
			data, err := r.Secrets(ctx, run.Namespace, ref.Name)
			if err != nil {
				errs = append(errs, fmt.Errorf("argument %q: secret %s/%s: %w", a.Name, run.Namespace, ref.Name, err))
				continue
			}
			v, ok := data[ref.Key]
			if !ok {
				errs = append(errs, fmt.Errorf("argument %q: secret %s/%s has no key %q", a.Name, run.Namespace, ref.Name, ref.Key))
				continue
			}
			out[a.Name] = string(v)
		default:
			errs = append(errs, fmt.Errorf("argument %q has no value", a.Name))
		}
	}
	return out, secret, errors.Join(errs...)
}

// result returns the metric's result in status, adding it when missing.
func result(s *v1alpha1.AnalysisRunStatus, name string, dry bool) *argo.MetricResult {
	for i := range s.MetricResults {
		if s.MetricResults[i].Name == name {
			return &s.MetricResults[i]
		}
	}
	s.MetricResults = append(s.MetricResults, argo.MetricResult{Name: name, Phase: argo.AnalysisPhasePending, DryRun: dry})
	return &s.MetricResults[len(s.MetricResults)-1]
}

func retention(spec v1alpha1.AnalysisRunSpec, metric string) int {
	for _, r := range spec.MeasurementRetention {
		if (r.MetricName == metric || r.MetricName == "*") && r.Limit > 0 {
			return int(r.Limit)
		}
	}
	return defaultRetention
}

func summaries(results []argo.MetricResult) (argo.RunSummary, *argo.RunSummary) {
	var run, dry argo.RunSummary
	for _, r := range results {
		sum := &run
		if r.DryRun {
			sum = &dry
		}
		sum.Count++
		switch r.Phase {
		case argo.AnalysisPhaseSuccessful:
			sum.Successful++
		case argo.AnalysisPhaseFailed:
			sum.Failed++
		case argo.AnalysisPhaseInconclusive:
			sum.Inconclusive++
		case argo.AnalysisPhaseError:
			sum.Error++
		}
	}
	if dry.Count == 0 {
		return run, nil
	}
	return run, &dry
}

// verdictMessage explains a finished run by its deciding metric.
func verdictMessage(results []argo.MetricResult, phase argo.AnalysisPhase) string {
	for _, r := range results {
		if !r.DryRun && r.Phase == phase && phase != argo.AnalysisPhaseSuccessful {
			last := ""
			if n := len(r.Measurements); n > 0 {
				last = " (last value " + r.Measurements[n-1].Value + ")"
			}
			return fmt.Sprintf("metric %s %s%s: %s", r.Name, phase, last, r.Message)
		}
	}
	return "all metrics " + string(phase)
}

// announce records an event for each metric whose phase changed to a verdict.
func (r *Reconciler) announce(before, after *v1alpha1.AnalysisRun) {
	owner := metav1.GetControllerOf(after)
	if r.Recorder == nil || owner == nil || owner.Kind != "Rollout" {
		return
	}
	ro := &v1alpha1.Rollout{ObjectMeta: metav1.ObjectMeta{Namespace: after.Namespace, Name: owner.Name, UID: owner.UID}}
	was := map[string]argo.AnalysisPhase{}
	for _, m := range before.Status.MetricResults {
		was[m.Name] = m.Phase
	}
	for _, m := range after.Status.MetricResults {
		if m.Phase == was[m.Name] || !m.Phase.Completed() {
			continue
		}
		kind := corev1.EventTypeNormal
		if m.Phase != argo.AnalysisPhaseSuccessful {
			kind = corev1.EventTypeWarning
		}
		last := ""
		if n := len(m.Measurements); n > 0 {
			last = " at " + m.Measurements[n-1].Value
		}
		r.Recorder.Eventf(ro, after, kind, "Metric"+string(m.Phase), "Analyse", "metric %s %s%s: %s", m.Name, m.Phase, last, m.Message)
	}
}

// SetupWithManager registers the controller.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager, workers int) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.AnalysisRun{}).
		WithOptions(controller.Options{MaxConcurrentReconciles: workers}).
		Complete(r)
}
