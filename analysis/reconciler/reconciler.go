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
	"strings"
	"sync"
	"time"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/tugboatdev/tugboat/analysis"
	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/notify"
)

// Consumer-side interfaces: only the methods this package calls.
type (
	measurer interface {
		Measure(ctx context.Context, namespace string, m *v1alpha1.PrometheusMetric, query string, ts time.Time) analysis.Sample
	}
	webMeasurer interface {
		MeasureWeb(ctx context.Context, req analysis.WebRequest) analysis.Sample
	}
	// secrets reads one Secret's data; nil means no Secret access.
	secrets  = func(ctx context.Context, namespace, name string) (map[string][]byte, error)
	recorder interface {
		Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any)
	}
	// notifier hands a notification over for sending; it never blocks.
	notifier interface {
		Notify(namespace string, to []v1alpha1.Notification, e notify.Event)
	}
)

// Reconciler drives AnalysisRuns.
type Reconciler struct {
	Client   client.Client
	Measurer measurer
	// Web measures web metrics; nil refuses them.
	Web webMeasurer
	// APIReader reads past the cache (the manager's GetAPIReader): what job
	// metrics check before they create a pod, and Jobs the cache does not
	// hold. Client when nil.
	APIReader client.Reader
	Secrets   secrets
	// Recorder, when set, marks each metric's transitions with an event on
	// the Rollout that owns the run.
	Recorder recorder
	// Notifier, when set, tells the owning Rollout's spec.notifications of
	// each metric that failed (analysisFailed).
	Notifier notifier
	// Metrics, when set, counts measurements and verdicts.
	Metrics *Metrics
	Now     func() time.Time
	// Coalesce is how long successful measurements that change no verdict
	// may wait, in memory, before they are written; failures, inconclusive
	// and erring measurements are written within WriteEvery, every phase
	// change at once.
	// Zero writes every measurement. A restart re-measures what was not
	// written; it never loses a failure that was counted.
	Coalesce time.Duration
	// WriteEvery bounds a run's status writes to one per WriteEvery (default
	// 1s), however many of its measurements come back; a change of the run's
	// phase is written at once.
	WriteEvery time.Duration
	// MaxMeasuring bounds the measurements in flight for all runs together
	// (DefaultMaxMeasuring), MaxMeasuringPerRun those of one run
	// (DefaultMaxMeasuringPerRun), and MeasureFor how long one may take
	// (DefaultMeasureFor), whatever its metric's timeout says.
	MaxMeasuring       int64
	MaxMeasuringPerRun int64
	MeasureFor         time.Duration

	memos   sync.Map // types.NamespacedName -> memo
	once    sync.Once
	flights *flights
}

// inFlight returns the measurements under way, made on first use.
func (r *Reconciler) inFlight() *flights {
	r.once.Do(func() {
		total, perRun, d := r.MaxMeasuring, r.MaxMeasuringPerRun, r.MeasureFor
		if total <= 0 {
			total = DefaultMaxMeasuring
		}
		if perRun <= 0 {
			perRun = DefaultMaxMeasuringPerRun
		}
		if d <= 0 {
			d = DefaultMeasureFor
		}
		r.flights = newFlights(total, perRun, d)
	})
	return r.flights
}

// memo is a run's status as this controller last made it, and when it last
// wrote it. It holds measurements not written yet, so it stays valid while
// the cache shows the run as it was when the memo was read, or as one of this
// controller's writes since left it (the cache has not caught up), or as
// someone else left it without touching its status (spec.terminate set, a
// label added); a version whose status is not the one known means someone
// else changed the status, and the cache is read afresh.
type memo struct {
	ours   []string // resourceVersions: the one read, those written, those seen since with status unchanged
	status v1alpha1.AnalysisRunStatus
	// at is the status at the last of ours: as read, or as last written.
	at        *v1alpha1.AnalysisRunStatus
	lastWrite time.Time
	// urgent: status holds a change that is not only successes, waiting
	// for WriteEvery (or for the cache, after a conflict).
	urgent bool
}

// maxOurs bounds the resourceVersions a memo remembers.
const maxOurs = 8

func (m memo) validAt(rv string) bool { return slices.Contains(m.ours, rv) }

// seen adds a resourceVersion of the run's to ours.
func (m *memo) seen(rv string) {
	m.ours = append(m.ours, rv)
	m.ours = m.ours[max(0, len(m.ours)-maxOurs):]
}

// +kubebuilder:rbac:groups=tugboat.dev,resources=analysisruns,verbs=get;list;watch
// +kubebuilder:rbac:groups=tugboat.dev,resources=analysisruns/status,verbs=get;patch;update
// +kubebuilder:rbac:groups=tugboat.dev,resources=analysistemplates;clusteranalysistemplates,verbs=get;list;watch

// Reconcile takes the measurements that are due and records the verdict.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	var run v1alpha1.AnalysisRun
	if err := r.Client.Get(ctx, req.NamespacedName, &run); err != nil {
		if apierrors.IsNotFound(err) {
			r.memos.Delete(req.NamespacedName)
			r.inFlight().forget(req.NamespacedName)
			r.Metrics.gone(req.NamespacedName)
		}
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	r.Metrics.seen(&run)
	if run.Status.Phase.Completed() {
		r.Metrics.measured(&run)
		r.memos.Delete(req.NamespacedName)
		r.inFlight().forget(req.NamespacedName)
		if hasJobs(&run) {
			// Decided: its Jobs still running are stopped.
			return reconcile.Result{}, r.stopJobs(ctx, &run)
		}
		return reconcile.Result{}, nil
	}
	base := run.DeepCopy()
	var m memo
	if v, ok := r.memos.Load(req.NamespacedName); ok {
		m = v.(memo)
	}
	known := m.validAt(run.ResourceVersion)
	if !known && m.at != nil && equality.Semantic.DeepEqual(run.Status, *m.at) {
		m.seen(run.ResourceVersion) // changed by someone else, but not its status
		known = true
	}
	if known {
		run.Status = *m.status.DeepCopy()
		// Patched against the status known at the last version, not the
		// cache's older copy: no conflict while the cache catches up.
		base.Status, base.ResourceVersion = *m.at.DeepCopy(), m.ours[len(m.ours)-1]
		run.ResourceVersion = base.ResourceVersion
	} else {
		m = memo{ours: []string{run.ResourceVersion}, status: *run.Status.DeepCopy(), at: run.Status.DeepCopy(), lastWrite: m.lastWrite}
	}
	decided := run.Status.Phase.Completed()
	if decided && !m.urgent {
		return reconcile.Result{}, nil // decided and written; the cache has not caught up
	}
	before := run.Status.DeepCopy()
	now := r.Now()
	var wake time.Time
	if !decided { // a verdict not written yet is only written
		wake = r.step(ctx, &run, now)
	}
	r.Metrics.measured(&run)
	if err := ctx.Err(); err != nil {
		return reconcile.Result{}, err // stopping: what was cut short is not a measurement
	}
	run.Status.ObservedGeneration = run.Generation
	if equality.Semantic.DeepEqual(base.Status, run.Status) {
		return requeue(wake, now), nil
	}
	keep := func(after time.Time) (reconcile.Result, error) {
		m.status = *run.Status.DeepCopy()
		r.memos.Store(req.NamespacedName, m)
		return requeue(earliest(wake, after), now), nil
	}
	m.urgent = m.urgent || !onlySuccesses(before, &run.Status)
	if r.Coalesce > 0 && now.Sub(m.lastWrite) < r.Coalesce && !m.urgent {
		return keep(time.Time{})
	}
	if next := m.lastWrite.Add(r.writeEvery()); now.Before(next) && before.Phase == run.Status.Phase {
		return keep(next) // written less than WriteEvery ago
	}
	patch := client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})
	if err := r.Client.Status().Patch(ctx, &run, patch); err != nil {
		if apierrors.IsConflict(err) {
			// Kept, not lost: the measurements are taken, and are written
			// once the cache shows the run as it is.
			m.urgent = true
			return keep(now.Add(100 * time.Millisecond))
		}
		m.urgent = true
		_, _ = keep(time.Time{}) // kept for the retry
		return reconcile.Result{}, fmt.Errorf("patch status of analysisrun %s: %w", req.NamespacedName, err)
	}
	m.seen(run.ResourceVersion)
	m.status, m.at, m.lastWrite, m.urgent = *run.Status.DeepCopy(), run.Status.DeepCopy(), now, false
	r.memos.Store(req.NamespacedName, m)
	r.Metrics.written(&run, &base.Status)
	r.announce(ctx, base, &run)
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
		if b.Count == 0 && a.Count > 0 {
			return false // a metric's first measurement is shown at once
		}
	}
	return true
}

func (r *Reconciler) writeEvery() time.Duration {
	if r.WriteEvery > 0 {
		return r.WriteEvery
	}
	return time.Second
}

// earliest is the earlier of two wake-up times, zero meaning none.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

func requeue(wake, now time.Time) reconcile.Result {
	if wake.IsZero() {
		return reconcile.Result{}
	}
	return reconcile.Result{RequeueAfter: max(wake.Sub(now), 100*time.Millisecond)}
}

// step is one look at the run: analysis.Pass, with measurements taken from
// the Prometheus provider off the reconcile path (flights). It returns when
// the next measurement is due (zero when none is).
func (r *Reconciler) step(ctx context.Context, run *v1alpha1.AnalysisRun, now time.Time) time.Time {
	fl := r.inFlight()
	if run.Spec.Terminate {
		fl.forget(types.NamespacedName{Namespace: run.Namespace, Name: run.Name}) // decided by what was measured
	} else if fl.busy(run) {
		return now.Add(time.Second) // woken sooner when the last is back
	}
	values, secret, argErr := r.args(ctx, run)
	a := measureArgs{analysis.Args{Values: values, Secret: secret}, argErr}
	namespace := run.Namespace
	pass := analysis.Pass{
		Spec: run.Spec,
		Args: a.Args,
		Measure: func(m *v1alpha1.Metric, at time.Time) analysis.Taken {
			metric := *m.DeepCopy()
			if m.Provider.Job != nil {
				owner := &v1alpha1.AnalysisRun{ObjectMeta: metav1.ObjectMeta{Namespace: run.Namespace, Name: run.Name, UID: run.UID}}
				n := measured(run, m.Name) + 1
				return fl.take(run, m.Name, at, func(ctx context.Context, at time.Time) analysis.Taken {
					return r.takeJob(ctx, owner, &metric, a, n)
				})
			}
			started := run.Status.StartedAt.Time // set by Step before it measures
			return fl.take(run, m.Name, at, func(ctx context.Context, at time.Time) analysis.Taken {
				t := r.take(ctx, namespace, &metric, a, started, at)
				if errors.Is(ctx.Err(), context.DeadlineExceeded) {
					t.Sample = analysis.Sample{Err: fmt.Errorf("no answer within %s, the longest a measurement may take here", fl.measureFor)}
				}
				return t
			})
		},
	}
	return pass.Step(&run.Status, now)
}

// measured is how many measurements a run's metric has counted.
func measured(run *v1alpha1.AnalysisRun, metric string) int64 {
	for _, res := range run.Status.MetricResults {
		if res.Name == metric {
			return int64(res.Count) + int64(res.Error)
		}
	}
	return 0
}

func hasJobs(run *v1alpha1.AnalysisRun) bool {
	return slices.ContainsFunc(run.Spec.Metrics, func(m v1alpha1.Metric) bool { return m.Provider.Job != nil })
}

// JobCache is how the manager's cache should hold Jobs: only those of job
// metrics, so that the controller does not keep every Job in the cluster.
func JobCache() cache.ByObject {
	req, _ := labels.NewRequirement(labelJobRun, selection.Exists, nil)
	return cache.ByObject{Label: labels.NewSelector().Add(*req)}
}

// measureArgs are a run's resolved arguments, which of them came from
// Secrets, and why any could not be resolved.
type measureArgs struct {
	analysis.Args
	err error
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

// announce records an event for each metric whose phase changed to a verdict.
func (r *Reconciler) announce(ctx context.Context, before, after *v1alpha1.AnalysisRun) {
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
		if m.Phase == argo.AnalysisPhaseFailed || m.Phase == argo.AnalysisPhaseError {
			r.notifyFailed(ctx, after, owner.Name, m, strings.TrimPrefix(last, " at "))
		}
	}
}

// notifyFailed tells the owning Rollout's subscriptions that metric m of
// run failed. A metric fails once per run, which makes the occurrence.
func (r *Reconciler) notifyFailed(ctx context.Context, run *v1alpha1.AnalysisRun, rollout string, m argo.MetricResult, value string) {
	if r.Notifier == nil {
		return
	}
	var ro v1alpha1.Rollout
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: run.Namespace, Name: rollout}, &ro); err != nil || len(ro.Spec.Notifications) == 0 {
		return
	}
	e := notify.Event{
		Name:       notify.AnalysisFailed,
		Object:     notify.Object{Kind: "Rollout", Namespace: ro.Namespace, Name: ro.Name, UID: string(ro.UID)},
		Occurrence: string(run.UID) + "/" + m.Name,
		Time:       r.Now(),
		Revision:   ro.Status.CanaryRevision,
		Step:       ro.Status.CurrentStepIndex,
		Steps:      int32(len(ro.Spec.Steps)),
		Reason:     "Metric" + string(m.Phase),
		Message:    fmt.Sprintf("metric %s of analysis run %s %s: %s", m.Name, run.Name, m.Phase, m.Message),
		Findings:   []notify.Finding{{Run: run.Name, Metric: m.Name, Phase: string(m.Phase), Value: value, Message: m.Message}},
		Next:       []string{"kubectl tug get rollout " + ro.Name + " -n " + ro.Namespace},
	}
	if m.DryRun {
		e.Message = "dry-run " + e.Message + " (it does not stop the rollout)"
	}
	r.Notifier.Notify(ro.Namespace, ro.Spec.Notifications, e)
}

// SetupWithManager registers the controller.
// Measurements that come back wake their run; stopping the manager cancels
// those under way.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager, workers int) error {
	fl := r.inFlight()
	stop := manager.RunnableFunc(func(ctx context.Context) error {
		<-ctx.Done()
		fl.stop()
		return nil
	})
	if err := mgr.Add(stop); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.AnalysisRun{}).
		// A job metric's Job ending wakes its run.
		Owns(&batchv1.Job{}).
		WatchesRawSource(source.Channel(fl.wake, &handler.EnqueueRequestForObject{})).
		WithOptions(controller.Options{MaxConcurrentReconciles: workers}).
		Complete(r)
}
