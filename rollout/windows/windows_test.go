package windows

import (
	"strings"
	"testing"
	"time"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

func TestAt(t *testing.T) {
	// Tuesday 24 November 2026.
	at := func(hhmm string) time.Time {
		tm, err := time.Parse("2006-01-02 15:04", "2026-11-24 "+hhmm)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	workHours := v1alpha1.Window{Schedule: "0 9 * * 1-4", Duration: "7h"} // Monday to Thursday, 09:00-16:00
	freeze := v1alpha1.Window{Schedule: "0 12 24 11 *", Duration: "2h"}   // 24 November, 12:00-14:00
	for _, tt := range []struct {
		name      string
		w         *v1alpha1.Windows
		now       time.Time
		closed    string
		opens     time.Time
		opensZero bool
	}{
		{name: "no windows: always open", now: at("03:00")},
		{name: "inside an allow window", w: &v1alpha1.Windows{Allow: []v1alpha1.Window{workHours}}, now: at("10:00")},
		{name: "at the moment it opens", w: &v1alpha1.Windows{Allow: []v1alpha1.Window{workHours}}, now: at("09:00")},
		{name: "at the moment it closes", w: &v1alpha1.Windows{Allow: []v1alpha1.Window{workHours}}, now: at("16:00"),
			closed: "outside every allow window", opens: at("09:00").AddDate(0, 0, 1)},
		{name: "before it opens", w: &v1alpha1.Windows{Allow: []v1alpha1.Window{workHours}}, now: at("08:59"),
			closed: "outside every allow window", opens: at("09:00")},
		{name: "Thursday evening: opens on Monday", w: &v1alpha1.Windows{Allow: []v1alpha1.Window{workHours}}, now: at("17:00").AddDate(0, 0, 2),
			closed: "outside every allow window", opens: at("09:00").AddDate(0, 0, 6)},
		{name: "inside a deny window", w: &v1alpha1.Windows{Deny: []v1alpha1.Window{freeze}}, now: at("12:30"),
			closed: "inside deny window spec.windows.deny[0] until 2026-11-24T14:00:00Z", opens: at("14:00")},
		{name: "a deny window inside an allow window", w: &v1alpha1.Windows{Allow: []v1alpha1.Window{workHours}, Deny: []v1alpha1.Window{freeze}}, now: at("13:00"),
			closed: "inside deny window", opens: at("14:00")},
		{name: "a deny window reaching past the allow window: opens with the next one", w: &v1alpha1.Windows{Allow: []v1alpha1.Window{workHours},
			Deny: []v1alpha1.Window{{Schedule: "0 15 24 11 *", Duration: "20h"}}}, now: at("15:30"),
			closed: "inside deny window", opens: at("11:00").AddDate(0, 0, 1)},
		{name: "schedules read in the time zone", w: &v1alpha1.Windows{Timezone: "Europe/Berlin", Allow: []v1alpha1.Window{workHours}}, now: at("08:30"),
			opens: time.Time{}}, // 09:30 in Berlin: open
		{name: "in the time zone, before it opens", w: &v1alpha1.Windows{Timezone: "Europe/Berlin", Allow: []v1alpha1.Window{workHours}}, now: at("07:30"),
			closed: "outside every allow window", opens: at("08:00")},
		{name: "a window that never opens", w: &v1alpha1.Windows{Allow: []v1alpha1.Window{{Schedule: "0 0 30 2 *", Duration: "1h"}}}, now: at("10:00"),
			closed: "outside every allow window", opensZero: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse(tt.w)
			if err != nil {
				t.Fatal(err)
			}
			got := s.At(tt.now)
			if tt.closed == "" {
				if got.Closed != "" {
					t.Errorf("closed: %s", got.Closed)
				}
				return
			}
			if !strings.Contains(got.Closed, tt.closed) {
				t.Errorf("closed %q, want %q", got.Closed, tt.closed)
			}
			if tt.opensZero != got.Opens.IsZero() || (!tt.opensZero && !got.Opens.Equal(tt.opens)) {
				t.Errorf("opens %v, want %v", got.Opens, tt.opens)
			}
		})
	}
}

func TestParseErrorsNameTheField(t *testing.T) {
	for _, tt := range []struct {
		w    v1alpha1.Windows
		want string
	}{
		{v1alpha1.Windows{Timezone: "Mars/Olympus"}, `spec.windows.timezone: unknown time zone "Mars/Olympus"`},
		{v1alpha1.Windows{Allow: []v1alpha1.Window{{Schedule: "61 9 * * *", Duration: "1h"}}}, "spec.windows.allow[0].schedule"},
		{v1alpha1.Windows{Deny: []v1alpha1.Window{{Schedule: "0 9 * * *", Duration: "1h"}, {Schedule: "@every 1h", Duration: "1h"}}}, "spec.windows.deny[1].schedule: \"@every 1h\" has no fixed times"},
		{v1alpha1.Windows{Allow: []v1alpha1.Window{{Schedule: "@daily", Duration: "0s"}}}, "spec.windows.allow[0].duration"},
	} {
		if _, err := Parse(&tt.w); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Parse(%+v) = %v, want an error containing %q", tt.w, err, tt.want)
		}
	}
}

func TestBackToBackFiringsAreOneWindow(t *testing.T) {
	now := time.Date(2026, 11, 24, 10, 30, 0, 0, time.UTC)
	// Every hour on 24 November, two hours each: one window until 01:00 on the 25th.
	s, err := Parse(&v1alpha1.Windows{Deny: []v1alpha1.Window{{Schedule: "0 * 24 11 *", Duration: "2h"}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.At(now); !strings.Contains(got.Closed, "until 2026-11-25T01:00:00Z") || !got.Opens.Equal(time.Date(2026, 11, 25, 1, 0, 0, 0, time.UTC)) {
		t.Errorf("%+v", got)
	}
	// Every 15 minutes from 20 to 31 December: opens on 1 January.
	s, err = Parse(&v1alpha1.Windows{Deny: []v1alpha1.Window{{Schedule: "*/15 * 20-31 12 *", Duration: "15m"}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.At(time.Date(2026, 12, 21, 8, 0, 0, 0, time.UTC)); !got.Opens.Equal(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("%+v", got)
	}
}

// A deny window that fires every minute for an hour never closes: it is
// followed only so far, and no opening is promised.
func TestAWindowThatNeverCloses(t *testing.T) {
	s, err := Parse(&v1alpha1.Windows{Deny: []v1alpha1.Window{{Schedule: "* * * * *", Duration: "1h"}}})
	if err != nil {
		t.Fatal(err)
	}
	got := s.At(time.Date(2026, 11, 24, 10, 30, 0, 0, time.UTC))
	if got.Closed != "inside deny window spec.windows.deny[0], which does not close within a year" || !got.Opens.IsZero() {
		t.Errorf("%+v", got)
	}
}

// Windows that chain minute by minute are followed to their end once per
// look; past the budget, no end and no opening is claimed.
func TestMinuteByMinuteChains(t *testing.T) {
	s, err := Parse(&v1alpha1.Windows{Deny: []v1alpha1.Window{{Schedule: "* * 20-31 12 *", Duration: "1m"}}})
	if err != nil {
		t.Fatal(err)
	}
	newYear := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	if got := s.At(time.Date(2026, 12, 20, 0, 0, 30, 0, time.UTC)); !strings.Contains(got.Closed, "until 2027-01-01T00:00:00Z") || !got.Opens.Equal(newYear) {
		t.Errorf("twelve days of minutes: %+v", got)
	}
	s, err = Parse(&v1alpha1.Windows{Deny: []v1alpha1.Window{{Schedule: "* * 1-20 12 *", Duration: "1m"}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.At(time.Date(2026, 12, 1, 0, 0, 30, 0, time.UTC)); !strings.Contains(got.Closed, "fires too often to find when it closes") || !got.Opens.IsZero() {
		t.Errorf("twenty days of minutes: %+v", got)
	}
}

// Whatever the budget allows, an opening given is open.
func TestOpensIsOpen(t *testing.T) {
	holidays := &v1alpha1.Windows{Deny: []v1alpha1.Window{
		{Schedule: "0 0 1 7 *", Duration: "1h"}, {Schedule: "0 0 1 1 *", Duration: "48h"},
		{Schedule: "* * 20-31 12 *", Duration: "1m"}, {Schedule: "0 0 1 8 *", Duration: "1h"},
	}}
	workHours := &v1alpha1.Windows{Timezone: "Europe/Berlin", Allow: []v1alpha1.Window{{Schedule: "0 9 * * 1-4", Duration: "7h"}},
		Deny: []v1alpha1.Window{{Schedule: "*/15 * 20-31 12 *", Duration: "15m"}, {Schedule: "0 12 * * 3", Duration: "2h"}}}
	for _, w := range []*v1alpha1.Windows{holidays, workHours} {
		s, err := Parse(w)
		if err != nil {
			t.Fatal(err)
		}
		moments := []time.Time{time.Date(2026, 12, 25, 1, 24, 0, 0, time.UTC)} // where the budget once ran out mid-way
		for now := time.Date(2026, 12, 18, 0, 7, 0, 0, time.UTC); now.Before(time.Date(2027, 1, 4, 0, 0, 0, 0, time.UTC)); now = now.Add(97 * time.Minute) {
			moments = append(moments, now)
		}
		for _, now := range moments {
			got := s.At(now)
			if got.Closed == "" || got.Opens.IsZero() {
				continue
			}
			if again := s.At(got.Opens); again.Closed != "" || !got.Opens.After(now) {
				t.Fatalf("at %s: %q, opens %s, where %q", now, got.Closed, got.Opens, again.Closed)
			}
		}
	}
}

// BenchmarkAt is the cost of a reconcile's look at its windows: typical
// working hours with a freeze, and the worst case, windows that chain.
func BenchmarkAt(b *testing.B) {
	now := time.Date(2026, 11, 24, 20, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name string
		w    v1alpha1.Windows
		now  time.Time
	}{
		{"working-hours-and-freeze", v1alpha1.Windows{Timezone: "Europe/Berlin",
			Allow: []v1alpha1.Window{{Schedule: "0 9 * * 1-4", Duration: "7h"}},
			Deny:  []v1alpha1.Window{{Schedule: "0 0 20 12 *", Duration: "336h"}}}, now},
		{"allow-every-minute-for-an-hour", v1alpha1.Windows{Allow: []v1alpha1.Window{{Schedule: "* * * * *", Duration: "1h"}}}, now},
		{"deny-every-minute-for-an-hour", v1alpha1.Windows{Deny: []v1alpha1.Window{{Schedule: "* * * * *", Duration: "1h"}}}, now},
		{"inside-deny-every-15-minutes-for-12-days", v1alpha1.Windows{Deny: []v1alpha1.Window{{Schedule: "*/15 * 20-31 12 *", Duration: "15m"}}},
			time.Date(2026, 12, 21, 8, 0, 0, 0, time.UTC)},
	} {
		s, err := Parse(&c.w)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				s.At(c.now)
			}
		})
	}
}
