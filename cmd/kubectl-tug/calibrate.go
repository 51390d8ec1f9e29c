package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	"github.com/spf13/cobra"

	"github.com/tugboatdev/tugboat/analysis"
)

// maxCalibrated bounds the runs one calibration replays.
const maxCalibrated = 1000

// calibration is what calibrate prints: each replayed run's phase, the
// counts by phase, and the share of runs that failed.
type calibration struct {
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	Window string    `json:"window"`
	Runs   int       `json:"runs"`
	// Phases counts the runs by phase.
	Phases map[argo.AnalysisPhase]int `json:"phases"`
	// FalseAlarmRate is Failed runs / runs: over stable-versus-stable
	// history, every failure is a false alarm.
	FalseAlarmRate float64         `json:"falseAlarmRate"`
	Windows        []calibratedRun `json:"windows"`
	// Warnings say why the rate may mean little.
	Warnings []string `json:"warnings,omitempty"`
}

type calibratedRun struct {
	From  time.Time          `json:"from"`
	Phase argo.AnalysisPhase `json:"phase"`
	// Failed names the metrics that failed the run.
	Failed []string `json:"failed,omitempty"`
}

func newCalibrateCmd(o *options) *cobra.Command {
	var (
		file             string
		out              *output
		args             []string
		secrets          bool
		prom             prometheusFlags
		from, to, window string
	)
	cmd := &cobra.Command{
		Use:   "calibrate -f TEMPLATE --from TIME [--to TIME] [--arg NAME=VALUE]...",
		Short: "Replay a template over stable-versus-stable history and report its false-alarm rate",
		Long: `Replay an analysis template over past data in consecutive windows, each
as a run started at the window's start would have measured it (the
replay of 'analysis run --replay-from'), and report how many runs ended in
each phase and the empirical false-alarm rate: Failed runs / runs.

Point the template at two workloads that behave alike (two stable ones,
or the stable one twice, split some other way) with --arg: for a judge
template, --arg canary=web-primary-b --arg stable=web-primary, so that
every Failed run is a false alarm. When the canary and the baseline render
to the same query, the two sides are the same samples and every run
passes: calibrate warns.

A window lasts the template's longest run (the longest metric's initialDelay
plus count × interval, and the extension it may take while Inconclusive)
unless --window says otherwise; a metric without a count
needs --window. At most 1,000 windows. Exits 0 when every window was
replayed (whatever the rate), and 4 when the template could not be
replayed. -o json or yaml prints the calibration.`,
		Example: `  kubectl tug analysis calibrate -f gate.yaml --prometheus http://localhost:9090 \
    --arg canary=web-primary-b --arg stable=web-primary --from 24h
  kubectl tug analysis calibrate -f gate.yaml --prometheus http://localhost:9090 \
    --arg canary=web-primary-b --arg stable=web-primary --from 2026-01-02T00:00:00Z --to 2026-01-03T00:00:00Z -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := o.loadTemplate(file, args)
			if err != nil {
				return err
			}
			start, end, err := stretch("--from", from, "--to", to, time.Now())
			if err != nil {
				return err
			}
			length, err := runLength(t, window)
			if err != nil {
				return err
			}
			n := int64(end.Sub(start) / length)
			if n < 1 {
				return fmt.Errorf("--from %s to --to %s is shorter than one run of %s", start.Format(time.RFC3339), end.Format(time.RFC3339), length)
			}
			if n > maxCalibrated {
				return fmt.Errorf("--from to --to holds %d runs of %s, more than %d; calibrate a shorter stretch or set a longer --window", n, length, maxCalibrated)
			}
			p, namespace, err := prom.provider(o, secrets)
			if err != nil {
				return err
			}
			c := calibration{From: start, To: start.Add(time.Duration(n) * length), Window: length.String(), Phases: map[argo.AnalysisPhase]int{}, Windows: []calibratedRun{}}
			c.Warnings = sameSides(t)
			a := analysis.Args{Values: t.values, Secret: t.secret}
			for at := start; !at.Add(length).After(c.To); at = at.Add(length) {
				phase, metrics, err := p.Replay(cmd.Context(), namespace, t.spec, a, at, at.Add(length))
				if err != nil {
					return err
				}
				if err := cmd.Context().Err(); err != nil {
					return err
				}
				r := calibratedRun{From: at, Phase: phase}
				for _, m := range metrics {
					if m.Phase == argo.AnalysisPhaseFailed && !m.DryRun {
						r.Failed = append(r.Failed, m.Metric)
					}
				}
				c.Windows = append(c.Windows, r)
				c.Phases[phase]++
				c.Runs++
			}
			c.FalseAlarmRate = float64(c.Phases[argo.AnalysisPhaseFailed]) / float64(c.Runs)
			return printCalibration(o.streams.Out, c, out)
		},
	}
	cmd.Flags().StringVarP(&file, "filename", "f", "", "the template's YAML file (- for stdin)")
	cmd.Flags().StringArrayVar(&args, "arg", nil, "an argument, NAME=VALUE (repeatable)")
	prom.register(cmd)
	cmd.Flags().StringVar(&from, "from", "", "start of the history (RFC 3339, or a duration ago such as 24h)")
	cmd.Flags().StringVar(&to, "to", "", "end of the history (RFC 3339, or a duration ago; default now)")
	cmd.Flags().StringVar(&window, "window", "", "each run's length (default: the template's longest run, the longest metric's initialDelay + (count + extendWhileInconclusive) × interval)")
	cmd.Flags().BoolVar(&secrets, "secrets", false, "read the Secrets metrics name for authentication and tls from the namespace, with your kubeconfig")
	out = outputFlag(cmd, "json", "yaml")
	_ = cmd.MarkFlagRequired("filename")
	_ = cmd.MarkFlagRequired("from")
	return cmd
}

// runLength is how long each calibrated run lasts: --window, else the
// longest metric's initialDelay + (count + extendWhileInconclusive) ×
// interval, the longest it can measure.
func runLength(t template, window string) (time.Duration, error) {
	if window != "" {
		d, err := time.ParseDuration(window)
		if err != nil || d < time.Second || d > 24*time.Hour {
			return 0, fmt.Errorf("--window %q: want a duration from 1s to 24h", window)
		}
		return d, nil
	}
	var longest time.Duration
	for _, m := range t.spec.Metrics {
		limits, err := analysis.LimitsOf(m, t.values)
		if err != nil {
			return 0, fmt.Errorf("metric %s: %w", m.Name, err)
		}
		delay, err := durationOf(m.InitialDelay)
		if err != nil {
			return 0, fmt.Errorf("metric %s: initialDelay: %w", m.Name, err)
		}
		interval, err := durationOf(m.Interval)
		if err != nil {
			return 0, fmt.Errorf("metric %s: interval: %w", m.Name, err)
		}
		if limits.Count <= 0 || interval <= 0 {
			return 0, fmt.Errorf("metric %s has no count and interval, so its run has no end: set --window", m.Name)
		}
		longest = max(longest, delay+time.Duration(limits.Count+limits.Extend)*interval)
	}
	return longest, nil
}

func durationOf(d argo.DurationString) (time.Duration, error) {
	if d == "" {
		return 0, nil
	}
	return d.Duration()
}

// sameSides warns of judge metrics whose canary and baseline render to the
// same query: their samples are the same, and such a run always passes.
func sameSides(t template) []string {
	var out []string
	for _, m := range t.spec.Metrics {
		if m.Provider.Judge == nil {
			continue
		}
		req, err := (analysis.Args{Values: t.values, Secret: t.secret}).RenderJudge(*m.Provider.Judge)
		if err == nil && req.Canary == req.Baseline {
			out = append(out, fmt.Sprintf("metric %s: the canary and the baseline are the same query, so its samples are the same and it always passes; point --arg at two stable workloads", m.Name))
		}
	}
	return out
}

func printCalibration(out io.Writer, c calibration, o *output) error {
	if o.structured() {
		return o.print(out, c)
	}
	for _, w := range c.Warnings {
		fmt.Fprintf(out, "warning: %s\n", w)
	}
	fmt.Fprintf(out, "calibrated from %s to %s: %d runs of %s\n", c.From.UTC().Format(time.RFC3339), c.To.UTC().Format(time.RFC3339), c.Runs, c.Window)
	fmt.Fprintf(out, "false-alarm rate: %.2f%% (%d Failed of %d runs)\n", 100*c.FalseAlarmRate, c.Phases[argo.AnalysisPhaseFailed], c.Runs)
	fmt.Fprintf(out, "Successful %d, Inconclusive %d, Error %d, Running %d\n\n", c.Phases[argo.AnalysisPhaseSuccessful],
		c.Phases[argo.AnalysisPhaseInconclusive], c.Phases[argo.AnalysisPhaseError], c.Phases[argo.AnalysisPhaseRunning])
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "FROM\tPHASE\tFAILED")
	for _, r := range c.Windows {
		fmt.Fprintf(w, "%s\t%s\t%s\n", r.From.UTC().Format(time.RFC3339), r.Phase, orDash(strings.Join(r.Failed, ", ")))
	}
	return w.Flush()
}
