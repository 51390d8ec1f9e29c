package reconciler

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strings"
	"time"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/tugboatdev/tugboat/analysis"
	analysisreconciler "github.com/tugboatdev/tugboat/analysis/reconciler"
	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/rollout"
)

const labelAnalysis = "tugboat.dev/analysis" // the step index, or "background"

// observeAnalysis fills in the verdicts of the current step's analysis and of
// the background analysis. A run that is due and missing is built from its
// templates, for act to create. A missing template or an argument without a
// value is a *rollout.SpecError; both analyses are looked at whatever the
// other's problem, so that a failing background analysis still aborts.
func (r *Reconciler) observeAnalysis(ctx context.Context, ro *v1alpha1.Rollout, p rollout.Progress, w *world) error {
	if !p.InRollout() || p.Abort != nil || p.Step == nil {
		return nil
	}
	o := &w.observed
	step := int(*p.Step)
	var problem error
	// observe reads one analysis into its verdict; a spec problem is kept
	// (the first one reported) while the other analysis is still read.
	observe := func(which string, a *v1alpha1.Analysis, stepOf *int32, phase *argo.AnalysisPhase, msg *string) error {
		run, err := r.observeRun(ctx, ro, p, which, a)
		switch {
		case isSpecError(err):
			if problem == nil {
				problem = err
			}
			return nil
		case err != nil:
			return err
		}
		run.step = stepOf
		*phase, *msg = run.run.Status.Phase, run.run.Status.Message
		w.runs = append(w.runs, run)
		return nil
	}
	if step < len(ro.Spec.Steps) && ro.Spec.Steps[step].Analysis != nil {
		if err := observe(fmt.Sprint(step), ro.Spec.Steps[step].Analysis, ptr.To(int32(step)), &o.Analysis, &o.AnalysisMessage); err != nil {
			return err
		}
	}
	if bg := ro.Spec.Analysis; bg != nil && step >= int(ptr.Deref(bg.StartingStep, 0)) {
		if err := observe(backgroundRun(p), &bg.Analysis, nil, &o.Background, &o.BackgroundMessage); err != nil {
			return err
		}
	}
	return problem
}

func isSpecError(err error) bool {
	var se *rollout.SpecError
	return errors.As(err, &se)
}

// backgroundRun names the background analysis of an attempt: each one a
// person goes on from (inconclusive) starts the next.
func backgroundRun(p rollout.Progress) string {
	if p.BackgroundAttempt > 0 {
		return fmt.Sprintf("background%d", p.BackgroundAttempt)
	}
	return "background"
}

// observedRun is an AnalysisRun of the attempt in progress: a step's
// analysis, or the background analysis when step is nil. create says it is
// not there yet.
type observedRun struct {
	run    *v1alpha1.AnalysisRun
	step   *int32
	create bool
}

// observeRun returns the AnalysisRun of one analysis of this attempt at the
// canary revision, built from its templates when there is none yet. The
// name is derived from the attempt, so a controller restart finds the same
// run and a retry starts a new one.
func (r *Reconciler) observeRun(ctx context.Context, ro *v1alpha1.Rollout, p rollout.Progress, which string, a *v1alpha1.Analysis) (observedRun, error) {
	name := runName(ro.Name, p, which)
	var run v1alpha1.AnalysisRun
	switch err := r.Client.Get(ctx, client.ObjectKey{Namespace: ro.Namespace, Name: name}, &run); {
	case err == nil && !metav1.IsControlledBy(&run, ro):
		return observedRun{}, rollout.Invalid("analysisrun %s/%s exists and is not this Rollout's", ro.Namespace, name)
	case err == nil:
		return observedRun{run: &run}, nil
	case !apierrors.IsNotFound(err):
		return observedRun{}, fmt.Errorf("get analysisrun %s/%s: %w", ro.Namespace, name, err)
	}
	var templates []v1alpha1.AnalysisTemplateSpec
	for _, ref := range a.Templates {
		spec, err := r.template(ctx, ro.Namespace, ref)
		if err != nil {
			return observedRun{}, err
		}
		templates = append(templates, spec)
	}
	args, err := rolloutArgs(ro, p, a.Args)
	if err != nil {
		return observedRun{}, rollout.Invalid("analysis %s: %v", which, err)
	}
	spec, err := analysis.RunSpec(templates, args)
	if err != nil {
		return observedRun{}, rollout.Invalid("analysis %s: %v", which, err)
	}
	spec.DryRun = append(spec.DryRun, a.DryRun...)
	spec.MeasurementRetention = append(spec.MeasurementRetention, a.MeasurementRetention...)
	run = v1alpha1.AnalysisRun{
		ObjectMeta: metav1.ObjectMeta{Namespace: ro.Namespace, Name: name, Labels: ownedLabels(ro)},
		Spec:       spec,
	}
	if md := a.AnalysisRunMetadata; md != nil {
		maps.Copy(run.Labels, md.Labels)
		run.Annotations = md.Annotations
	}
	// Ours win: they find the run again, and retention keeps it by revision.
	maps.Copy(run.Labels, ownedLabels(ro))
	run.Labels[labelAnalysis] = which
	run.Labels[labelRevision] = p.CanaryRevision
	if err := controllerutil.SetControllerReference(ro, &run, r.Client.Scheme()); err != nil {
		return observedRun{}, err
	}
	return observedRun{run: &run, create: true}, nil
}

// createRuns creates the runs observed missing that still belong to the
// attempt the plan records.
func (r *Reconciler) createRuns(ctx context.Context, ro *v1alpha1.Rollout, runs []observedRun, next rollout.Progress) error {
	for _, o := range runs {
		if !o.create || !next.InRollout() || next.Abort != nil || !isCurrent(o.run.Name, ro.Name, next) {
			continue
		}
		if err := r.Client.Create(ctx, o.run); err != nil && !apierrors.IsAlreadyExists(err) {
			if apierrors.IsInvalid(err) || apierrors.IsBadRequest(err) {
				// Retrying cannot fix it (a label value over 63 characters, say).
				return rollout.Invalid("create analysisrun %s/%s: %v", o.run.Namespace, o.run.Name, err)
			}
			return fmt.Errorf("create analysisrun %s/%s: %w", o.run.Namespace, o.run.Name, err)
		}
	}
	return nil
}

// runName names one analysis of an attempt: the revision, when the attempt
// started and the steps it runs, so that a restart finds the same run and a
// retry or a change of steps (even within the second) starts a new one.
func runName(ro string, p rollout.Progress, which string) string {
	h := fnv.New32a()
	fmt.Fprintf(h, "%s/%d/%s", p.CanaryRevision, p.StartedAt.Unix(), which)
	if p.StepsHash != "" {
		fmt.Fprintf(h, "/%s", p.StepsHash)
	}
	suffix := which
	if !strings.HasPrefix(which, "background") {
		suffix = "step" + which
	}
	return fmt.Sprintf("%s-%s-%s", ro, suffix, rand.SafeEncodeString(fmt.Sprint(h.Sum32())))
}

func (r *Reconciler) template(ctx context.Context, ns string, ref v1alpha1.AnalysisTemplateRef) (v1alpha1.AnalysisTemplateSpec, error) {
	spec, err := analysisreconciler.Template(ctx, r.Client, ns, ref)
	if errors.Is(err, analysisreconciler.ErrTemplateNotFound) {
		return spec, rollout.Invalid("%v", err)
	}
	return spec, err
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
		case a.ValueFrom.FieldRef != nil && a.ValueFrom.FieldRef.FieldPath == "status.canaryWorkload":
			// From the progress the run is for, which status may not show yet.
			out = append(out, argo.Argument{Name: a.Name, Value: ptr.To(canaryWorkload(ro, p))})
		case a.ValueFrom.FieldRef != nil:
			v, err := analysis.FieldOf(ro, "Rollout", a.ValueFrom.FieldRef.FieldPath)
			if err != nil {
				return nil, fmt.Errorf("argument %q: %w", a.Name, err)
			}
			out = append(out, argo.Argument{Name: a.Name, Value: ptr.To(v)})
		}
	}
	return out, nil
}

// terminateRuns stops the Rollout's analysis runs that are still measuring
// and no longer wanted: after an abort, a promotion or a new revision.
func (r *Reconciler) terminateRuns(ctx context.Context, ro *v1alpha1.Rollout, runs []*v1alpha1.AnalysisRun, keep rollout.Progress) error {
	for _, run := range runs {
		if run.Spec.Terminate || run.Status.Phase.Completed() {
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
	if name == runName(rolloutName, p, backgroundRun(p)) {
		return true
	}
	return p.Step != nil && name == runName(rolloutName, p, fmt.Sprint(*p.Step))
}

// explain is the explanation of the attempt's analyses after plan: the
// recorded one with the runs observed now brought up to date. An attempt that
// starts afresh starts with none.
func explain(recorded []v1alpha1.RolloutAnalysis, runs []observedRun, plan rollout.Plan, now time.Time) []v1alpha1.RolloutAnalysis {
	switch plan.Event() {
	case rollout.Started, rollout.Restarted, rollout.Retried, rollout.StepsChanged, rollout.RollingBack:
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
