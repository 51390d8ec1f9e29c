package rollout

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// run is a run of revision rev created minute minutes after t0.
func run(name, rev string, minute int, finished bool) RunRecord {
	return RunRecord{Name: name, Revision: rev, Created: t0.Add(time.Duration(minute) * time.Minute), Finished: finished}
}

func TestPrune(t *testing.T) {
	tests := []struct {
		name      string
		runs      []RunRecord
		keep      Retention
		protected []string
		want      []string
	}{{
		name: "no runs",
		keep: Retention{PerRevision: 5},
	}, {
		name: "under the limit nothing goes",
		runs: []RunRecord{run("a1", "a", 1, true), run("a2", "a", 2, true)},
		keep: Retention{PerRevision: 2},
	}, {
		name: "past the limit the oldest go first",
		runs: []RunRecord{run("a3", "a", 3, true), run("a1", "a", 1, true), run("a4", "a", 4, true), run("a2", "a", 2, true)},
		keep: Retention{PerRevision: 2},
		want: []string{"a1", "a2"},
	}, {
		name: "the limit is per revision",
		runs: []RunRecord{
			run("a1", "a", 1, true), run("a2", "a", 2, true), run("a3", "a", 3, true),
			run("b1", "b", 4, true), run("b2", "b", 5, true),
		},
		keep: Retention{PerRevision: 2},
		want: []string{"a1"},
	}, {
		name: "a run still measuring is never deleted and does not count",
		runs: []RunRecord{run("a1", "a", 1, true), run("a2", "a", 2, false), run("a3", "a", 3, true), run("a4", "a", 4, false)},
		keep: Retention{},
		want: []string{"a1", "a3"},
	}, {
		name:      "a protected run is kept past the limit",
		runs:      []RunRecord{run("a1", "a", 1, true), run("a2", "a", 2, true), run("a3", "a", 3, true)},
		keep:      Retention{PerRevision: 1},
		protected: []string{"a1"},
		want:      []string{"a2"},
	}, {
		name:      "a protected run among the newest takes a place",
		runs:      []RunRecord{run("a1", "a", 1, true), run("a2", "a", 2, true), run("a3", "a", 3, true)},
		keep:      Retention{PerRevision: 2},
		protected: []string{"a3"},
		want:      []string{"a1"},
	}, {
		name:      "zero keeps only what is protected or measuring",
		runs:      []RunRecord{run("a1", "a", 1, true), run("a2", "a", 2, false), run("b1", "b", 3, true), run("b2", "b", 4, true)},
		keep:      Retention{PerRevision: 0},
		protected: []string{"b2"},
		want:      []string{"a1", "b1"},
	}, {
		name: "runs made before the revision label are one revision",
		runs: []RunRecord{run("x1", "", 1, true), run("x2", "", 2, true), run("a1", "a", 3, true)},
		keep: Retention{PerRevision: 1},
		want: []string{"x1"},
	}, {
		name: "a tie in creation time is broken by name",
		runs: []RunRecord{run("a-b", "a", 1, true), run("a-a", "a", 1, true), run("a-c", "a", 1, true)},
		keep: Retention{PerRevision: 1},
		want: []string{"a-a", "a-b"},
	}, {
		name: "revisions past the bound lose their finished runs",
		runs: []RunRecord{
			run("a1", "a", 1, true), run("a2", "a", 2, true),
			run("b1", "b", 3, true),
			run("c1", "c", 4, true), run("c2", "c", 5, false),
		},
		keep: Retention{PerRevision: 5, Revisions: 2},
		want: []string{"a1", "a2"},
	}, {
		name: "a revision is as new as its newest run",
		runs: []RunRecord{
			run("a1", "a", 1, true), run("a9", "a", 9, true), // rolled back to and run again
			run("b5", "b", 5, true),
		},
		keep: Retention{PerRevision: 5, Revisions: 1},
		want: []string{"b5"},
	}, {
		name:      "past the revision bound protected and measuring runs stay",
		runs:      []RunRecord{run("a1", "a", 1, true), run("a2", "a", 2, false), run("a3", "a", 3, true), run("b1", "b", 4, true)},
		keep:      Retention{PerRevision: 5, Revisions: 1},
		protected: []string{"a3"},
		want:      []string{"a1"},
	}, {
		name: "a negative limit is read as zero",
		runs: []RunRecord{run("a1", "a", 1, true)},
		keep: Retention{PerRevision: -3},
		want: []string{"a1"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			protected := map[string]bool{}
			for _, n := range tt.protected {
				protected[n] = true
			}
			got := Prune(tt.runs, tt.keep, protected)
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Prune() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// FuzzPrune checks Prune's promises on any list of runs: it never deletes a
// run still measuring or protected, nor one it was not given, nor one twice;
// each revision it keeps runs of keeps at least min(limit, finished) of its
// newest finished runs; and when no revision is past its limit and there
// are no more revisions than the bound, it deletes nothing.
func FuzzPrune(f *testing.F) {
	f.Add([]byte{0x11, 0x22, 0x33, 0x44, 0x55}, uint8(2), uint8(0))
	f.Add([]byte{0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}, uint8(0), uint8(1))
	f.Add([]byte{0xff, 0x81, 0x7e, 0x02, 0x40, 0x99, 0x13, 0x37}, uint8(1), uint8(2))
	f.Add([]byte{}, uint8(5), uint8(10))
	f.Fuzz(func(t *testing.T, data []byte, perRevision, revisions uint8) {
		keep := Retention{PerRevision: int(perRevision % 8), Revisions: int(revisions % 5)}
		if len(data) > 64 {
			data = data[:64]
		}
		// Each byte is one run: its revision (4 of them), whether it is
		// finished, whether it is protected, and when it was created (few
		// distinct times, so that ties happen).
		var runs []RunRecord
		protected := map[string]bool{}
		for i, b := range data {
			r := RunRecord{
				Name:     fmt.Sprintf("run-%02d", i),
				Revision: []string{"", "a", "b", "c"}[b&3],
				Finished: b&4 != 0,
				Created:  t0.Add(time.Duration(b>>4) * time.Minute),
			}
			if b&8 != 0 {
				protected[r.Name] = true
			}
			runs = append(runs, r)
		}
		got := Prune(runs, keep, protected)

		byName := map[string]RunRecord{}
		for _, r := range runs {
			byName[r.Name] = r
		}
		deleted := map[string]bool{}
		for _, n := range got {
			r, ok := byName[n]
			switch {
			case !ok:
				t.Fatalf("deletes %q, which it was not given", n)
			case deleted[n]:
				t.Fatalf("deletes %q twice", n)
			case !r.Finished:
				t.Fatalf("deletes %q, which is still measuring", n)
			case protected[n]:
				t.Fatalf("deletes %q, which is protected", n)
			}
			deleted[n] = true
		}
		for i := 1; i < len(got); i++ {
			a, b := byName[got[i-1]], byName[got[i]]
			if a.Created.After(b.Created) || a.Created.Equal(b.Created) && a.Name > b.Name {
				t.Fatalf("deletes %s (%v) before the older %s (%v)", a.Name, a.Created, b.Name, b.Created)
			}
		}

		finished := map[string][]RunRecord{}
		revs := map[string]bool{}
		for _, r := range runs {
			revs[r.Revision] = true
			if r.Finished {
				finished[r.Revision] = append(finished[r.Revision], r)
			}
		}
		allRevisionsKept := keep.Revisions == 0 || len(revs) <= keep.Revisions
		underLimits := allRevisionsKept
		for rev, rs := range finished {
			underLimits = underLimits && len(rs) <= keep.PerRevision
			// The newest min(limit, finished) finished runs of a revision
			// that keeps any: every run newer than a deleted one is kept,
			// and at least that many are.
			keptAny := false
			for _, r := range rs {
				keptAny = keptAny || (!deleted[r.Name] && !protected[r.Name])
			}
			if !keptAny && !allRevisionsKept {
				continue // a revision past the bound (or one whose kept runs are all protected)
			}
			kept := 0
			for _, r := range rs {
				if !deleted[r.Name] {
					kept++
				}
			}
			if want := min(keep.PerRevision, len(rs)); kept < want {
				t.Fatalf("revision %q keeps %d of %d finished runs; want at least %d", rev, kept, len(rs), want)
			}
			for _, d := range rs {
				if !deleted[d.Name] {
					continue
				}
				newerKept := 0
				for _, r := range rs {
					if !deleted[r.Name] && (r.Created.After(d.Created) || r.Created.Equal(d.Created) && r.Name > d.Name) {
						newerKept++
					}
				}
				if newerKept < keep.PerRevision {
					t.Fatalf("revision %q: deletes %s with only %d newer finished runs kept (limit %d)", rev, d.Name, newerKept, keep.PerRevision)
				}
			}
		}
		if underLimits && len(got) > 0 {
			t.Fatalf("every revision is under its limit, yet deletes %v", got)
		}
	})
}
