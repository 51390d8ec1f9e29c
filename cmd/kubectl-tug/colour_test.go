package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestColourOnlyOnATerminalWithoutNoColor(t *testing.T) {
	for _, tc := range []struct {
		name     string
		terminal bool
		env      map[string]string
		want     bool
	}{
		{"terminal", true, nil, true},
		{"pipe", false, nil, false},
		{"NO_COLOR set", true, map[string]string{"NO_COLOR": "1"}, false},
		{"NO_COLOR set to anything", true, map[string]string{"NO_COLOR": "false"}, false},
		{"dumb terminal", true, map[string]string{"TERM": "dumb"}, false},
		{"pipe with a colour terminal", false, map[string]string{"TERM": "xterm-256color"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := colourful(tc.terminal, func(k string) string { return tc.env[k] }); got != tc.want {
				t.Errorf("colourful = %v, want %v", got, tc.want)
			}
		})
	}
	// A buffer is never a terminal, whatever the environment says.
	if paletteFor(&bytes.Buffer{}, func(string) string { return "" }).on {
		t.Error("colour for a buffer")
	}
}

func TestPaletteColoursPhasesByMeaning(t *testing.T) {
	on := palette{on: true}
	for phase, code := range map[string]string{"Healthy": green, "Degraded": red, "Paused": yellow, "Progressing": cyan, "Inconclusive": yellow, "Succeeded": green} {
		if got, want := on.phase(phase), "\x1b["+code+"m"+phase+"\x1b[0m"; got != want {
			t.Errorf("phase(%s) = %q, want %q", phase, got, want)
		}
	}
	if got := on.phase("-"); got != "-" {
		t.Errorf("an unknown phase is coloured: %q", got)
	}
	if got := (palette{}).phase("Degraded"); strings.Contains(got, "\x1b") {
		t.Errorf("the plain palette coloured: %q", got)
	}
}
