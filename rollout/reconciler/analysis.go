package reconciler

import (
	"context"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"time"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/tugboatdev/tugboat/analysis"
	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/rollout"
)

const labelAnalysis = "tugboat.dev/analysis" // the step index, or "background"

// observeAnalysis fills in the verdicts of the current step's analysis and of
// the background analysis, creating their AnalysisRuns when they are due. A
// non-empty message is a spec problem (a missing template, an argument
// without a value).
func (r *Reconciler) observeAnalysis(ctx context.Context, ro *v1alpha1.Rollout, p rollout.Progress, w *world) (string, error) {
	if !p.InRollout() || p.Abort != nil || p.Step == nil {
		return "", nil
	}
	o := &w.observed
	step := int(*p.Step)
	if step < len(ro.Spec.Steps) && ro.Spec.Steps[step].Analysis != nil {
		run, msg, err := r.ensureRun(ctx, ro, p, fmt.Sprint(step), ro.Spec.Steps[step].Analysis)
		if err != nil || msg != "" {
			return msg, err
		}
		o.Analysis, o.AnalysisMessage = run.Status.Phase, run.Status.Message
		w.runs = append(w.runs, observedRun{run: run, step: ptr.To(int32(step))})
	}
	if bg := ro.Spec.Analysis; bg != nil && step >= int(ptr.Deref(bg.StartingStep, 0)) {
		run, msg, err := r.ensureRun(ctx, ro, p, "background", &bg.Analysis)
		if err != nil || msg != "" {
			return msg, err
		}
		o.Background, o.BackgroundMessage = run.Status.Phase, run.Status.Message
		w.runs = append(w.runs, observedRun{run: run})
	}
	return "", nil
}

// observedRun is an AnalysisRun of the attempt in progress: a step's
// analysis, or the background analysis when step is nil.
type observedRun struct {
	run  *v1alpha1.AnalysisRun
	step *int32
}

// ensureRun returns the AnalysisRun of one analysis of this attempt at the
// canary revision, creating it from its templates on first sight. The name
// is derived from the attempt, so a controller restart finds the same run
// and a retry starts a new one.
func (r *Reconciler) ensureRun(ctx context.Context, ro *v1alpha1.Rollout, p rollout.Progress, which string, a *v1alpha1.Analysis) (*v1alpha1.AnalysisRun, string, error) {
	name := runName(ro.Name, p.CanaryRevision, p.StartedAt.Unix(), which)
	var run v1alpha1.AnalysisRun
	err := r.Client.Get(ctx, client.ObjectKey{Namespace: ro.Namespace, Name: name}, &run)
	if err == nil || !apierrors.IsNotFound(err) {
		return &run, "", err
	}
	var templates []v1alpha1.AnalysisTemplateSpec
	for _, ref := range a.Templates {
		spec, msg, err := r.template(ctx, ro.Namespace, ref)
		if err != nil || msg != "" {
			return nil, msg, err
		}
		templates = append(templates, spec)
	}
	args, err := rolloutArgs(ro, p, a.Args)
	if err != nil {
		return nil, fmt.Sprintf("analysis %s: %v", which, err), nil
	}
	spec, err := analysis.RunSpec(templates, args)
	if err != nil {
		return nil, fmt.Sprintf("analysis %s: %v", which, err), nil
	}
	spec.DryRun = append(spec.DryRun, a.DryRun...)
	spec.MeasurementRetention = append(spec.MeasurementRetention, a.MeasurementRetention...)
	run = v1alpha1.AnalysisRun{
		ObjectMeta: metav1.ObjectMeta{Namespace: ro.Namespace, Name: name, Labels: ownedLabels(ro)},
		Spec:       spec,
	}
	run.Labels[labelAnalysis] = which
	if md := a.AnalysisRunMetadata; md != nil {
		for k, v := range md.Labels {
			run.Labels[k] = v
		}
		run.Annotations = md.Annotations
	}
	if err := controllerutil.SetControllerReference(ro, &run, r.Client.Scheme()); err != nil {
		return nil, "", err
	}
	if err := r.Client.Create(ctx, &run); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, "", fmt.Errorf("create analysisrun %s/%s: %w", ro.Namespace, name, err)
	}
	return &run, "", nil
}

func runName(rollout, revision string, started int64, which string) string {
	h := fnv.New32a()
	fmt.Fprintf(h, "%s/%d/%s", revision, started, which)
	suffix := which
	if which != "background" {
		suffix = "step" + which
	}
	return fmt.Sprintf("%s-%s-%s", rollout, suffix, rand.SafeEncodeString(fmt.Sprint(h.Sum32())))
}

func (r *Reconciler) template(ctx context.Context, ns string, ref v1alpha1.AnalysisTemplateRef) (v1alpha1.AnalysisTemplateSpec, string, error) {
	if ptr.Deref(ref.ClusterScope, false) {
		var t v1alpha1.ClusterAnalysisTemplate
		if err := r.Client.Get(ctx, client.ObjectKey{Name: ref.TemplateName}, &t); err != nil {
			if apierrors.IsNotFound(err) {
				return t.Spec, fmt.Sprintf("clusteranalysistemplate %s not found", ref.TemplateName), nil
			}
			return t.Spec, "", err
		}
		return t.Spec, "", nil
	}
	var t v1alpha1.AnalysisTemplate
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: ref.TemplateName}, &t); err != nil {
		if apierrors.IsNotFound(err) {
			return t.Spec, fmt.Sprintf("analysistemplate %s/%s not found", ns, ref.TemplateName), nil
		}
		return t.Spec, "", err
	}
	return t.Spec, "", nil
}

// rolloutArgs resolves a step's arguments: values, fields of the Rollout, or
// the stable or canary revision.
func rolloutArgs(ro *v1alpha1.Rollout, p rollout.Progress, given []argo.AnalysisRunArgument) ([]argo.Argument, error) {
	out := make([]argo.Argument, 0, len(given))
	for _, a := range given {
		switch {
		case a.ValueFrom == nil:
			out = append(out, argo.Argument{Name: a.Name, Value: ptr.To(a.Value)})
		case a.ValueFrom.PodTemplateHashValue != nil:
			v := p.CanaryRevision
			if *a.ValueFrom.PodTemplateHashValue == argo.Stable {
				v = p.StableRevision
			}
			out = append(out, argo.Argument{Name: a.Name, Value: ptr.To(v)})
		case a.ValueFrom.FieldRef != nil:
			v, err := fieldOf(ro, a.ValueFrom.FieldRef.FieldPath)
			if err != nil {
				return nil, fmt.Errorf("argument %q: %w", a.Name, err)
			}
			out = append(out, argo.Argument{Name: a.Name, Value: ptr.To(v)})
		}
	}
	return out, nil
}

// fieldOf reads a field of the Rollout by path, such as metadata.namespace
// or metadata.labels['app'].
func fieldOf(ro *v1alpha1.Rollout, path string) (string, error) {
	if k, ok := strings.CutPrefix(path, "metadata.labels['"); ok {
		return ro.Labels[strings.TrimSuffix(k, "']")], nil
	}
	if k, ok := strings.CutPrefix(path, "metadata.annotations['"); ok {
		return ro.Annotations[strings.TrimSuffix(k, "']")], nil
	}
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(ro)
	if err != nil {
		return "", err
	}
	v, found, err := unstructured.NestedFieldNoCopy(obj, strings.Split(path, ".")...)
	if err != nil || !found {
		return "", fmt.Errorf("field %s not found in the Rollout", path)
	}
	return fmt.Sprint(v), nil
}

// terminateRuns stops the Rollout's analysis runs that are still measuring
// and no longer wanted: after an abort, a promotion or a new revision.
func (r *Reconciler) terminateRuns(ctx context.Context, ro *v1alpha1.Rollout, keep rollout.Progress) error {
	var runs v1alpha1.AnalysisRunList
	if err := r.Client.List(ctx, &runs, client.InNamespace(ro.Namespace), client.MatchingLabels{labelRollout: ro.Name}); err != nil {
		return fmt.Errorf("list analysis runs of rollout %s/%s: %w", ro.Namespace, ro.Name, err)
	}
	for i := range runs.Items {
		run := &runs.Items[i]
		if run.Spec.Terminate || run.Status.Phase.Completed() || !metav1.IsControlledBy(run, ro) {
			continue
		}
		if keep.InRollout() && keep.Abort == nil && isCurrent(run.Name, ro.Name, keep) {
			continue
		}
		patch := client.MergeFrom(run.DeepCopy())
		run.Spec.Terminate = true
		if err := r.Client.Patch(ctx, run, patch); err != nil {
			return fmt.Errorf("terminate analysisrun %s/%s: %w", run.Namespace, run.Name, err)
		}
	}
	return nil
}

// isCurrent reports whether a run belongs to the attempt in progress.
func isCurrent(name, rolloutName string, p rollout.Progress) bool {
	if name == runName(rolloutName, p.CanaryRevision, p.StartedAt.Unix(), "background") {
		return true
	}
	return p.Step != nil && name == runName(rolloutName, p.CanaryRevision, p.StartedAt.Unix(), fmt.Sprint(*p.Step))
}

// explain is the explanation of the attempt's analyses after plan: the
// recorded one with the runs observed now brought up to date. An attempt that
// starts afresh starts with none.
func explain(recorded []v1alpha1.RolloutAnalysis, runs []observedRun, plan rollout.Plan, now time.Time) []v1alpha1.RolloutAnalysis {
	switch plan.Event() {
	case rollout.Started, rollout.Restarted, rollout.Retried:
		return nil
	}
	out := slices.Clone(recorded)
	for _, o := range runs {
		i := slices.IndexFunc(out, func(a v1alpha1.RolloutAnalysis) bool { return a.Run == o.run.Name })
		var before *v1alpha1.RolloutAnalysis
		if i >= 0 {
			before = &out[i]
		}
		e := analysis.Explain(o.run, before, now)
		e.Step, e.Background = o.step, o.step == nil
		if i >= 0 {
			out[i] = e
		} else {
			out = append(out, e)
		}
	}
	if ev := plan.Event(); ev != "" && (plan.Outcome.IsAtRest() || plan.Next.Abort != nil) {
		// The attempt ended: runs still measuring are stopped (terminateRuns),
		// and are no longer observed to say so themselves.
		for i := range out {
			if !out[i].Phase.Completed() {
				out[i].Message = fmt.Sprintf("stopped measuring: the rollout ended (%s)", ev)
			}
		}
	}
	return out
}
