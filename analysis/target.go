package analysis

import (
	"errors"
	"fmt"
	"strings"
	"unicode"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

// RenderTarget substitutes {{args.NAME}} in a metric's address and header
// values, as Argo Rollouts does (address: "{{args.prometheus-address}}").
// The values go in as they are: the result is an address like any other,
// which must be an http or https URL, and which the measurer still admits
// only when the controller allows it. Arguments from Secrets are refused
// in both: an address is shown in errors, and a template's headers go to
// addresses of its own choosing, where Secret values never go. Errors quote
// the template's text, never what it rendered to.
func (a Args) RenderTarget(prom *v1alpha1.PrometheusMetric) error {
	values, secret := a.Values, a.Secret
	if refersTo(prom.Address, secret) {
		return errors.New("address: arguments from Secrets cannot be used in the address, which errors and status may show")
	}
	if prom.Address != "" {
		addr, err := substitutePlain(prom.Address, values)
		if err != nil {
			return fmt.Errorf("address %q: %w", prom.Address, err)
		}
		if addr != "" && !strings.HasPrefix(addr, "http://") && !strings.HasPrefix(addr, "https://") || strings.ContainsFunc(addr, unicode.IsSpace) || len(addr) > 2048 {
			return fmt.Errorf("address %q does not render to an http:// or https:// URL (the value is not shown)", prom.Address)
		}
		prom.Address = addr // empty: the controller's own, as if none were named
	}
	if len(prom.Headers) == 0 {
		return nil
	}
	headers := make([]argo.WebMetricHeader, len(prom.Headers)) // the run's spec shares the slice
	for i, h := range prom.Headers {
		if refersTo(h.Value, secret) {
			return fmt.Errorf("header %s: arguments from Secrets cannot be used in headers; use authentication, whose credentials go only to the controller's Prometheus and its allowed addresses", h.Key)
		}
		v, err := substitutePlain(h.Value, values)
		if err != nil {
			return fmt.Errorf("header %s: %w", h.Key, err)
		}
		if strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f }) {
			return fmt.Errorf("header %s: the value holds control characters (not shown)", h.Key)
		}
		headers[i] = argo.WebMetricHeader{Key: h.Key, Value: v}
	}
	prom.Headers = headers
	return nil
}

// substitutePlain replaces each placeholder in text with its value as it is.
func substitutePlain(text string, values map[string]string) (string, error) {
	var errs []error
	out := placeholder.ReplaceAllStringFunc(text, func(p string) string {
		name := placeholder.FindStringSubmatch(p)[1]
		v, ok := values[name]
		if !ok {
			errs = append(errs, fmt.Errorf("argument %q has no value", name))
		}
		return v
	})
	return out, errors.Join(errs...)
}

// refersTo reports whether text refers to any of the named arguments.
func refersTo(text string, names map[string]bool) bool {
	for n := range names {
		if strings.Contains(text, "args."+n) {
			return true
		}
	}
	return false
}
