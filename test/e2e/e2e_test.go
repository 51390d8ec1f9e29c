// Package e2e runs Tugboat's scenarios against the sandbox: a real control
// plane with kwok's nodes, the data-plane emulator, Prometheus and the
// controller binary, with the examples applied as a user would.
package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/sandbox"
	"github.com/tugboatdev/tugboat/sandbox/demo"
)

var box *sandbox.Sandbox

func TestMain(m *testing.M) {
	s, err := sandbox.Up(context.Background(), sandbox.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "sandbox:", err)
		os.Exit(1)
	}
	box = s
	code := m.Run()
	if err := s.Down(); err != nil {
		fmt.Fprintln(os.Stderr, "sandbox down:", err)
	}
	os.Exit(code)
}

// scenario is one e2e story, told Given / When / Then.
type scenario struct {
	t      *testing.T
	key    types.NamespacedName
	result demo.Result
	log    strings.Builder
}

func given(t *testing.T) *scenario { return &scenario{t: t} }

// theExample applies an example to the sandbox and waits until its Rollout
// is at rest.
func (s *scenario) theExample(name, rollout string) *scenario {
	s.t.Helper()
	s.key = types.NamespacedName{Namespace: box.Namespace, Name: rollout}
	if err := demo.Apply(s.t.Context(), box.Client(), name, box.Namespace); err != nil {
		s.t.Fatal(err)
	}
	if err := demo.WaitHealthy(s.t.Context(), box.Client(), s.key, 3*time.Minute); err != nil {
		s.t.Fatalf("%s never became healthy: %v\n%s", rollout, err, box.ControllerLog(30))
	}
	return s
}

// podinfoIn applies podinfo and the other examples to a namespace of its
// own (created with labels), lets edit change the Rollout's spec, and waits
// until it is at rest.
func podinfoIn(t *testing.T, ns string, labels map[string]string, examples []string, edit func(*v1alpha1.RolloutSpec)) *scenario {
	t.Helper()
	ctx := t.Context()
	if err := box.Client().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: labels}}); err != nil {
		t.Fatal(err)
	}
	for _, ex := range append([]string{"podinfo"}, examples...) {
		if err := demo.Apply(ctx, box.Client(), ex, ns); err != nil {
			t.Fatal(err)
		}
	}
	s := &scenario{t: t, key: types.NamespacedName{Namespace: ns, Name: "podinfo"}}
	err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		var ro v1alpha1.Rollout
		if err := box.Client().Get(ctx, s.key, &ro); err != nil {
			return err
		}
		// The other namespaces have no receivers of podinfo's notifications.
		ro.Spec.Notifications = nil
		edit(&ro.Spec)
		return box.Client().Update(ctx, &ro)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := demo.WaitHealthy(ctx, box.Client(), s.key, 3*time.Minute); err != nil {
		t.Fatalf("podinfo never became healthy: %v\n%s", err, box.ControllerLog(30))
	}
	return s
}

// when ships a release and follows it to its end.
func (s *scenario) when(r demo.Release) *scenario {
	s.t.Helper()
	res, err := demo.Ship(s.t.Context(), box.Client(), s.key, r, 4*time.Minute, &s.log)
	if err != nil {
		s.t.Fatal(err)
	}
	s.result = res
	return s
}

// whenRolledBack has a person roll back to revision to, as kubectl tug
// rollback does, and follows it until that revision serves.
func (s *scenario) whenRolledBack(to int64, reason string) *scenario {
	s.t.Helper()
	res, err := demo.RollBack(s.t.Context(), box.Client(), s.key, to, reason, 2*time.Minute, &s.log)
	if err != nil {
		s.t.Fatal(err)
	}
	s.result = res
	return s
}

// thenTheDefaultGateFailsIt replays the default gate over the release just
// shipped, through the sandbox's Prometheus: its errors metric fails the
// canary on the evidence of its rate of errors against stable's.
func (s *scenario) thenTheDefaultGateFailsIt() {
	s.t.Helper()
	res, err := demo.ReplayGate(s.t.Context(), box.Prometheus.URL, s.key, s.result, &s.log)
	if err != nil {
		s.t.Fatal(err)
	}
	if res.Got != demo.Aborted || !strings.Contains(res.Message, "errors: High") {
		s.t.Errorf("the default gate over release %s: %s, %q\n%s", s.result.Release.Name, res.Got, res.Message, s.log.String())
	}
}

// then checks how the release ended and what the Rollout says about it.
func (s *scenario) then(want demo.Outcome, check func(*v1alpha1.Rollout) error) {
	s.t.Helper()
	if s.result.Got != want {
		s.t.Fatalf("release %s %s, want %s\n%s\ncontroller log:\n%s", s.result.Release.Name, s.result.Got, want, s.log.String(), box.ControllerLog(30))
	}
	var ro v1alpha1.Rollout
	if err := box.Client().Get(s.t.Context(), s.key, &ro); err != nil {
		s.t.Fatal(err)
	}
	if err := check(&ro); err != nil {
		s.t.Errorf("%v\n%s", err, s.log.String())
	}
}

// TestCanaryPromotedThenRolledBack is the demo: a release within the SLO is
// promoted, one outside it is rolled back with the reason in status; then a
// person rolls back to the first revision, which serves at once, pinned and
// counted, until a fix ships and rolls out as usual. Then rollbacks of every
// kind: through the steps to a revision two back, refused for one not in
// history, and at once mid-rollout, aborting the release under way.
func TestCanaryPromotedThenRolledBack(t *testing.T) {
	began := time.Now()
	s := given(t).theExample("podinfo", "podinfo").withNotifications()

	s.when(demo.Releases[0]).then(demo.Promoted, func(ro *v1alpha1.Rollout) error {
		if ro.Status.Phase != v1alpha1.PhaseHealthy || ro.Status.CanaryWeight != 0 {
			return fmt.Errorf("after promotion: %+v", ro.Status)
		}
		if box.Sink.SlowAsked() == 0 {
			return fmt.Errorf("the slow receiver was never asked")
		}
		return s.notified("promoted")
	})

	s.when(demo.Releases[1]).then(demo.Aborted, func(ro *v1alpha1.Rollout) error {
		msg := ro.Status.Message
		if ro.Status.Phase != v1alpha1.PhaseDegraded || ro.Status.CanaryWeight != 0 ||
			!strings.Contains(msg, "metric success-rate Failed") || !strings.Contains(msg, "did not meet result[0] >= 0.99") {
			return fmt.Errorf("after the bad release: phase %s, weight %d, message %q", ro.Status.Phase, ro.Status.CanaryWeight, msg)
		}
		if err := explainsFailure(ro, "success-rate", "istio_requests_total"); err != nil {
			return err
		}
		if err := s.notified("aborted"); err != nil {
			return err
		}
		return s.slowAndDownHeldNothing()
	})
	s.thenTheDefaultGateFailsIt()

	var good string
	s.whenRolledBack(1, "the good release is blamed").then(demo.Pinned, func(ro *v1alpha1.Rollout) error {
		pin := ro.Status.Rollback
		if pin == nil || pin.Number != 1 || ro.Status.StableRevision != pin.Revision || ro.Status.Phase != v1alpha1.PhaseHealthy ||
			pin.Reason != "the good release is blamed" || pin.RequestedBy != "demo" {
			return fmt.Errorf("after the rollback: pin %+v, status %+v", pin, ro.Status)
		}
		good = pin.From
		for _, n := range ro.Status.Rollbacks {
			if n.Revision == good && n.Requested == 1 && len(n.Images) == 1 && n.Images[0] == demo.Releases[0].Image {
				return nil
			}
		}
		return fmt.Errorf("no count of the rollback from %s: %+v", good, ro.Status.Rollbacks)
	})

	if err := demo.WaitQuiet(t.Context(), box.Prometheus.URL, s.key, "30s", 2*time.Minute, &s.log); err != nil {
		t.Fatal(err)
	}
	var fix string
	s.when(demo.Fix).then(demo.Promoted, func(ro *v1alpha1.Rollout) error {
		if ro.Status.Rollback != nil || ro.Status.Phase != v1alpha1.PhaseHealthy {
			return fmt.Errorf("after the fix: %+v", ro.Status)
		}
		fix = ro.Status.StableRevision
		return nil
	})

	// Revision 1 is two back now: through the steps, as a canary of its own
	// workload that the analysis measures, then pinned.
	s.whenRolledBack(1, demo.ThroughStepsReason).then(demo.Pinned, func(ro *v1alpha1.Rollout) error {
		pin := ro.Status.Rollback
		if pin == nil || pin.Number != 1 || pin.From != fix || ro.Status.StableRevision != pin.Revision || ro.Status.CanaryWorkload != "" {
			return fmt.Errorf("after the rollback through the steps: pin %+v, status %+v", pin, ro.Status)
		}
		if !strings.Contains(s.result.Message, "through the steps") {
			return fmt.Errorf("answer %q does not say it goes through the steps", s.result.Message)
		}
		return s.measured("podinfo-rollback")
	})

	// A revision not in history is refused, and nothing changes.
	s.whenRolledBack(99, "no such revision").then("refused", func(ro *v1alpha1.Rollout) error {
		if !strings.Contains(s.result.Message, "revision 99 is not in the history") || ro.Status.Rollback == nil || ro.Status.Rollback.Number != 1 {
			return fmt.Errorf("after a refused rollback: %q, pin %+v", s.result.Message, ro.Status.Rollback)
		}
		return nil
	})

	// Mid-rollout: a new release ends the pin and rolls out; going back to
	// the fix (revision 3, within fastTrackRevisions of nothing: it is newer
	// than revision 1 serving) aborts it and serves the fix at once.
	again := demo.Release{Name: "again", Image: "ghcr.io/stefanprodan/podinfo:6.7.4", ErrorRate: "0.001", LatencyMs: "45"}
	s.whenReleasedUntilStep(again, 1).whenRolledBack(3, "back to the fix mid-rollout").then(demo.Pinned, func(ro *v1alpha1.Rollout) error {
		pin := ro.Status.Rollback
		if pin == nil || pin.Number != 3 || pin.Revision != fix || ro.Status.CanaryRevision != "" || !strings.Contains(s.result.Message, "aborted") {
			return fmt.Errorf("after the rollback mid-rollout: %q, pin %+v, status %+v", s.result.Message, pin, ro.Status)
		}
		return nil
	})

	// Everything the dashboard and the alerting rules read was scraped from
	// the running controller, and the bad release's abort raised its alert.
	s.thenDashboardAndAlertsSeeIt(began, "AnalysisFailed")
}

// whenReleasedUntilStep ships a release and waits until its rollout is at
// step (or later), without waiting for its end.
func (s *scenario) whenReleasedUntilStep(r demo.Release, step int32) *scenario {
	s.t.Helper()
	rev, err := demo.Start(s.t.Context(), box.Client(), s.key, r)
	if err != nil {
		s.t.Fatal(err)
	}
	var ro v1alpha1.Rollout
	err = wait.PollUntilContextTimeout(s.t.Context(), 200*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		if err := box.Client().Get(ctx, s.key, &ro); err != nil {
			return false, nil
		}
		st := ro.Status
		return st.CanaryRevision == rev && st.Abort == nil && st.CurrentStepIndex != nil && *st.CurrentStepIndex >= step, nil
	})
	if err != nil {
		s.t.Fatalf("release %s never reached step %d: %v; status %+v", r.Name, step, err, ro.Status)
	}
	return s
}

// measured checks that an AnalysisRun of the scenario's Rollout measured
// workload (its workload argument names it) and passed.
func (s *scenario) measured(workload string) error {
	var runs v1alpha1.AnalysisRunList
	if err := box.Client().List(s.t.Context(), &runs, client.InNamespace(s.key.Namespace), client.MatchingLabels{v1alpha1.LabelRollout: s.key.Name}); err != nil {
		return err
	}
	for _, run := range runs.Items {
		for _, a := range run.Spec.Args {
			if a.Name == "workload" && a.Value != nil && *a.Value == workload && run.Status.Phase == "Successful" {
				return nil
			}
		}
	}
	return fmt.Errorf("no successful analysis run measured %s", workload)
}

// explainsFailure checks status.analysis: the metric failed, with the query
// as sent, the value it measured and the limits it broke.
func explainsFailure(ro *v1alpha1.Rollout, metric, inQuery string) error {
	for _, a := range ro.Status.Analysis {
		for _, m := range a.Metrics {
			if m.Name != metric {
				continue
			}
			if m.Phase != "Failed" || !strings.Contains(m.Query, inQuery) || m.Value == "" || m.Since == nil ||
				m.Limits == nil || m.Counters.Failed <= m.Limits.FailureLimit {
				return fmt.Errorf("status.analysis does not explain the failure of %s: %+v", metric, m)
			}
			return nil
		}
	}
	return fmt.Errorf("status.analysis has no metric %s: %+v", metric, ro.Status.Analysis)
}
