package sink

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/tugboatdev/tugboat/notify"
)

// Notification is one that arrived, as the receiver it was sent to read it.
type Notification struct {
	// Receiver is slack, msteams, webhook or cloudevents.
	Receiver string    `json:"receiver"`
	At       time.Time `json:"at"`
	// Text is what a person reads first: Slack's text, the card's summary,
	// the event's headline.
	Text string `json:"text"`
	// Event is the Tugboat event (promoted, aborted, ...), from the JSON
	// the webhook and CloudEvents receivers get.
	Event string `json:"event,omitempty"`
	// CloudEvents attributes, for cloudevents.
	ID          string    `json:"id,omitempty"`
	Type        string    `json:"type,omitempty"`
	Source      string    `json:"source,omitempty"`
	Subject     string    `json:"subject,omitempty"`
	SpecVersion string    `json:"specversion,omitempty"`
	Time        time.Time `json:"time,omitzero"`
	// Authorization is the header the request carried.
	Authorization string `json:"-"`
}

// Notifications are those that arrived, in order.
func (s *Server) Notifications() []Notification {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Notification(nil), s.received...)
}

// Held is how many requests the slow receiver holds open now.
func (s *Server) Held() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held
}

// SlowAsked is how many requests the slow receiver got, none of which it
// answered while the sink ran.
func (s *Server) SlowAsked() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.slowAsked
}

// notification checks what arrived against the receiver's format and keeps
// it; what does not conform is answered 400, so the sender sees it.
func (s *Server) notification(w http.ResponseWriter, r *http.Request) {
	n, err := read(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	n.At, n.Authorization = time.Now(), r.Header.Get("Authorization")
	s.mu.Lock()
	s.received = append(s.received, n)
	s.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func read(r *http.Request) (Notification, error) {
	receiver := r.PathValue("receiver")
	n := Notification{Receiver: receiver}
	if receiver == "cloudevents" {
		// The SDK reads binary and structured mode alike; Validate checks
		// the required attributes of the 1.0 spec.
		ev, err := cehttp.NewEventFromHTTPRequest(r)
		if err != nil {
			return n, fmt.Errorf("not a CloudEvent: %w", err)
		}
		if err := ev.Validate(); err != nil {
			return n, fmt.Errorf("invalid CloudEvent: %w", err)
		}
		var e notify.Event
		if err := ev.DataAs(&e); err != nil {
			return n, fmt.Errorf("data: %w", err)
		}
		n.ID, n.Type, n.Source, n.Subject, n.SpecVersion, n.Time = ev.ID(), ev.Type(), ev.Source(), ev.Subject(), ev.SpecVersion(), ev.Time()
		n.Event, n.Text = e.Name, e.Headline()
		return n, nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return n, err
	}
	switch receiver {
	case "slack":
		var m struct {
			Text   string            `json:"text"`
			Blocks []json.RawMessage `json:"blocks"`
		}
		if err := json.Unmarshal(body, &m); err != nil || m.Text == "" || len(m.Blocks) == 0 {
			return n, fmt.Errorf("not a Slack message with text and blocks: %s", body)
		}
		n.Text = m.Text
	case "msteams":
		var m struct {
			Type        string `json:"type"`
			Attachments []struct {
				ContentType string `json:"contentType"`
				Content     struct {
					Summary string `json:"summary"`
				} `json:"content"`
			} `json:"attachments"`
		}
		if err := json.Unmarshal(body, &m); err != nil || m.Type != "message" || len(m.Attachments) != 1 ||
			m.Attachments[0].ContentType != "application/vnd.microsoft.card.adaptive" {
			return n, fmt.Errorf("not a Teams message with an Adaptive Card: %s", body)
		}
		n.Text = m.Attachments[0].Content.Summary
	case "webhook":
		var e notify.Event
		if err := json.Unmarshal(body, &e); err != nil || e.Name == "" {
			return n, fmt.Errorf("not a Tugboat notification: %s", body)
		}
		n.Event, n.Text, n.ID = e.Name, e.Headline(), r.Header.Get("X-Tugboat-Id")
	default:
		return n, fmt.Errorf("no receiver %q", receiver)
	}
	return n, nil
}

// slow is a receiver that never answers while the sink runs.
func (s *Server) slow(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.held++
	s.slowAsked++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.held--
		s.mu.Unlock()
	}()
	select {
	case <-s.release:
	case <-r.Context().Done():
	}
	w.WriteHeader(http.StatusServiceUnavailable)
}

func (s *Server) list(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(s.Notifications())
}

// Summary is one line per notification, for people.
func Summary(ns []Notification) string {
	var b strings.Builder
	for _, n := range ns {
		what := n.Text
		if n.Receiver == "cloudevents" {
			what = fmt.Sprintf("%s id=%s subject=%s", n.Type, n.ID, n.Subject)
		}
		fmt.Fprintf(&b, "  %s  %-11s  %s\n", n.At.Format("15:04:05"), n.Receiver, what)
	}
	return b.String()
}
