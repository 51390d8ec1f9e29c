package notify

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

// A Rollout's events, as spec.notifications names them.
const (
	Started        = "started"        // a revision's rollout began (or began again)
	StepAdvanced   = "stepAdvanced"   // a step was completed
	Paused         = "paused"         // the rollout waits for a person
	Promoted       = "promoted"       // the canary became the stable revision
	Aborted        = "aborted"        // the rollout stopped; traffic is back on stable
	RolledBack     = "rolledBack"     // a person rolled back to an earlier revision
	AnalysisFailed = "analysisFailed" // a metric of the rollout's analysis failed
	Inconclusive   = "inconclusive"   // the analysis could not decide; a person must
)

// A Preview's events: the phase it reached, in lower camel case.
const (
	Mirroring = "mirroring"
	Succeeded = "succeeded"
	Failed    = "failed"
	Expired   = "expired"
	Denied    = "denied"
)

// Object is what an event is about.
type Object struct {
	Kind      string `json:"kind"` // Rollout or Preview
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	UID       string `json:"uid"`
}

// Event is one notification's content, the same for every receiver.
type Event struct {
	Name   string `json:"event"`
	Object Object `json:"object"`
	// Occurrence tells this event apart from other events of the same name
	// on the same object (the revision, when its rollout started, the step):
	// the id is derived from it, so the same occurrence has the same id after
	// a restart.
	Occurrence string    `json:"-"`
	Time       time.Time `json:"time"`
	// Revision is the revision the event is about (the canary, the one
	// promoted, the one rolled back to).
	Revision string `json:"revision,omitempty"`
	// Step is the step index reached, of Steps.
	Step   *int32 `json:"step,omitempty"`
	Steps  int32  `json:"steps,omitempty"`
	Weight *int32 `json:"canaryWeight,omitempty"`
	// Reason is the outcome's reason (AnalysisFailed, AbortedByUser, ...).
	Reason  string `json:"reason"`
	Message string `json:"message"`
	// Findings are the explanation's metrics behind the event.
	Findings []Finding `json:"findings,omitempty"`
	// Next are the commands a person would run now.
	Next []string `json:"next,omitempty"`
}

// Finding is one metric of the structured explanation.
type Finding struct {
	Run       string `json:"run,omitempty"`
	Metric    string `json:"metric"`
	Phase     string `json:"phase"`
	Value     string `json:"value,omitempty"`
	Condition string `json:"condition,omitempty"`
	Message   string `json:"message,omitempty"`
}

// ID is the event's id: the same occurrence of an event on the same object
// always has the same id, so a receiver can deduplicate what a restart
// repeats.
func (e Event) ID() string {
	h := sha256.Sum256([]byte(strings.Join([]string{e.Object.Kind, e.Object.UID, e.Name, e.Occurrence}, "\x00")))
	return hex.EncodeToString(h[:16])
}

// Type is the CloudEvents type: dev.tugboat.rollout.promoted.v1.
func (e Event) Type() string {
	return "dev.tugboat." + strings.ToLower(e.Object.Kind) + "." + strings.ToLower(e.Name) + ".v1"
}

// Source is the CloudEvents source: the object's API path.
func (e Event) Source() string {
	return fmt.Sprintf("/apis/%s/namespaces/%s/%ss/%s", v1alpha1.GroupVersion, e.Object.Namespace, strings.ToLower(e.Object.Kind), e.Object.Name)
}

// Subject names the object within its namespace, for receivers that sort by
// it.
func (e Event) Subject() string { return e.Object.Namespace + "/" + e.Object.Name }

// Headline says in one line what happened: "Rollout prod/podinfo: revision
// 5f8c promoted".
func (e Event) Headline() string {
	what := headlines[e.Name]
	if what == "" {
		what = e.Name
	}
	subject := e.Object.Kind + " " + e.Subject()
	switch {
	case e.Name == RolledBack && e.Reason == "RollingBack":
		return fmt.Sprintf("%s: rolling back to revision %s through the steps", subject, e.Revision)
	case e.Name == RolledBack:
		return fmt.Sprintf("%s: rolled back to revision %s", subject, e.Revision)
	case e.Revision != "" && e.Object.Kind == "Rollout":
		return fmt.Sprintf("%s: revision %s %s", subject, e.Revision, what)
	}
	return subject + ": " + what
}

var headlines = map[string]string{
	Started:        "started rolling out",
	StepAdvanced:   "advanced a step",
	Paused:         "paused, waiting for a person",
	Promoted:       "promoted",
	Aborted:        "aborted",
	RolledBack:     "rolled back",
	AnalysisFailed: "failed a metric",
	Inconclusive:   "inconclusive, waiting for a person",
	Mirroring:      "mirroring production traffic",
	Succeeded:      "passed its analysis",
	Failed:         "failed its analysis",
	Expired:        "expired before a verdict",
	Denied:         "denied by the production namespace's policy",
}

// Wants reports whether a subscription to events receives the named one:
// an empty list receives every event.
func Wants(events []string, name string) bool {
	return len(events) == 0 || slices.Contains(events, name)
}

// Findings picks the metrics of an explanation worth telling: those that
// failed, were inconclusive or errored; all of them when none did.
func Findings(runs []v1alpha1.RolloutAnalysis) []Finding {
	var bad, all []Finding
	for _, r := range runs {
		for _, m := range r.Metrics {
			f := Finding{Run: r.Run, Metric: m.Name, Phase: string(m.Phase), Value: m.Value, Message: m.Message}
			switch {
			case m.FailureCondition != "":
				f.Condition = "failure: " + m.FailureCondition
			case m.SuccessCondition != "":
				f.Condition = "success: " + m.SuccessCondition
			}
			all = append(all, f)
			switch m.Phase {
			case "Failed", "Error", "Inconclusive":
				bad = append(bad, f)
			}
		}
	}
	if len(bad) > 0 {
		return bad
	}
	return all
}
