package reconciler_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

// runsByRevision lists the namespace's AnalysisRuns of the Rollout by the
// revision label, finished or not, and the UIDs by name.
func (f *fixture) runsByRevision(name string) (finished, running map[string][]string, uids map[string]string) {
	f.t.Helper()
	var list v1alpha1.AnalysisRunList
	if err := f.c.List(f.t.Context(), &list, client.InNamespace(f.ns), client.MatchingLabels{v1alpha1.LabelRollout: name}); err != nil {
		f.t.Fatal(err)
	}
	finished, running, uids = map[string][]string{}, map[string][]string{}, map[string]string{}
	for _, run := range list.Items {
		rev := run.Labels["tugboat.dev/revision"]
		if run.Status.Phase.Completed() {
			finished[rev] = append(finished[rev], run.Name)
		} else {
			running[rev] = append(running[rev], run.Name)
		}
		uids[run.Name] = string(run.UID)
	}
	return finished, running, uids
}

// retryLater waits until the clock is past the second the attempt under
// way started in, and requests a retry: runs are named by the second an
// attempt starts, so a retry within it would find the old attempt's runs.
func (f *fixture) retryLater(name, token string) {
	f.t.Helper()
	var ro v1alpha1.Rollout
	f.get(&ro, name)
	if ro.Status.StartedAt == nil {
		f.t.Fatalf("rollout %s has not started", name)
	}
	started := ro.Status.StartedAt.Time
	if err := pollUntil(f.t, 5*time.Second, func() bool { return time.Now().Unix() > started.Unix() }); err != nil {
		f.t.Fatal(err)
	}
	f.annotate(name, v1alpha1.AnnotationRetry, token)
}

// A Rollout whose revision fails its analysis again and again, and which
// then goes on to newer revisions, keeps at most analysisRunHistoryLimit
// finished runs of each revision; the runs its status names stay, as they
// were.
func TestFinishedRunsPastTheHistoryLimitAreDeleted(t *testing.T) {
	f := given(t)
	successRate.WithLabelValues("ret").Set(0.5)
	f.scraped("ret")
	f.successTemplate()
	f.app("ret", 1, managedRoute("ret"))
	ro := newRollout("ret", weight(20), analysisStep("ret"), weight(50))
	ro.Spec.AnalysisRunHistoryLimit = ptr.To[int32](2)
	f.rollout(ro)
	f.eventually("ret", "initialized", time.Minute, hasReason("Healthy"))

	// Revision v2 fails its analysis four times: the first attempt and
	// three retries, each with a run of its own.
	v2 := f.release("ret", "v2")
	var named []string // the run status names after each failure
	for attempt := range 4 {
		if attempt > 0 {
			f.retryLater("ret", fmt.Sprint("r", attempt))
		}
		failed := f.eventually("ret", fmt.Sprintf("attempt %d aborted by analysis", attempt), time.Minute, func(ro *v1alpha1.Rollout) bool {
			return reason(ro) == "AnalysisFailed" && len(ro.Status.Analysis) == 1 && !slices.Contains(named, ro.Status.Analysis[0].Run) &&
				ro.Status.Analysis[0].Phase == argo.AnalysisPhaseFailed
		})
		named = append(named, failed.Status.Analysis[0].Run)
	}
	var finished, running map[string][]string
	var uids map[string]string
	err := pollUntil(t, 30*time.Second, func() bool {
		finished, running, uids = f.runsByRevision("ret")
		return len(finished[v2]) <= 2
	})
	if err != nil {
		t.Fatalf("revision %s keeps %d finished runs, want at most 2: %v (running: %v)", v2, len(finished[v2]), finished, running)
	}
	if len(finished[v2]) != 2 || !slices.Contains(finished[v2], named[3]) || !slices.Contains(finished[v2], named[2]) {
		t.Errorf("revision %s keeps %v; want the two newest of %v", v2, finished[v2], named)
	}
	f.wantEvent("ret", "AnalysisRunsPruned")
	last := uids[named[3]]

	// The fifth attempt passes; then v3 is released and passes too. Each
	// revision keeps its own newest two, and a run kept is the one it was.
	successRate.WithLabelValues("ret").Set(0.999)
	f.scraped("ret")
	f.retryLater("ret", "r4")
	passed := f.eventually("ret", "v2 promoted", time.Minute, stableAt(v2))
	if len(passed.Status.Analysis) != 1 || slices.Contains(named, passed.Status.Analysis[0].Run) {
		t.Fatalf("status.analysis after the fifth attempt: %+v", passed.Status.Analysis)
	}
	pass := passed.Status.Analysis[0].Run
	v3 := f.release("ret", "v3")
	promoted := f.eventually("ret", "v3 promoted", time.Minute, stableAt(v3))
	if len(promoted.Status.Analysis) != 1 {
		t.Fatalf("status.analysis: %+v", promoted.Status.Analysis)
	}
	current := promoted.Status.Analysis[0].Run
	err = pollUntil(t, 30*time.Second, func() bool {
		finished, running, uids = f.runsByRevision("ret")
		return len(finished[v2]) <= 2 && len(running[v2]) == 0 && len(running[v3]) == 0
	})
	if err != nil {
		t.Fatalf("revision %s keeps %v finished and %v running, want at most 2 and none: %v", v2, finished[v2], running[v2], err)
	}
	slices.Sort(finished[v2])
	want := []string{named[3], pass}
	slices.Sort(want)
	if !slices.Equal(finished[v2], want) {
		t.Errorf("revision %s keeps %v; want its two newest runs %v", v2, finished[v2], want)
	}
	if uids[named[3]] != last {
		t.Errorf("run %s was replaced: UID %s, was %s", named[3], uids[named[3]], last)
	}
	if !slices.Equal(finished[v3], []string{current}) {
		t.Errorf("revision %s keeps %v; want only %s, which status names", v3, finished[v3], current)
	}
}

// With analysisRunHistoryLimit 0 a Rollout keeps only the runs still
// measuring and those its status names: an aborted attempt's run goes once
// a retry replaces it, and the run that passed stays while a finished run
// beside it goes.
func TestAHistoryLimitOfZeroKeepsWhatStatusNames(t *testing.T) {
	f := given(t)
	successRate.WithLabelValues("ret0").Set(0.999)
	f.scraped("ret0")
	f.backgroundTemplate("ongoing", `tugboat_test_success_rate{workload="ret0"}`)
	f.app("ret0", 1, managedRoute("ret0"))
	ro := newRollout("ret0", weight(20), pause(""))
	ro.Spec.Analysis = &v1alpha1.BackgroundAnalysis{Analysis: v1alpha1.Analysis{
		Templates: []v1alpha1.AnalysisTemplateRef{{TemplateName: "ongoing"}},
	}}
	ro.Spec.AnalysisRunHistoryLimit = ptr.To[int32](0)
	f.rollout(ro)
	f.eventually("ret0", "initialized", time.Minute, hasReason("Healthy"))
	v2 := f.release("ret0", "v2")
	first := f.eventually("ret0", "paused", time.Minute, func(ro *v1alpha1.Rollout) bool {
		return reason(ro) == "WaitingForPromotion" && len(ro.Status.Analysis) == 1
	}).Status.Analysis[0].Run

	// Aborted, the first attempt's run stops measuring and stays: status
	// names it.
	f.annotate("ret0", v1alpha1.AnnotationAbort, "a1")
	f.eventually("ret0", "aborted", time.Minute, hasReason("AbortedByUser"))
	var run v1alpha1.AnalysisRun
	if err := pollUntil(t, 30*time.Second, func() bool {
		return f.c.Get(t.Context(), client.ObjectKey{Namespace: f.ns, Name: first}, &run) == nil && run.Status.Phase.Completed()
	}); err != nil {
		t.Fatalf("run %s never finished after the abort: %v (phase %q)", first, err, run.Status.Phase)
	}

	// Retried, the new attempt's run measures and the first one goes.
	f.retryLater("ret0", "r1")
	var finished, running map[string][]string
	err := pollUntil(t, 30*time.Second, func() bool {
		finished, running, _ = f.runsByRevision("ret0")
		return len(finished[v2]) == 0 && len(running[v2]) == 1 && running[v2][0] != first
	})
	if err != nil {
		t.Fatalf("after the retry: finished %v, running %v; want only the new attempt's run, measuring: %v", finished, running, err)
	}
	second := running[v2][0]

	// Promoted, the second run stops measuring; status names it, so it
	// stays, while a finished run that status does not name goes.
	f.eventually("ret0", "paused again", time.Minute, atStep(1, "WaitingForPromotion"))
	f.annotate("ret0", v1alpha1.AnnotationPromote, "p1")
	f.eventually("ret0", "promoted", time.Minute, stableAt(v2))
	if err := pollUntil(t, 30*time.Second, func() bool {
		return f.c.Get(t.Context(), client.ObjectKey{Namespace: f.ns, Name: second}, &run) == nil && run.Status.Phase.Completed()
	}); err != nil {
		t.Fatalf("run %s never finished after the promotion: %v (phase %q)", second, err, run.Status.Phase)
	}
	extra := &v1alpha1.AnalysisRun{}
	extra.Namespace, extra.Name = f.ns, "ret0-extra"
	extra.Labels, extra.OwnerReferences = run.Labels, run.OwnerReferences
	extra.Spec = *run.Spec.DeepCopy()
	extra.Spec.Terminate = true // finishes at once
	if err := f.c.Create(t.Context(), extra); err != nil {
		t.Fatal(err)
	}
	if err := pollUntil(t, 30*time.Second, func() bool {
		err := f.c.Get(t.Context(), client.ObjectKeyFromObject(extra), &v1alpha1.AnalysisRun{})
		return client.IgnoreNotFound(err) == nil && err != nil
	}); err != nil {
		t.Fatalf("the finished run %s that status does not name was never deleted: %v", extra.Name, err)
	}
	finished, running, _ = f.runsByRevision("ret0")
	if !slices.Equal(finished[v2], []string{second}) || len(running[v2]) != 0 {
		t.Errorf("kept finished %v and running %v; want only %s, which status names", finished[v2], running[v2], second)
	}
}
