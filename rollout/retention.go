package rollout

import (
	"cmp"
	"slices"
	"time"
)

// RunRecord is what retention knows of one AnalysisRun of a Rollout.
type RunRecord struct {
	// Name of the run, unique among the Rollout's runs.
	Name string
	// Revision the run analysed; empty for runs made before runs were
	// labelled with it, which are kept together as one revision.
	Revision string
	// Created is when the run was created; it orders runs and revisions.
	Created time.Time
	// Finished is true once the run has a verdict (a terminal phase).
	Finished bool
}

// Retention bounds the finished runs a Rollout keeps.
type Retention struct {
	// PerRevision is how many finished runs of each revision are kept, the
	// newest first (at least 0).
	PerRevision int
	// Revisions is how many revisions keep any finished runs at all, the
	// revisions with the newest runs first; 0 keeps every revision's.
	Revisions int
}

// Prune returns the names of the runs to delete, oldest first: the finished
// runs of each revision past the newest keep.PerRevision, and every finished
// run of the revisions past the newest keep.Revisions. A run still measuring
// or named in protected is never among them, and, being kept, counts toward
// its revision's limit when it is one of the newest. It is a pure function.
func Prune(runs []RunRecord, keep Retention, protected map[string]bool) []string {
	// newer orders runs newest first; the name breaks ties so that the
	// answer does not depend on the order of the list.
	newer := func(a, b RunRecord) int {
		if c := b.Created.Compare(a.Created); c != 0 {
			return c
		}
		return cmp.Compare(b.Name, a.Name)
	}
	byRevision := map[string][]RunRecord{}
	for _, r := range runs {
		byRevision[r.Revision] = append(byRevision[r.Revision], r)
	}
	for _, rs := range byRevision {
		slices.SortFunc(rs, newer)
	}
	revisions := make([]string, 0, len(byRevision))
	for rev := range byRevision {
		revisions = append(revisions, rev)
	}
	// Newest revision first, by its newest run.
	slices.SortFunc(revisions, func(a, b string) int {
		if c := newer(byRevision[a][0], byRevision[b][0]); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})

	var prune []RunRecord
	for i, rev := range revisions {
		limit := max(0, keep.PerRevision)
		if keep.Revisions > 0 && i >= keep.Revisions {
			limit = 0
		}
		finished := 0
		for _, r := range byRevision[rev] {
			if !r.Finished {
				continue
			}
			finished++
			if finished > limit && !protected[r.Name] {
				prune = append(prune, r)
			}
		}
	}
	slices.SortFunc(prune, func(a, b RunRecord) int { return newer(b, a) })
	names := make([]string, len(prune))
	for i, r := range prune {
		names[i] = r.Name
	}
	return names
}
