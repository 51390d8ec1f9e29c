package reconciler

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"regexp"
	"time"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/tugboatdev/tugboat/analysis"
	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

// Labels: on a metric's Jobs, the run they measure for; on a namespace,
// that job metrics may create pods there, and on a service account, that
// their pods may run as it.
const (
	labelJobRun       = "tugboat.dev/analysisrun-uid"
	labelJobMetric    = "tugboat.dev/metric"
	LabelJobsMayRunAs = "tugboat.dev/analysis-jobs"
)

// +kubebuilder:rbac:groups=batch,resources=jobs,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups="",resources=serviceaccounts,verbs=get
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get
// A Job's owner reference blocks the run's deletion, which admission may check.
// +kubebuilder:rbac:groups=tugboat.dev,resources=analysisruns/finalizers,verbs=update

// jobName names measurement n of a run's metric: short enough for the
// label the Job controller puts on its pods, whatever the names.
func jobName(run types.UID, metric string, n int64) string {
	sum := sha256.Sum256([]byte(string(run) + "/" + metric))
	return fmt.Sprintf("tugboat-%s-%d", hex.EncodeToString(sum[:5]), n)
}

// takeJob is measurement n of a job metric: its Job created the first time,
// deferred while it runs, and then its outcome.
func (r *Reconciler) takeJob(ctx context.Context, run *v1alpha1.AnalysisRun, m *v1alpha1.Metric, a measureArgs, n int64) analysis.Taken {
	name := jobName(run.UID, m.Name, n)
	var job batchv1.Job
	switch err := r.Client.Get(ctx, client.ObjectKey{Namespace: run.Namespace, Name: name}, &job); {
	case apierrors.IsNotFound(err):
		return r.startJob(ctx, run, m, a, name)
	case err != nil:
		return analysis.Taken{Sample: analysis.Sample{Err: fmt.Errorf("get job %s: %w", name, err)}}
	case !metav1.IsControlledBy(&job, run):
		return analysis.Taken{Invalid: fmt.Errorf("job %s/%s exists and is not this run's", run.Namespace, name)}
	}
	taken := analysis.Taken{StartedAt: job.CreationTimestamp.Time}
	for _, c := range job.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete:
			taken.Sample.Outcome = &analysis.Outcome{Phase: argo.AnalysisPhaseSuccessful, Value: "Complete", Message: fmt.Sprintf("job %s completed", name)}
		case batchv1.JobFailed:
			taken.Sample.Outcome = &analysis.Outcome{Phase: argo.AnalysisPhaseFailed, Value: "Failed",
				Message: analysis.Shorten(fmt.Sprintf("job %s failed: %s: %s", name, c.Reason, c.Message), analysis.MaxMessage)}
		default:
			continue
		}
		taken.FinishedAt = c.LastTransitionTime.Time
		return taken
	}
	taken.Sample.Err = fmt.Errorf("%w: job %s is running", analysis.ErrDeferred, name)
	taken.RetryAfter = jobPoll
	return taken
}

// startJob creates a measurement's Job, after its spec and service account
// pass: the API server checks the rest, and what it refuses is the
// template's fault.
func (r *Reconciler) startJob(ctx context.Context, run *v1alpha1.AnalysisRun, m *v1alpha1.Metric, a measureArgs, name string) analysis.Taken {
	if a.err != nil {
		return analysis.Taken{Sample: analysis.Sample{Err: a.err}}
	}
	spec, err := a.RenderJob(*m.Provider.Job)
	if err != nil {
		return analysis.Taken{Invalid: err}
	}
	if err := r.mayRunJobs(ctx, run.Namespace, spec.Template.Spec); err != nil {
		return analysis.Taken{Invalid: err}
	}
	md := m.Provider.Job.Metadata
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: run.Namespace, Name: name,
			Labels:      map[string]string{},
			Annotations: maps.Clone(md.Annotations),
		},
		Spec: spec,
	}
	maps.Copy(job.Labels, md.Labels)
	job.Labels[labelJobRun] = string(run.UID)
	job.Labels[labelJobMetric] = metricLabel(m.Name)
	if err := controllerutil.SetControllerReference(run, job, r.Client.Scheme()); err != nil {
		return analysis.Taken{Sample: analysis.Sample{Err: err}}
	}
	switch err := r.Client.Create(ctx, job); {
	case apierrors.IsInvalid(err) || apierrors.IsBadRequest(err):
		return analysis.Taken{Invalid: fmt.Errorf("provider.job: the API server refuses the Job: %w", err)}
	case apierrors.IsAlreadyExists(err):
		// Not in the cache, which holds only Jobs labelled as a run's: one
		// made by someone else, which must not stand for the measurement.
		var have batchv1.Job
		if err := r.reader().Get(ctx, client.ObjectKeyFromObject(job), &have); err != nil {
			return analysis.Taken{Sample: analysis.Sample{Err: fmt.Errorf("get job %s: %w", name, err)}}
		}
		if !metav1.IsControlledBy(&have, run) || have.Labels[labelJobRun] != string(run.UID) {
			return analysis.Taken{Invalid: fmt.Errorf("job %s/%s exists and is not this run's", run.Namespace, name)}
		}
	case err != nil:
		return analysis.Taken{Sample: analysis.Sample{Err: fmt.Errorf("create job %s: %w", name, err)}}
	}
	return analysis.Taken{Sample: analysis.Sample{Err: fmt.Errorf("%w: job %s started", analysis.ErrDeferred, name)}, RetryAfter: jobPoll}
}

// jobPoll is how often a running Job is looked at should its end not wake
// its run (the controller owns the Jobs, and watches them).
const jobPoll = time.Minute

// mayRunJobs refuses a job metric in a namespace that has not opted in, or
// whose pods would run as a service account the namespace has not marked
// for analysis Jobs: whoever may write a template could otherwise create
// pods, and borrow any account, there. Both are read from the API server.
func (r *Reconciler) mayRunJobs(ctx context.Context, namespace string, pod corev1.PodSpec) error {
	var ns corev1.Namespace
	if err := r.reader().Get(ctx, client.ObjectKey{Name: namespace}, &ns); err != nil {
		return fmt.Errorf("get namespace %s: %w", namespace, err)
	}
	if ns.Labels[LabelJobsMayRunAs] != "true" {
		return fmt.Errorf("provider.job: namespace %s is not labelled %s=true, which lets job metrics create pods there", namespace, LabelJobsMayRunAs)
	}
	sa := pod.ServiceAccountName
	if sa == "" {
		sa = pod.DeprecatedServiceAccount
	}
	if sa == "" || sa == "default" {
		return nil
	}
	var acct corev1.ServiceAccount
	switch err := r.reader().Get(ctx, client.ObjectKey{Namespace: namespace, Name: sa}, &acct); {
	case apierrors.IsNotFound(err):
		return fmt.Errorf("provider.job.spec.template.spec.serviceAccountName: service account %s/%s not found", namespace, sa)
	case err != nil:
		return err
	case acct.Labels[LabelJobsMayRunAs] != "true":
		return fmt.Errorf("provider.job.spec.template.spec.serviceAccountName: service account %s/%s is not labelled %s=true, which lets analysis Jobs run as it", namespace, sa, LabelJobsMayRunAs)
	}
	return nil
}

// reader reads past the cache where there is one.
func (r *Reconciler) reader() client.Reader {
	if r.APIReader != nil {
		return r.APIReader
	}
	return r.Client
}

var labelValue = regexp.MustCompile(`^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$`)

// metricLabel is a metric's name as a label value.
func metricLabel(name string) string {
	if len(name) <= 63 && labelValue.MatchString(name) {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	return hex.EncodeToString(sum[:8])
}

// stopJobs deletes the Jobs of a run that has ended and still run.
func (r *Reconciler) stopJobs(ctx context.Context, run *v1alpha1.AnalysisRun) error {
	var jobs batchv1.JobList
	if err := r.Client.List(ctx, &jobs, client.InNamespace(run.Namespace), client.MatchingLabels{labelJobRun: string(run.UID)}); err != nil {
		return fmt.Errorf("list jobs of analysisrun %s/%s: %w", run.Namespace, run.Name, err)
	}
	for i := range jobs.Items {
		job := &jobs.Items[i]
		if finished(job) || !job.DeletionTimestamp.IsZero() || !metav1.IsControlledBy(job, run) {
			continue
		}
		if err := r.Client.Delete(ctx, job, client.PropagationPolicy(metav1.DeletePropagationBackground)); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("stop job %s/%s: %w", job.Namespace, job.Name, err)
		}
	}
	return nil
}

func finished(job *batchv1.Job) bool {
	for _, c := range job.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}
