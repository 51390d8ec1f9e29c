// Package windows decides when a rollout may advance: inside an allow window
// (when there are any) and outside every deny window. A window opens each
// time its cron schedule fires and stays open for its duration. It is pure:
// the time is always given.
package windows

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

// Schedule is a Rollout's parsed windows. The zero Schedule is always open.
type Schedule struct {
	loc         *time.Location
	allow, deny []window
}

type window struct {
	field    string // spec.windows.allow[0], for messages
	schedule cron.Schedule
	duration time.Duration
}

var parser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Parse reads a Rollout's windows; errors name the field at fault.
func Parse(w *v1alpha1.Windows) (Schedule, error) {
	if w == nil {
		return Schedule{}, nil
	}
	s := Schedule{loc: time.UTC}
	var errs []error
	if w.Timezone != "" {
		loc, err := time.LoadLocation(w.Timezone)
		if err != nil {
			errs = append(errs, fmt.Errorf("spec.windows.timezone: unknown time zone %q", w.Timezone))
		}
		s.loc = loc
	}
	parse := func(kind string, in []v1alpha1.Window) []window {
		var out []window
		for i, x := range in {
			field := fmt.Sprintf("spec.windows.%s[%d]", kind, i)
			if strings.HasPrefix(x.Schedule, "@every") {
				errs = append(errs, fmt.Errorf("%s.schedule: %q has no fixed times; use a cron expression such as \"0 9 * * 1-5\"", field, x.Schedule))
				continue
			}
			sched, err := parser.Parse(x.Schedule)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s.schedule: %q: %w", field, x.Schedule, err))
				continue
			}
			d, err := time.ParseDuration(x.Duration)
			if err != nil || d <= 0 {
				errs = append(errs, fmt.Errorf("%s.duration: %q is not a positive duration such as 7h", field, x.Duration))
				continue
			}
			out = append(out, window{field: field, schedule: sched, duration: d})
		}
		return out
	}
	s.allow, s.deny = parse("allow", w.Allow), parse("deny", w.Deny)
	return s, errors.Join(errs...)
}

// State is what the windows say at a moment.
type State struct {
	// Closed explains why a rollout may not advance; empty when it may.
	Closed string
	// Opens is when it next may, when Closed; zero if not found within a year.
	Opens time.Time
}

// At is the state of the windows at now.
func (s Schedule) At(now time.Time) State {
	q := &search{Schedule: s, left: budget, ends: map[chain]end{}}
	why := q.closed(now)
	if why == "" {
		return State{}
	}
	return State{Closed: why, Opens: q.nextOpen(now)}
}

// budget bounds the cron evaluations one At makes (each takes about a
// microsecond). Schedules that fire often and stay open long chain into
// windows that are expensive to follow to their end; past the budget, the
// end is unknown and no opening is given.
const budget = 20000

// horizon is how far ahead windows are followed.
const horizon = 366 * 24 * time.Hour

// search evaluates one Schedule at one moment within the budget.
type search struct {
	Schedule
	left int
	// spent is set once an evaluation was refused: from then on a zero
	// firing may be the budget's, not the schedule's.
	spent bool
	ends  map[chain]end // chains already followed
}

// chain is a window opened by a firing.
type chain struct {
	field string
	at    time.Time
}

// end is where a chain closes, if found.
type end struct {
	at    time.Time
	found found
}

type found int

const (
	closes found = iota
	pastHorizon
	pastBudget
)

// next is the first firing of w after t; zero when there is none within
// five years (robfig/cron's limit) or the budget is spent.
func (q *search) next(w window, t time.Time) time.Time {
	if q.left <= 0 {
		q.spent = true
		return time.Time{}
	}
	q.left--
	return w.schedule.Next(t.In(q.loc))
}

// closed says why the windows are closed at t, or "" when open.
func (q *search) closed(t time.Time) string {
	for _, w := range q.deny {
		if f, in := q.opened(w, t); in {
			switch e := q.closes(w, f, t.Add(horizon)); e.found {
			case closes:
				return fmt.Sprintf("inside deny window %s until %s", w.field, e.at.UTC().Format(time.RFC3339))
			case pastHorizon:
				return fmt.Sprintf("inside deny window %s, which does not close within a year", w.field)
			default:
				return fmt.Sprintf("inside deny window %s, whose schedule fires too often to find when it closes", w.field)
			}
		}
	}
	if len(q.allow) == 0 {
		return ""
	}
	for _, w := range q.allow {
		if _, in := q.opened(w, t); in {
			return ""
		}
	}
	return "outside every allow window"
}

// opened reports whether w is open at t, with a firing that opened it: it
// is open when it fired in (t-duration, t].
func (q *search) opened(w window, t time.Time) (time.Time, bool) {
	f := q.next(w, t.Add(-w.duration))
	return f, !f.IsZero() && !f.After(t)
}

// closes is when w, opened by the firing f, closes: a firing before it
// closes keeps it open for another duration. Each chain is followed once
// per search.
func (q *search) closes(w window, f, limit time.Time) end {
	key := chain{w.field, f}
	if e, ok := q.ends[key]; ok {
		return e
	}
	e := q.follow(w, f, limit)
	q.ends[key] = e
	return e
}

func (q *search) follow(w window, f, limit time.Time) end {
	at := f.Add(w.duration)
	for !at.After(limit) {
		first := q.next(w, f)
		if q.spent {
			return end{at, pastBudget}
		}
		if first.IsZero() || first.After(at) {
			return end{at, closes}
		}
		// Jump to a firing near the end rather than walk every one: the
		// first after end-δ, for δ doubling from cron's minute.
		f = first
		for d := time.Minute; at.Add(-d).After(first); d *= 2 {
			if g := q.next(w, at.Add(-d)); !g.IsZero() && !g.After(at) {
				f = g
				break
			}
		}
		if q.spent {
			return end{at, pastBudget}
		}
		at = f.Add(w.duration)
	}
	return end{at, pastHorizon}
}

// nextOpen is the first moment after t at which the windows are open,
// stepping from each deny window's end to the next allow window's start;
// zero when none is found within the horizon and the budget.
func (q *search) nextOpen(t time.Time) time.Time {
	limit := t.Add(horizon)
	for !t.After(limit) && !q.spent {
		moved := false
		for _, w := range q.deny {
			if f, in := q.opened(w, t); in {
				e := q.closes(w, f, limit)
				if e.found != closes {
					return time.Time{}
				}
				t, moved = e.at, true
			}
		}
		if moved {
			continue
		}
		// A firing refused by the budget reads as none: no answer then.
		if q.closed(t) == "" && !q.spent {
			return t
		}
		// Outside every allow window: the earliest next opening.
		var next time.Time
		for _, w := range q.allow {
			if f := q.next(w, t); !f.IsZero() && (next.IsZero() || f.Before(next)) {
				next = f
			}
		}
		if next.IsZero() {
			break
		}
		t = next
	}
	return time.Time{}
}
