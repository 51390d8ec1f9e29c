package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/rollout"
)

// describe writes a Rollout's state for people: the steps with the current
// one marked, the weights, the conditions and the recent events.
// Phases and marks are coloured with paint.
func describe(ctx context.Context, c client.Client, key types.NamespacedName, now time.Time, paint palette, out io.Writer) error {
	var ro v1alpha1.Rollout
	if err := c.Get(ctx, key, &ro); err != nil {
		return fmt.Errorf("rollout %s: %w", key, err)
	}
	var events eventsv1.EventList
	if err := c.List(ctx, &events, client.InNamespace(key.Namespace),
		client.MatchingFields{"regarding.name": key.Name, "regarding.kind": "Rollout"}); err != nil {
		return fmt.Errorf("events of rollout %s: %w", key, err)
	}
	s := ro.Status
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "Name:\t%s\n", ro.Name)
	fmt.Fprintf(w, "Namespace:\t%s\n", ro.Namespace)
	fmt.Fprintf(w, "Target:\tdeployment/%s\n", ro.Spec.TargetRef.Name)
	fmt.Fprintf(w, "Phase:\t%s\n", paint.phase(orDash(string(s.Phase))))
	fmt.Fprintf(w, "Message:\t%s\n", orDash(s.Message))
	fmt.Fprintf(w, "Stable:\t%s\n", orDash(s.StableRevision))
	if s.CanaryRevision != "" {
		fmt.Fprintf(w, "Canary:\t%s\n", s.CanaryRevision)
	}
	fmt.Fprintf(w, "Traffic:\t%d%% stable, %d%% canary\n", 100-s.CanaryWeight, s.CanaryWeight)
	w.Flush()

	fmt.Fprintln(out, "\nSteps:")
	for i, st := range ro.Spec.Steps {
		mark := "  "
		if s.CurrentStepIndex != nil && int(*s.CurrentStepIndex) == i {
			mark = paint.paint(cyan, "▶") + " "
		} else if s.CurrentStepIndex != nil && int(*s.CurrentStepIndex) > i {
			mark = paint.paint(green, "✓") + " "
		}
		fmt.Fprintf(out, "  %s%2d  %s\n", mark, i, stepString(st))
	}
	if s.CurrentStepIndex != nil && int(*s.CurrentStepIndex) >= len(ro.Spec.Steps) {
		fmt.Fprintln(out, "  ▶     promoting")
	}

	if err := describeAnalysis(ctx, c, &ro, paint, out); err != nil {
		return err
	}

	printConditions(out, s.Conditions, now)

	fmt.Fprintln(out, "\nEvents:")
	items := events.Items
	slices.SortFunc(items, func(a, b eventsv1.Event) int { return eventTime(a).Compare(eventTime(b)) })
	if len(items) > 10 {
		items = items[len(items)-10:]
	}
	w = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "  AGE\tTYPE\tREASON\tMESSAGE")
	for _, e := range items {
		fmt.Fprintf(w, "  %s\t%s\t%s\t%s\n", age(now, eventTime(e)), e.Type, e.Reason, e.Note)
	}
	return w.Flush()
}

// printConditions prints conditions as a table, with how long each has held.
func printConditions(out io.Writer, conditions []metav1.Condition, now time.Time) {
	fmt.Fprintln(out, "\nConditions:")
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "  TYPE\tSTATUS\tREASON\tSINCE")
	for _, cnd := range conditions {
		fmt.Fprintf(w, "  %s\t%s\t%s\t%s\n", cnd.Type, cnd.Status, cnd.Reason, age(now, cnd.LastTransitionTime.Time))
	}
	w.Flush()
}

func eventTime(e eventsv1.Event) time.Time {
	if !e.EventTime.IsZero() {
		return e.EventTime.Time
	}
	return e.CreationTimestamp.Time
}

// stepString is a step as one line.
func stepString(st v1alpha1.Step) string {
	switch {
	case st.SetWeight != nil:
		return fmt.Sprintf("setWeight: %d%%", *st.SetWeight)
	case st.Pause != nil && st.Pause.Duration != nil:
		return "pause: " + rollout.PauseText(st.Pause)
	case st.Pause != nil:
		return "pause: until promoted"
	case st.Analysis != nil:
		var names []string
		for _, t := range st.Analysis.Templates {
			names = append(names, t.TemplateName)
		}
		return "analysis: " + strings.Join(names, ", ")
	case st.SetHeaderRoute != nil:
		var m []string
		for _, h := range st.SetHeaderRoute.Match {
			m = append(m, h.HeaderName+"="+orDash(h.HeaderValue.Exact+h.HeaderValue.Prefix+h.HeaderValue.Regex))
		}
		if len(m) == 0 {
			return "setHeaderRoute: remove " + st.SetHeaderRoute.Name
		}
		return fmt.Sprintf("setHeaderRoute: %s (%s)", st.SetHeaderRoute.Name, strings.Join(m, ", "))
	case st.SetMirrorRoute != nil:
		if len(st.SetMirrorRoute.Match) == 0 {
			return "setMirrorRoute: remove " + st.SetMirrorRoute.Name
		}
		return fmt.Sprintf("setMirrorRoute: %s (%d%% of matching requests)", st.SetMirrorRoute.Name, ptr.Deref(st.SetMirrorRoute.Percentage, 100))
	case st.SetCanaryScale != nil:
		sc := st.SetCanaryScale
		switch {
		case sc.Replicas != nil:
			return fmt.Sprintf("setCanaryScale: %d replicas", *sc.Replicas)
		case sc.Weight != nil:
			return fmt.Sprintf("setCanaryScale: %d%% of replicas", *sc.Weight)
		}
		return "setCanaryScale: match traffic weight"
	case st.SetMirrorRoute != nil:
		return fmt.Sprintf("setMirrorRoute: %s (%d%%)", st.SetMirrorRoute.Name, ptr.Deref(st.SetMirrorRoute.Percentage, 100))
	}
	return "?"
}

func age(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return duration.HumanDuration(now.Sub(t))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// describeAnalysis lists the analysis runs of the attempt under way (or the
// last one): each metric's phase, counters, last value and why, live from the
// runs, with since when from the Rollout's explanation. Metrics that failed,
// erred or are inconclusive are then explained with their query.
func describeAnalysis(ctx context.Context, c client.Client, ro *v1alpha1.Rollout, paint palette, out io.Writer) error {
	var runs v1alpha1.AnalysisRunList
	if err := c.List(ctx, &runs, client.InNamespace(ro.Namespace), client.MatchingLabels{v1alpha1.LabelRollout: ro.Name}); err != nil {
		return fmt.Errorf("analysis runs of rollout %s/%s: %w", ro.Namespace, ro.Name, err)
	}
	items := runs.Items
	if started := ro.Status.StartedAt; started != nil {
		items = slices.DeleteFunc(items, func(r v1alpha1.AnalysisRun) bool { return r.CreationTimestamp.Before(started) })
	}
	if len(items) == 0 && len(ro.Status.Analysis) == 0 {
		return nil
	}
	return printAnalysis(out, items, ro.Status.Analysis, paint)
}

// printAnalysis prints each metric of runs live (phase, counters, last value
// and why), with since when from analyses, the controller's explanation;
// metrics that failed, erred or are inconclusive are then explained with
// their query. A run is shown by its analysis label, else by its name.
func printAnalysis(out io.Writer, runs []v1alpha1.AnalysisRun, analyses []v1alpha1.RolloutAnalysis, paint palette) error {
	explained := map[string]v1alpha1.MetricExplanation{}
	for _, a := range analyses {
		for _, m := range a.Metrics {
			explained[a.Run+"/"+m.Name] = m
		}
	}
	fmt.Fprintln(out, "\nAnalysis:")
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "  RUN\tMETRIC\tPHASE\tSINCE\tOK/FAIL/INC/ERR\tLAST VALUE\tMESSAGE")
	for _, run := range runs {
		for _, m := range run.Status.MetricResults {
			last := "-"
			if n := len(m.Measurements); n > 0 {
				last = m.Measurements[n-1].Value
			}
			since := "-"
			if e, ok := explained[run.Name+"/"+m.Name]; ok && e.Since != nil && e.Phase == m.Phase {
				since = e.Since.Format(time.TimeOnly)
			}
			fmt.Fprintf(w, "  %s\t%s\t%s\t%s\t%d/%d/%d/%d\t%s\t%s\n", cmp.Or(run.Labels["tugboat.dev/analysis"], run.Name), m.Name, m.Phase, since,
				m.Successful, m.Failed, m.Inconclusive, m.Error, orDash(last), m.Message)
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	for _, a := range analyses {
		for _, m := range a.Metrics {
			if !m.Phase.Completed() || m.Phase == argo.AnalysisPhaseSuccessful {
				continue
			}
			since := "-"
			if m.Since != nil {
				since = m.Since.Format(time.RFC3339)
			}
			fmt.Fprintf(out, "  %s %s since %s: %s\n", m.Name, paint.phase(string(m.Phase)), since, m.Message)
			fmt.Fprintf(out, "    query: %s\n    value: %s\n", m.Query, orDash(m.Value))
			if m.SuccessCondition != "" {
				fmt.Fprintf(out, "    successCondition: %s\n", m.SuccessCondition)
			}
			if m.FailureCondition != "" {
				fmt.Fprintf(out, "    failureCondition: %s\n", m.FailureCondition)
			}
			if l := m.Limits; l != nil {
				fmt.Fprintf(out, "    failed %d (limit %d), inconclusive %d (limit %d), errors in a row %d (limit %d)\n",
					m.Counters.Failed, l.FailureLimit, m.Counters.Inconclusive, l.InconclusiveLimit, m.Counters.ConsecutiveError, l.ConsecutiveErrorLimit)
			}
		}
	}
	return nil
}
