package dispatch

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/tugboatdev/tugboat/notify"
)

// slackMessage says what happened, why and what to run next, in Slack's
// blocks, with the headline as the text of notifications and clients
// without blocks.
func slackMessage(e notify.Event, channel string) *slack.WebhookMessage {
	e = bounded(e)
	blocks := []slack.Block{
		slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, cut("*"+escapeSlack(e.Headline())+"*\n"+escapeSlack(e.Message), slackText), false, false), nil, nil),
	}
	if fields := details(e); len(fields) > 0 {
		var objs []*slack.TextBlockObject
		for _, f := range fields {
			objs = append(objs, slack.NewTextBlockObject(slack.MarkdownType, "*"+f[0]+"*\n"+escapeSlack(f[1]), false, false))
		}
		blocks = append(blocks, slack.NewSectionBlock(nil, objs, nil))
	}
	if len(e.Findings) > 0 {
		var b strings.Builder
		for _, f := range e.Findings {
			fmt.Fprintf(&b, "• %s\n", escapeSlack(finding(f)))
		}
		blocks = append(blocks, slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, cut(strings.TrimSuffix(b.String(), "\n"), slackText), false, false), nil, nil))
	}
	if len(e.Next) > 0 {
		blocks = append(blocks, slack.NewContextBlock("", slack.NewTextBlockObject(slack.MarkdownType, "Next: `"+strings.Join(e.Next, "` or `")+"`", false, false)))
	}
	return &slack.WebhookMessage{Channel: channel, Text: e.Headline(), Blocks: &slack.Blocks{BlockSet: blocks}}
}

// Receivers refuse what is too long (Slack a section's text past 3000
// characters, Teams a card past about 28 KB), and a refusal is final: the
// message is cut to fit instead.
const (
	slackText   = 2900
	maxFindings = 8
	maxMessage  = 2000
)

// bounded is e cut to what every receiver takes.
func bounded(e notify.Event) notify.Event {
	e.Message = cut(e.Message, maxMessage)
	// A copy: the event is shared with the other receivers' lines.
	e.Findings = slices.Clone(e.Findings[:min(len(e.Findings), maxFindings)])
	for i := range e.Findings {
		e.Findings[i].Message = cut(e.Findings[i].Message, 300)
		e.Findings[i].Value = cut(e.Findings[i].Value, 200)
		e.Findings[i].Condition = cut(e.Findings[i].Condition, 300)
	}
	return e
}

// cut shortens s to at most n bytes, on a rune boundary.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n - len("…")
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}

// escapeSlack keeps a message's <, > and & from being read as Slack markup
// (links, mentions).
func escapeSlack(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// details are the event's facts, as label and value.
func details(e notify.Event) [][2]string {
	var out [][2]string
	if e.Reason != "" {
		out = append(out, [2]string{"Reason", e.Reason})
	}
	if e.Revision != "" {
		out = append(out, [2]string{"Revision", e.Revision})
	}
	if e.Step != nil {
		out = append(out, [2]string{"Step", fmt.Sprintf("%d of %d", *e.Step, e.Steps)})
	}
	if e.Weight != nil {
		out = append(out, [2]string{"Canary weight", fmt.Sprintf("%d%%", *e.Weight)})
	}
	return out
}

func finding(f notify.Finding) string {
	s := f.Metric + ": " + f.Phase
	if f.Value != "" {
		s += ", value " + f.Value
	}
	if f.Condition != "" {
		s += " (" + f.Condition + ")"
	}
	if f.Message != "" {
		s += ": " + f.Message
	}
	return s
}

// teamsMessage is an Adaptive Card, as Teams' incoming webhooks and
// workflows take it.
func teamsMessage(e notify.Event) map[string]any {
	e = bounded(e)
	body := []map[string]any{
		{"type": "TextBlock", "text": e.Headline(), "weight": "Bolder", "size": "Medium", "wrap": true},
		{"type": "TextBlock", "text": e.Message, "wrap": true},
	}
	var facts []map[string]string
	for _, d := range details(e) {
		facts = append(facts, map[string]string{"title": d[0], "value": d[1]})
	}
	for _, f := range e.Findings {
		facts = append(facts, map[string]string{"title": f.Metric, "value": strings.TrimPrefix(finding(f), f.Metric+": ")})
	}
	if len(facts) > 0 {
		body = append(body, map[string]any{"type": "FactSet", "facts": facts})
	}
	if len(e.Next) > 0 {
		body = append(body, map[string]any{"type": "TextBlock", "text": "Next: " + strings.Join(e.Next, " or "), "wrap": true, "fontType": "Monospace", "isSubtle": true})
	}
	return map[string]any{
		"type": "message",
		"attachments": []map[string]any{{
			"contentType": "application/vnd.microsoft.card.adaptive",
			"content": map[string]any{
				"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
				"type":    "AdaptiveCard",
				"version": "1.4",
				"summary": e.Headline(),
				"body":    body,
			},
		}},
	}
}
