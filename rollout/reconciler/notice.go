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
	var stepSince int64
	if st.StepStartedAt != nil {
		stepSince = st.StepStartedAt.Unix()
	}
	// Every field is in status, so the same occurrence has the same id
	// after a restart; the background attempt and the step's start tell a
	// second inconclusive or pause of the same step from the first.
	occurrence := fmt.Sprintf("%s/%d/%d/%d/%d/%s", rev, since, ptr.Deref(st.CurrentStepIndex, -1), stepSince, st.BackgroundAttempt, plan.Outcome)
	if name == notify.RolledBack && st.Rollback != nil {
		// Through the steps, the start and the arrival are two occurrences.
		rev, occurrence = st.Rollback.Revision, "request/"+st.Rollback.Request+"/"+string(plan.Event())
	}
	var step *int32
	if st.CurrentStepIndex != nil {
		step = ptr.To(*st.CurrentStepIndex)
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
		Step:       step,
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
	switch ev := plan.Event(); ev {
	case rollout.Started, rollout.Restarted, rollout.Retried, rollout.StepsChanged:
		out = append(out, notify.Started)
	case rollout.Advanced:
		out = append(out, notify.StepAdvanced)
	// Promoted and the aborts stay the outcome while the rollout rests on
	// them: told when it comes to them, not when status changes meanwhile.
	case rollout.Promoted:
		if string(ev) != before {
			out = append(out, notify.Promoted)
		}
	case rollout.AbortedByUser, rollout.ProgressDeadlineExceeded, rollout.AnalysisFailed:
		if string(ev) != before {
			out = append(out, notify.Aborted)
		}
	case rollout.RolledBack, rollout.RollingBack:
		out = append(out, notify.RolledBack)
	}
	// A wait reached anew: after another reason, or on a step just
	// advanced to (a pause right after a pause).
	if string(plan.Outcome) == before && plan.Event() != rollout.Advanced {
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
