package analysis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

// Args are a run's resolved arguments, with the policy for those whose
// values come from Secrets: such a value goes into the query, to the
// controller's own Prometheus, and nowhere else. Limits, conditions,
// addresses, headers and time ranges never see it; status and errors show
// REDACTED, or say that a value did not fit without showing it.
type Args struct {
	// Values holds every argument's value.
	Values map[string]string
	// Secret names the arguments whose values come from Secrets.
	Secret map[string]bool
}

// Plain are the values of the arguments that do not come from Secrets:
// what limits and conditions may see.
func (a Args) Plain() map[string]string {
	plain := make(map[string]string, len(a.Values))
	for k, v := range a.Values {
		if !a.Secret[k] {
			plain[k] = v
		}
	}
	return plain
}

// In reports whether text refers to an argument from a Secret.
func (a Args) In(text string) bool { return refersTo(text, a.Secret) }

// Shown is a query with the arguments in place as status shows it: Secret
// values masked.
func (a Args) Shown(query string) string { return Shown(query, Masked(a.Values, a.Secret, "REDACTED")) }

// CheckLimits refuses limits or a count that use an argument from a Secret:
// a limit shows in status and in its errors.
func (a Args) CheckLimits(m v1alpha1.Metric) error {
	var b strings.Builder
	for _, v := range []*intstr.IntOrString{m.FailureLimit, m.InconclusiveLimit, m.ConsecutiveErrorLimit, m.ConsecutiveSuccessLimit, m.Count} {
		if v != nil && v.Type == intstr.String {
			b.WriteString(v.StrVal + " ")
		}
	}
	if a.In(b.String()) {
		return errors.New("arguments from Secrets can be used in the query only, not in limits or count")
	}
	return nil
}

// CheckAddress refuses to send a query holding Secret values to an address
// the template names: they go only to the controller's own Prometheus, not
// to an address whoever wrote the template chose.
func (a Args) CheckAddress(prom v1alpha1.PrometheusMetric) error {
	if prom.Address != "" && a.In(prom.Query) {
		return errors.New("arguments from Secrets are sent only to the controller's Prometheus (--prometheus-address); this metric names its own address")
	}
	return nil
}

// Render renders a query to send, and to show in status with the values of
// Secret arguments masked. Render's errors quote what the query was rendered
// to; when Secret values are in it, the query is rendered again with inert
// stand-ins for them: if that fails, its error is shown, and otherwise it was
// a Secret's value that did not fit, which the error says without the value.
func (a Args) Render(q string) (query, shown string, err error) {
	query, err = Render(q, a.Values)
	if err != nil && a.In(q) {
		if _, err := Render(q, Masked(a.Values, a.Secret, "1")); err != nil {
			return "", "", err
		}
		return "", "", fmt.Errorf("%w: the value of an argument from a Secret does not fit the query (the value is not shown)", ErrUnsafeArgument)
	}
	if err != nil {
		return "", "", err
	}
	return query, a.Shown(q), nil
}

// RenderRange renders a range query's start, end and step. Arguments from
// Secrets have no place in a time range, and the errors of a range quote
// what it was rendered to, so they are refused.
func (a Args) RenderRange(q v1alpha1.PrometheusRangeQuery) (*v1alpha1.PrometheusRangeQuery, error) {
	if a.In(q.Start + " " + q.End + " " + string(q.Step)) {
		return nil, errors.New("rangeQuery: arguments from Secrets cannot be used in start, end or step")
	}
	out, err := RenderRange(q, a.Values)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// Scrub keeps the values of Secret arguments out of an error about a query
// that holds them. Network failures and timeouts say nothing of the query and
// keep their message (with any value that still appears replaced); a refusal
// by the sender's policy quotes nothing and stays; any other error, a
// server's refusal above all, may quote the query in some escaped form, so
// its message is not shown.
func (a Args) Scrub(err error) error {
	var refused *QueryRefused
	var netErr net.Error
	var policy interface{ RefusedByPolicy() }
	switch {
	case errors.As(err, &policy):
		return err
	case errors.As(err, &refused):
		return fmt.Errorf("the server refused the query (%s); its message is not shown, as the query holds values from Secrets", refused.Reason)
	case errors.As(err, &netErr), errors.Is(err, context.DeadlineExceeded):
		msg := err.Error()
		for k := range a.Secret {
			if v := a.Values[k]; v != "" {
				msg = strings.ReplaceAll(msg, v, "REDACTED")
			}
		}
		return errors.New(msg)
	}
	return errors.New("the query failed; the error is not shown, as the query holds values from Secrets")
}
