package dispatch

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tugboatdev/tugboat/notify"
)

func TestMessagesFitTheReceivers(t *testing.T) {
	e := event(notify.Aborted)
	e.Message = strings.Repeat("é", 5000) // two bytes each: cut on a rune boundary
	for range 20 {
		e.Findings = append(e.Findings, notify.Finding{Metric: "m", Phase: "Failed", Message: strings.Repeat("x", 1000)})
	}
	before := e.Findings[0].Message

	msg := slackMessage(e, "")
	raw, err := json.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	var blocks struct {
		Blocks []struct {
			Text *struct {
				Text string `json:"text"`
			} `json:"text"`
		} `json:"blocks"`
	}
	if err := json.Unmarshal(raw, &blocks); err != nil {
		t.Fatal(err)
	}
	for i, b := range blocks.Blocks {
		if b.Text != nil && (len(b.Text.Text) > 3000 || !utf8.ValidString(b.Text.Text)) {
			t.Errorf("block %d: %d bytes (valid UTF-8: %v), over Slack's 3000", i, len(b.Text.Text), utf8.ValidString(b.Text.Text))
		}
	}
	card, err := json.Marshal(teamsMessage(e))
	if err != nil {
		t.Fatal(err)
	}
	if len(card) > 28<<10 {
		t.Errorf("Teams card of %d bytes, over its 28 KB", len(card))
	}
	if e.Findings[0].Message != before {
		t.Error("cutting a message changed the event the other receivers send")
	}
}

func TestCut(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"abcdefghij", 10, "abcdefghij"},
		{"abcdefghijk", 10, "abcdefg…"},
		{"ééééé", 8, "éé…"},
	}
	for _, tt := range tests {
		if got := cut(tt.in, tt.n); got != tt.want || len(got) > tt.n {
			t.Errorf("cut(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}
