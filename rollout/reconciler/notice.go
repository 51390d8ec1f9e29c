package reconciler

import (
	"fmt"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	"k8s.io/utils/ptr"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/notify"
	"github.com/tugboatdev/tugboat/rollout"
	"github.com/tugboatdev/tugboat/rollout/status"
)

// notices are the notifications of the status change from base to ro that
// plan made, those people can subscribe to: its transition, and the wait for
// a person it arrived at (a step advanced onto a pause is both). They are
// made after the change is recorded, so a restart does not tell them twice.
func notices(ro, base *v1alpha1.Rollout, plan rollout.Plan) []notify.Event {
	var out []notify.Event
	for _, name := range noticeNames(plan, status.Reason(base.Status.Conditions), stepInconclusive(ro)) {
		out = append(out, notice(ro, base, plan, name))
	}
	return out
}

func notice(ro, base *v1alpha1.Rollout, plan rollout.Plan, name string) notify.Event {
	st := &ro.Status
	// The attempt is the one the change happened to: a promotion or an
	// abort ends the attempt that base describes.
	rev, started := st.CanaryRevision, st.StartedAt
	if rev == "" {
		rev, started = base.Status.CanaryRevision, base.Status.StartedAt
	}
	var since int64
	if started != nil {
		since = started.Unix()
	}
	occurrence := fmt.Sprintf("%s/%d/%d/%s", rev, since, ptr.Deref(st.CurrentStepIndex, -1), plan.Outcome)
	if name == notify.RolledBack && st.Rollback != nil {
		rev, occurrence = st.Rollback.Revision, "request/"+st.Rollback.Request
	}
	reason := string(plan.Outcome)
	if ev := plan.Event(); ev != "" && name != notify.Paused && name != notify.Inconclusive {
		reason = string(ev)
	}
	return notify.Event{
		Name:       name,
		Object:     notify.Object{Kind: "Rollout", Namespace: ro.Namespace, Name: ro.Name, UID: string(ro.UID)},
		Occurrence: occurrence,
		Revision:   rev,
		Step:       st.CurrentStepIndex,
		Steps:      int32(len(ro.Spec.Steps)),
		Weight:     ptr.To(st.CanaryWeight),
		Reason:     reason,
		Message:    plan.Message,
		Findings:   notify.Findings(st.Analysis),
		Next:       nextCommands(name, ro),
	}
}

// noticeNames maps a plan to the events it announces: a transition, and a
// new wait for a person (before is the reason recorded until now).
func noticeNames(plan rollout.Plan, before string, stepInconclusive bool) []string {
	var out []string
	switch plan.Event() {
	case rollout.Started, rollout.Restarted, rollout.Retried, rollout.StepsChanged:
		out = append(out, notify.Started)
	case rollout.Advanced:
		out = append(out, notify.StepAdvanced)
	case rollout.Promoted:
		out = append(out, notify.Promoted)
	case rollout.AbortedByUser, rollout.ProgressDeadlineExceeded, rollout.AnalysisFailed:
		out = append(out, notify.Aborted)
	case rollout.RolledBack, rollout.RollingBack:
		out = append(out, notify.RolledBack)
	}
	if string(plan.Outcome) == before {
		return out
	}
	switch plan.Outcome {
	case rollout.AnalysisInconclusive:
		out = append(out, notify.Inconclusive)
	case rollout.WaitingForPromotion:
		if stepInconclusive {
			out = append(out, notify.Inconclusive)
		} else {
			out = append(out, notify.Paused)
		}
	case rollout.PausedByUser:
		out = append(out, notify.Paused)
	}
	return out
}

// stepInconclusive reports whether the analysis of the step under way is
// inconclusive: the step then waits for a person because of it.
func stepInconclusive(ro *v1alpha1.Rollout) bool {
	for _, a := range ro.Status.Analysis {
		if a.Step != nil && ro.Status.CurrentStepIndex != nil && *a.Step == *ro.Status.CurrentStepIndex && a.Phase == argo.AnalysisPhaseInconclusive {
			return true
		}
	}
	return false
}

// nextCommands are what a person would run after the event.
func nextCommands(name string, ro *v1alpha1.Rollout) []string {
	at := ro.Name + " -n " + ro.Namespace
	switch name {
	case notify.Paused, notify.Inconclusive:
		return []string{"kubectl tug promote " + at, "kubectl tug abort " + at}
	case notify.Aborted:
		return []string{"kubectl tug get rollout " + at, "kubectl tug retry " + at}
	case notify.Promoted:
		return []string{"kubectl tug history " + at, "kubectl tug rollback " + at + " --to-revision N"}
	case notify.RolledBack:
		return []string{"kubectl tug get rollout " + at, "kubectl tug rollback " + at + " --cancel"}
	}
	return []string{"kubectl tug get rollout " + at}
}
