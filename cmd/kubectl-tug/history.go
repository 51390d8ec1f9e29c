package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/printers"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/rollout"
)

// revision is one promoted revision of a Rollout, as history prints it.
type revision struct {
	Number     int64    `json:"number"`
	Hash       string   `json:"hash"`
	Images     []string `json:"images,omitempty"`
	PromotedAt string   `json:"promotedAt,omitempty"`
	PromotedBy string   `json:"promotedBy,omitempty"`
	Analysis   string   `json:"analysis,omitempty"`
	// Serving: it is status.stableRevision. Pinned: a rollback holds the
	// Rollout on it (status.rollback).
	Serving bool `json:"serving"`
	Pinned  bool `json:"pinned"`
	// Aborted and Requested are status.rollbacks' counts for its hash.
	Aborted   int32 `json:"aborted"`
	Requested int32 `json:"requested"`
}

func newHistoryCmd(o *options) *cobra.Command {
	var out *output
	cmd := &cobra.Command{
		Use:   "history NAME",
		Short: "List a rollout's promoted revisions, newest first",
		Long: `List the revisions a rollout has promoted, newest first: each one's number
(what kubectl tug rollback --to-revision takes), pod template hash, images,
when and how it was promoted, the analysis it passed, and how often it was
rolled back from. The revision serving is marked, and "pinned" when a
rollback holds the rollout on it. -o json and yaml print the same revisions
as a list, newest first.`,
		Example: `  kubectl tug history web
  kubectl tug history web -n prod -o json
  kubectl tug history web -o yaml`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: o.completeRollout,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, key, err := o.key(args[0])
			if err != nil {
				return err
			}
			revs, err := history(cmd.Context(), c, key)
			if err != nil {
				return err
			}
			if out.structured() {
				return out.print(o.streams.Out, revs)
			}
			if len(revs) == 0 {
				fmt.Fprintf(o.streams.ErrOut, "rollout %s has no promoted revisions yet\n", key)
				return nil
			}
			return printHistory(o.streams.Out, revs)
		},
	}
	out = outputFlag(cmd, "json", "yaml")
	return cmd
}

// history reads the Rollout's ControllerRevisions, newest first.
func history(ctx context.Context, c client.Client, key types.NamespacedName) ([]revision, error) {
	var ro v1alpha1.Rollout
	if err := c.Get(ctx, key, &ro); err != nil {
		return nil, fmt.Errorf("rollout %s: %w", key, err)
	}
	var crs appsv1.ControllerRevisionList
	if err := c.List(ctx, &crs, client.InNamespace(key.Namespace), client.MatchingLabels{v1alpha1.LabelRollout: key.Name}); err != nil {
		return nil, fmt.Errorf("rollout %s: list history: %w", key, err)
	}
	revs := []revision{}
	for i := range crs.Items {
		cr := &crs.Items[i]
		if !metav1.IsControlledBy(cr, &ro) {
			continue // a namesake's, or left from a Rollout deleted and made again
		}
		revs = append(revs, describeRevision(cr, &ro.Status))
	}
	slices.SortFunc(revs, func(a, b revision) int { return cmp.Compare(b.Number, a.Number) })
	return revs, nil
}

func describeRevision(cr *appsv1.ControllerRevision, s *v1alpha1.RolloutStatus) revision {
	a := cr.Annotations
	r := revision{
		Number: cr.Revision, Hash: a[v1alpha1.AnnotationRevision],
		PromotedAt: a[v1alpha1.AnnotationPromotedAt], PromotedBy: a[v1alpha1.AnnotationPromotedBy], Analysis: a[v1alpha1.AnnotationAnalysis],
	}
	// Older records say only what their template does.
	var tmpl corev1.PodTemplateSpec
	recorded := json.Unmarshal(cr.Data.Raw, &tmpl) == nil
	if v := a[v1alpha1.AnnotationImages]; v != "" {
		r.Images = strings.Split(v, ",")
	} else if recorded {
		for _, c := range tmpl.Spec.Containers {
			r.Images = append(r.Images, c.Image)
		}
	}
	if r.Hash == "" && recorded {
		r.Hash = rollout.Revision(tmpl)
	}
	r.Serving = r.Hash != "" && r.Hash == s.StableRevision
	r.Pinned = s.Rollback != nil && r.Hash != "" && r.Hash == s.Rollback.Revision
	for _, n := range s.Rollbacks {
		if n.Revision == r.Hash && r.Hash != "" {
			r.Aborted += n.Aborted
			r.Requested += n.Requested
		}
	}
	return r
}

func printHistory(out io.Writer, revs []revision) error {
	w := printers.GetNewTabWriter(out)
	fmt.Fprintln(w, "REVISION\tHASH\tIMAGES\tPROMOTED\tHOW\tANALYSIS\tROLLED BACK")
	for _, r := range revs {
		number := strconv.FormatInt(r.Number, 10)
		switch {
		case r.Serving && r.Pinned:
			number += " (serving, pinned)"
		case r.Serving:
			number += " (serving)"
		case r.Pinned:
			number += " (pinned)"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", number, orDash(r.Hash), orDash(strings.Join(r.Images, ",")),
			orDash(r.PromotedAt), orDash(r.PromotedBy), orDash(r.Analysis), rolledBack(r.Requested, r.Aborted))
	}
	return w.Flush()
}

// rolledBack says how often a revision was rolled back from.
func rolledBack(requested, aborted int32) string {
	var parts []string
	if requested > 0 {
		parts = append(parts, fmt.Sprintf("%d requested", requested))
	}
	if aborted > 0 {
		parts = append(parts, fmt.Sprintf("%d aborted", aborted))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}
