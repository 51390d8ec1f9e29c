package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"

	"github.com/tugboatdev/tugboat/analysis"
	"github.com/tugboatdev/tugboat/analysis/prometheus"
)

// replayed is a replay as printed: the run's phase, the stretch replayed,
// and each metric's query and measurements.
type replayed struct {
	Phase   argo.AnalysisPhase `json:"phase"`
	From    time.Time          `json:"from"`
	To      time.Time          `json:"to"`
	Metrics []replayedMetric   `json:"metrics"`
}

type replayedMetric struct {
	analysis.MetricReplay
	Query string `json:"query"`
}

// replay measures spec over past data, from a run started at from until to,
// and prints what it would have measured and decided.
func replay(ctx context.Context, out io.Writer, t template, p *prometheus.Provider, namespace,
	from, to string, now time.Time, o *output) error {
	start, end, err := stretch("--replay-from", from, "--replay-to", to, now)
	if err != nil {
		return err
	}
	shown := map[string]string{}
	for _, m := range t.spec.Metrics {
		shown[m.Name] = t.shown(m)
	}
	phase, metrics, err := p.Replay(ctx, namespace, t.spec, analysis.Args{Values: t.values, Secret: t.secret}, start, end)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err // interrupted: what was measured says nothing
	}
	r := replayed{Phase: phase, From: start, To: end}
	for _, m := range metrics {
		r.Metrics = append(r.Metrics, replayedMetric{MetricReplay: m, Query: shown[m.Metric]})
	}
	if err := printReplay(out, r, o); err != nil {
		return err
	}
	switch phase {
	case argo.AnalysisPhaseSuccessful:
		return nil
	case argo.AnalysisPhaseRunning:
		return &exitError{code: 2, err: fmt.Errorf("the run had not decided by %s", end.Format(time.RFC3339))}
	}
	return &exitError{code: 1, err: fmt.Errorf("the run is %s", phase)}
}

// moment reads a time: RFC 3339, or a duration before now.
func moment(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	d, err := time.ParseDuration(strings.TrimPrefix(s, "-"))
	if err != nil || d <= 0 {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor a duration ago such as 2h", s)
	}
	return now.Add(-d).Truncate(time.Second), nil
}

func printReplay(out io.Writer, r replayed, o *output) error {
	if o.structured() {
		return o.print(out, r)
	}
	fmt.Fprintf(out, "replayed from %s to %s: %s\n", r.From.UTC().Format(time.RFC3339), r.To.UTC().Format(time.RFC3339), r.Phase)
	for _, m := range r.Metrics {
		dry := ""
		if m.DryRun {
			dry = " (dry run)"
		}
		fmt.Fprintf(out, "\nmetric %s%s: %s after %d measurements\n  query: %s\n", m.Metric, dry, m.Phase, len(m.Measurements), strings.Join(strings.Fields(m.Query), " "))
		w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "  AT\tVALUE\tMEASURED\tMETRIC\tWHY")
		for _, x := range m.Measurements {
			fmt.Fprintf(w, "  %s\t%s\t%s\t%s\t%s\n", x.At.UTC().Format(time.RFC3339), orDash(x.Value), x.Phase, x.Metric, orDash(x.Message))
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
	return nil
}

// stretch is the past stretch two flags name (to empty is now): each an
// RFC 3339 time or a duration ago, from before to.
func stretch(fromFlag, from, toFlag, to string, now time.Time) (start, end time.Time, err error) {
	now = now.UTC().Truncate(time.Second)
	if start, err = moment(from, now); err != nil {
		return start, end, fmt.Errorf("%s: %w", fromFlag, err)
	}
	end = now
	if to != "" {
		if end, err = moment(to, now); err != nil {
			return start, end, fmt.Errorf("%s: %w", toFlag, err)
		}
	}
	if !start.Before(end) || end.After(now) {
		return start, end, fmt.Errorf("%s %s to %s %s: want a stretch of the past, %s before %s",
			fromFlag, start.Format(time.RFC3339), toFlag, end.Format(time.RFC3339), fromFlag, toFlag)
	}
	return start, end, nil
}
