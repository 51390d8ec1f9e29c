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
	why := s.closed(now)
	if why == "" {
		return State{}
	}
	return State{Closed: why, Opens: s.nextOpen(now)}
}

// closed says why the windows are closed at t, or "" when open.
func (s Schedule) closed(t time.Time) string {
	for _, w := range s.deny {
		if _, end, in := w.covering(t, s.loc); in {
			return fmt.Sprintf("inside deny window %s until %s", w.field, end.UTC().Format(time.RFC3339))
		}
	}
	if len(s.allow) == 0 {
		return ""
	}
	for _, w := range s.allow {
		if _, _, in := w.covering(t, s.loc); in {
			return ""
		}
	}
	return "outside every allow window"
}

// maxChain bounds how many back-to-back firings are followed to find where
// a window really ends.
const maxChain = 10000

// covering reports whether w is open at t, with the firing that opened it
// and when it closes. It is open when it fired in (t-duration, t]; firings
// that come before it closes keep it open.
func (w window) covering(t time.Time, loc *time.Location) (start, end time.Time, in bool) {
	f := w.schedule.Next(t.In(loc).Add(-w.duration))
	if f.IsZero() || f.After(t) {
		return time.Time{}, time.Time{}, false
	}
	end = f.Add(w.duration)
	for i, next := 0, w.schedule.Next(f); i < maxChain && !next.IsZero() && !next.After(end); i, next = i+1, w.schedule.Next(next) {
		end = next.Add(w.duration)
	}
	return f, end, true
}

// nextOpen is the first moment after t at which the windows are open,
// stepping from each deny window's end to the next allow window's start.
func (s Schedule) nextOpen(t time.Time) time.Time {
	horizon := t.AddDate(1, 0, 0)
	for range maxChain {
		if t.After(horizon) {
			break
		}
		moved := false
		for _, w := range s.deny {
			if _, end, in := w.covering(t, s.loc); in {
				t, moved = end, true
			}
		}
		if moved {
			continue
		}
		if s.closed(t) == "" {
			return t
		}
		// Outside every allow window: the earliest next opening.
		var next time.Time
		for _, w := range s.allow {
			if f := w.schedule.Next(t.In(s.loc)); !f.IsZero() && (next.IsZero() || f.Before(next)) {
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
