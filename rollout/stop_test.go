package rollout

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/utils/ptr"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

func TestOnStop(t *testing.T) {
	stopped := func(p Progress, why Outcome, msg string) Plan {
		return Plan{Outcome: why, Message: msg, Next: p, RequeueAfter: 30 * time.Second}
	}
	atRest := Progress{StableRevision: "s1"}
	abortedBy := func(why Outcome, msg string) Progress {
		p := at(1, t0)
		p.Abort = &Abort{why, msg}
		return p
	}
	for _, tt := range []struct {
		name     string
		stop     Plan
		requests v1alpha1.Requests
		primary  string // the revision primary runs
		want     Plan
	}{{
		name: "at rest: nothing to protect",
		stop: stopped(atRest, TargetNotFound, "deployment ns/app not found"),
		want: stopped(atRest, TargetNotFound, "deployment ns/app not found"),
	}, {
		name:     "at rest, an abort request has nothing to abort",
		stop:     stopped(atRest, InvalidSpec, "analysistemplate ns/sr not found"),
		requests: v1alpha1.Requests{Abort: "a1"},
		want:     stopped(atRest, InvalidSpec, "analysistemplate ns/sr not found"),
	}, {
		name: "mid-rollout, a missing template holds traffic where it is",
		stop: stopped(at(3, t0), InvalidSpec, "analysistemplate ns/sr not found"),
		want: stopped(at(3, t0), InvalidSpec, "analysistemplate ns/sr not found"),
	}, {
		name: "mid-rollout, the target gone: aborted, traffic back on stable",
		stop: stopped(at(1, t0), TargetNotFound, "deployment ns/app not found"),
		want: Plan{Outcome: TargetNotFound, Message: "deployment ns/app not found mid-rollout, so the canary has no pods; traffic back on stable",
			Next:    abortedBy(TargetNotFound, "deployment ns/app not found mid-rollout, so the canary has no pods; traffic back on stable"),
			Traffic: desired(0), CanaryReplicas: ptr.To[int32](0), RequeueAfter: 30 * time.Second},
	}, {
		name:    "the target gone once primary runs the canary: the promotion is complete",
		stop:    stopped(at(6, t0), TargetNotFound, "deployment ns/app not found"),
		primary: "c1",
		want: Plan{Outcome: TargetNotFound, Transition: Promoted,
			Message: "deployment ns/app not found; revision c1, which primary runs, is stable and serves all traffic",
			Next:    Progress{StableRevision: "c1"}, Traffic: desired(0), CanaryReplicas: ptr.To[int32](0), RequeueAfter: 30 * time.Second},
	}, {
		name:     "mid-rollout, a person's abort is carried out",
		stop:     stopped(at(3, t0), InvalidSpec, "analysistemplate ns/sr not found"),
		requests: v1alpha1.Requests{Abort: "a1"},
		want: Plan{Outcome: AbortedByUser, Message: "aborted on request while analysistemplate ns/sr not found; traffic back on stable",
			Next: func() Progress {
				p := at(3, t0)
				p.Abort = &Abort{AbortedByUser, "aborted on request while analysistemplate ns/sr not found; traffic back on stable"}
				p.Requests.Abort = "a1"
				return p
			}(),
			Traffic: desired(0), CanaryReplicas: ptr.To[int32](0), RequeueAfter: 30 * time.Second},
	}, {
		name: "already aborted for this reason: the abort's message stays",
		stop: stopped(abortedBy(TargetNotFound, "gone; traffic back on stable"), TargetNotFound, "deployment ns/app not found"),
		want: stopped(abortedBy(TargetNotFound, "gone; traffic back on stable"), TargetNotFound, "gone; traffic back on stable"),
	}, {
		name: "already aborted, another problem is reported",
		stop: stopped(abortedBy(AnalysisFailed, "failed; traffic back on stable"), InvalidSpec, "analysistemplate ns/sr not found"),
		want: stopped(abortedBy(AnalysisFailed, "failed; traffic back on stable"), InvalidSpec, "analysistemplate ns/sr not found"),
	}} {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, OnStop(tt.stop, tt.requests, tt.primary)); diff != "" {
				t.Errorf("OnStop() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
