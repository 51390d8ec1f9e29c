package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/cli-runtime/pkg/printers"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

func newPreviewGetCmd(o *options) *cobra.Command {
	var out *output
	cmd := &cobra.Command{
		Use:   "get NAME",
		Short: "Show a preview: its phase, source, mirror and analysis",
		Long: `Show a preview for people: its phase and why, the route copied from and
the mirror policy rule that allows it, what is copied (percentage, methods,
matches) and which request headers the copies lose, when it expires, since
when copies flow, and its analysis, metric by metric, with why a metric
failed. -o wide prints it as a row of kubectl tug preview list -o wide; -o
json, yaml or name print the Preview object itself, as kubectl get does.`,
		Example: `  kubectl tug preview get pr-42 -n pr-42
  kubectl tug preview get pr-42 -n pr-42 -o wide
  kubectl tug preview get pr-42 -n pr-42 -o json | jq -r .status.phase`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: o.completePreview,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, key, err := o.key(args[0])
			if err != nil {
				return err
			}
			p, err := getPreview(cmd.Context(), c, key)
			switch {
			case err != nil:
				return err
			case out.structured():
				return out.print(o.streams.Out, p)
			case out.wide():
				return printPreviews(o.streams.Out, []v1alpha1.Preview{*p}, time.Now(), printers.PrintOptions{Wide: true})
			}
			run, err := previewRun(cmd.Context(), c, p)
			if err != nil {
				return err
			}
			return describePreview(o.streams.Out, p, run, time.Now(), o.palette())
		},
	}
	out = outputFlag(cmd, "json", "yaml", "name", "wide")
	return cmd
}

// previewRun is the AnalysisRun that status names, live, or nil when there
// is none (yet, or any more).
func previewRun(ctx context.Context, c client.Client, p *v1alpha1.Preview) (*v1alpha1.AnalysisRun, error) {
	if p.Status.Analysis == nil || p.Status.Analysis.Run == "" {
		return nil, nil
	}
	var run v1alpha1.AnalysisRun
	key := types.NamespacedName{Namespace: p.Namespace, Name: p.Status.Analysis.Run}
	switch err := c.Get(ctx, key, &run); {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("analysis run of preview %s/%s: %w", p.Namespace, p.Name, err)
	}
	return &run, nil
}

// describePreview writes a Preview's state for people; run is its live
// AnalysisRun, if there is one.
func describePreview(out io.Writer, p *v1alpha1.Preview, run *v1alpha1.AnalysisRun, now time.Time, paint palette) error {
	s, spec := p.Status, p.Spec
	phase := paint.phase(orDash(s.Phase))
	if !previewCurrent(p) {
		phase += fmt.Sprintf(" (of generation %d: the controller has not yet seen generation %d)", s.ObservedGeneration, p.Generation)
	}
	methods := strings.Join(spec.Methods, ", ")
	if spec.AllowUnsafeMethods {
		methods += " (unsafe methods allowed)"
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "Name:\t%s\n", p.Name)
	fmt.Fprintf(w, "Namespace:\t%s\n", p.Namespace)
	fmt.Fprintf(w, "Phase:\t%s\n", phase)
	fmt.Fprintf(w, "Message:\t%s\n", orDash(s.Message))
	fmt.Fprintf(w, "Source:\t%s\n", previewSource(p))
	if s.SourceWorkload != "" {
		fmt.Fprintf(w, "Source workload:\t%s\n", s.SourceWorkload)
	}
	fmt.Fprintf(w, "Rule:\t%s\n", orDash(s.Rule))
	fmt.Fprintf(w, "Service:\t%s:%d\n", spec.Service.Name, spec.Service.Port)
	fmt.Fprintf(w, "Percentage:\t%d%% of matching requests\n", spec.Percentage)
	fmt.Fprintf(w, "Methods:\t%s\n", orDash(methods))
	fmt.Fprintf(w, "Match:\t%s\n", matchText(spec.Match))
	fmt.Fprintf(w, "Removed headers:\t%s\n", orDash(strings.Join(s.RemovedHeaders, ", ")))
	if spec.TTL != nil {
		fmt.Fprintf(w, "TTL:\t%s\n", spec.TTL.Duration)
	}
	fmt.Fprintf(w, "Expires:\t%s\n", when(now, s.ExpiresAt))
	fmt.Fprintf(w, "Mirroring since:\t%s\n", when(now, s.MirroringSince))
	fmt.Fprintf(w, "Templates:\t%s\n", templatesText(spec.Analysis))
	if err := w.Flush(); err != nil {
		return err
	}
	if err := printPreviewAnalysis(out, p, run, paint); err != nil {
		return err
	}
	printConditions(out, s.Conditions, now)
	return nil
}

// printPreviewAnalysis prints the preview's analysis as get prints a
// Rollout's: run's metrics live, or, without run, as status last explained
// them; then why any failed.
func printPreviewAnalysis(out io.Writer, p *v1alpha1.Preview, run *v1alpha1.AnalysisRun, paint palette) error {
	a := p.Status.Analysis
	if a == nil {
		return nil
	}
	if run == nil || run.Name != a.Run {
		run = explainedRun(a)
	}
	return printAnalysis(out, []v1alpha1.AnalysisRun{*run}, []v1alpha1.RolloutAnalysis{*a}, paint)
}

// explainedRun is the AnalysisRun as status explains it, for when the run
// itself cannot be read.
func explainedRun(a *v1alpha1.RolloutAnalysis) *v1alpha1.AnalysisRun {
	run := &v1alpha1.AnalysisRun{ObjectMeta: metav1.ObjectMeta{Name: a.Run}}
	run.Status.Phase = a.Phase
	for _, m := range a.Metrics {
		r := argo.MetricResult{Name: m.Name, Phase: m.Phase, Message: m.Message,
			Successful: m.Counters.Successful, Failed: m.Counters.Failed, Inconclusive: m.Counters.Inconclusive, Error: m.Counters.Error}
		if m.Value != "" {
			r.Measurements = []argo.Measurement{{Value: m.Value}}
		}
		run.Status.MetricResults = append(run.Status.MetricResults, r)
	}
	return run
}

// matchText is a preview's match conditions on one line.
func matchText(match []v1alpha1.PreviewMatch) string {
	if len(match) == 0 {
		return "every request of those methods"
	}
	var alts []string
	for _, m := range match {
		var all []string
		if m.Path != nil {
			all = append(all, "path "+stringMatchText(*m.Path))
		}
		for _, h := range m.Headers {
			all = append(all, "header "+h.HeaderName+" "+stringMatchText(h.HeaderValue))
		}
		alts = append(alts, strings.Join(all, " and "))
	}
	return strings.Join(alts, "; or ")
}

func stringMatchText(m v1alpha1.StringMatch) string {
	switch {
	case m.Prefix != "":
		return "starts with " + m.Prefix
	case m.Regex != "":
		return "matches " + m.Regex
	}
	return "is " + m.Exact
}

// templatesText names the analysis templates, ClusterAnalysisTemplates
// marked, with their arguments.
func templatesText(a *v1alpha1.Analysis) string {
	if a == nil {
		return "none: no verdict, copies until the ttl"
	}
	var names, args []string
	for _, t := range a.Templates {
		name := t.TemplateName
		if t.ClusterScope != nil && *t.ClusterScope {
			name += " (cluster)"
		}
		names = append(names, name)
	}
	for _, arg := range a.Args {
		v := arg.Value
		if arg.ValueFrom != nil {
			v = "from " + valueFromText(arg.ValueFrom)
		}
		args = append(args, arg.Name+"="+v)
	}
	if len(args) == 0 {
		return strings.Join(names, ", ")
	}
	return strings.Join(names, ", ") + "; args " + strings.Join(args, ", ")
}

func valueFromText(v *argo.ArgumentValueFrom) string {
	switch {
	case v.FieldRef != nil:
		return v.FieldRef.FieldPath
	case v.PodTemplateHashValue != nil:
		return "pod template hash " + string(*v.PodTemplateHashValue)
	}
	return "?"
}

// when is t with how long ago, or how long from now, it is.
func when(now time.Time, t *metav1.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339) + " (" + relative(now, t.Time) + ")"
}

// relative is "in 23h" or "5m ago".
func relative(now, t time.Time) string {
	if t.After(now) {
		return "in " + duration.HumanDuration(t.Sub(now))
	}
	return duration.HumanDuration(now.Sub(t)) + " ago"
}
