package main

import (
	"io"
	"os"

	"golang.org/x/term"
)

// palette colours a few words of the text for people (phases, the step
// marks) when it goes to a terminal. The zero palette leaves them plain.
type palette struct{ on bool }

// paletteFor colours only for a terminal, never with NO_COLOR set to
// anything (no-color.org) or on a dumb terminal.
func paletteFor(out io.Writer, getenv func(string) string) palette {
	f, ok := out.(*os.File)
	return palette{on: ok && colourful(term.IsTerminal(int(f.Fd())), getenv)}
}

func colourful(terminal bool, getenv func(string) string) bool {
	return terminal && getenv("NO_COLOR") == "" && getenv("TERM") != "dumb"
}

const (
	red    = "31"
	green  = "32"
	yellow = "33"
	cyan   = "36"
)

func (p palette) paint(code, s string) string {
	if !p.on || s == "" {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

// phase colours a Rollout's, Preview's or analysis' phase by what it means:
// green done well, red failed, yellow waiting on someone, cyan under way.
func (p palette) phase(s string) string {
	switch s {
	case "Healthy", "Successful", "Succeeded":
		return p.paint(green, s)
	case "Degraded", "Failed", "Error", "Denied":
		return p.paint(red, s)
	case "Paused", "Inconclusive":
		return p.paint(yellow, s)
	case "Progressing", "Running", "Pending", "Mirroring":
		return p.paint(cyan, s)
	}
	return s
}
