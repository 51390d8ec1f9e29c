package shadow

import (
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/labels"
)

// Source is the production route a preview copies from: a Rollout's
// managed routes, or one route of a VirtualService, in Namespace.
type Source struct {
	Namespace      string
	Rollout        string
	VirtualService string
	Route          string
}

func (s Source) String() string {
	if s.Rollout != "" {
		return fmt.Sprintf("rollout %s/%s", s.Namespace, s.Rollout)
	}
	return fmt.Sprintf("route %s of virtualservice %s/%s", s.Route, s.Namespace, s.VirtualService)
}

// RouteRef names one route of a VirtualService.
type RouteRef struct {
	VirtualService, Route string
}

// Rule is one rule of a mirror policy, which lives in the production
// namespace: the preview namespaces it lets mirror (by label), the Rollouts
// and routes they may copy from, how much, which methods, and which
// headers the copies lose.
type Rule struct {
	// Policy and Name name the rule in messages, as policy/name.
	Policy, Name string
	// Namespaces selects the preview namespaces the rule lets mirror; an
	// empty selector selects none (a rule names whom it trusts).
	Namespaces labels.Selector
	// SelectorError, when set, says why the rule's selector could not be
	// read: it selects no namespace.
	SelectorError string
	// Rollouts and Routes are what may be copied from.
	Rollouts []string
	Routes   []RouteRef
	// MaxPercentage bounds the share a preview may copy.
	MaxPercentage int32
	// MaxPreviews bounds how many previews mirror the source at once.
	MaxPreviews int32
	// Methods are the request methods a preview may receive copies of;
	// AllowUnsafeMethods must also be set for any but the safe ones.
	Methods            []string
	AllowUnsafeMethods bool
	// RemoveHeaders are request headers the copies lose, on top of
	// DefaultRemovedHeaders.
	RemoveHeaders []string
}

func (r Rule) String() string { return r.Policy + "/" + r.Name }

// Request is what a preview asks for.
type Request struct {
	// Namespace and Name name the preview; NamespaceLabels are its
	// namespace's labels.
	Namespace, Name string
	NamespaceLabels map[string]string
	Source          Source
	Percentage      int32
	// Others are the other previews that mirror the source now.
	Others int
	// Methods it wants copies of; AllowUnsafeMethods opts in to methods
	// that are not safe (RFC 9110: anything but GET, HEAD, OPTIONS, TRACE).
	Methods            []string
	AllowUnsafeMethods bool
}

// Decision is a policy's answer.
type Decision struct {
	Allowed bool
	// Rule is the rule that allowed the request, or the one that came
	// closest to it when denied; empty when no rule covers the source.
	Rule string
	// Reason says why it was denied.
	Reason string
	// RemoveHeaders are the headers the copies lose: DefaultRemovedHeaders
	// and the rule's, lower case, sorted, once each.
	RemoveHeaders []string
}

// DefaultRemovedHeaders are removed from every copy, whatever the policy
// says: credentials and session state must never reach a preview.
var DefaultRemovedHeaders = []string{"authorization", "cookie", "proxy-authorization", "x-api-key"}

// DefaultMethods are the methods copied unless a preview or rule says
// otherwise.
var DefaultMethods = []string{"GET", "HEAD"}

// Safe reports whether method is safe in RFC 9110's sense: a copy of it
// cannot change state in a well-behaved service.
func Safe(method string) bool {
	switch strings.ToUpper(method) {
	case "GET", "HEAD", "OPTIONS", "TRACE":
		return true
	}
	return false
}

// Evaluate decides a preview's request against the rules of the source
// namespace's mirror policies, in order: the first rule that allows
// everything asked for decides. With no rule, nothing may be mirrored.
// Denied, the reason is that of the rule that got furthest (it covers the
// source, then selects the namespace, then allows the share and methods).
func Evaluate(rules []Rule, r Request) Decision {
	best, bestAt := Decision{Reason: fmt.Sprintf("no mirror policy in namespace %s lets any namespace mirror %s", r.Source.Namespace, r.Source)}, -1
	for _, rule := range rules {
		at, why := check(rule, r)
		if why == "" {
			return Decision{Allowed: true, Rule: rule.String(), RemoveHeaders: removed(rule.RemoveHeaders)}
		}
		if at > bestAt {
			best, bestAt = Decision{Rule: rule.String(), Reason: fmt.Sprintf("rule %s: %s", rule, why)}, at
		}
	}
	if bestAt < 0 && len(rules) == 0 {
		best.Reason = fmt.Sprintf("no mirror policy in namespace %s: nothing may be mirrored from it", r.Source.Namespace)
	}
	return best
}

// check returns how far the request got through rule (0: the rule covers
// the source, 1: and selects the namespace, 2: and allows the share) and,
// when it is not allowed, why.
func check(rule Rule, r Request) (int, string) {
	if !covers(rule, r.Source) {
		return -1, fmt.Sprintf("it does not cover %s", r.Source)
	}
	if rule.SelectorError != "" {
		return 0, fmt.Sprintf("its namespace selector is invalid (%s), so it selects no namespace", rule.SelectorError)
	}
	if rule.Namespaces == nil || rule.Namespaces.Empty() || !rule.Namespaces.Matches(labels.Set(r.NamespaceLabels)) {
		return 0, fmt.Sprintf("namespace %s is not among the namespaces it lets mirror (%s)", r.Namespace, selectorText(rule.Namespaces))
	}
	if r.Percentage > rule.MaxPercentage {
		return 1, fmt.Sprintf("percentage %d is over its maxPercentage %d", r.Percentage, rule.MaxPercentage)
	}
	if rule.MaxPreviews > 0 && r.Others >= int(rule.MaxPreviews) {
		return 1, fmt.Sprintf("%d other previews mirror %s already, its maxPreviews", r.Others, r.Source)
	}
	allowed := rule.Methods
	if len(allowed) == 0 {
		allowed = DefaultMethods
	}
	for _, m := range methods(r.Methods) {
		switch {
		case !slices.ContainsFunc(allowed, func(a string) bool { return strings.EqualFold(a, m) }):
			return 2, fmt.Sprintf("method %s is not among its methods (%s)", m, strings.Join(allowed, ", "))
		case !Safe(m) && !r.AllowUnsafeMethods:
			return 2, fmt.Sprintf("method %s is not safe: the Preview must set allowUnsafeMethods", m)
		case !Safe(m) && !rule.AllowUnsafeMethods:
			return 2, fmt.Sprintf("method %s is not safe, and the rule does not set allowUnsafeMethods", m)
		}
	}
	return 3, ""
}

func covers(rule Rule, s Source) bool {
	if s.Rollout != "" {
		return slices.Contains(rule.Rollouts, s.Rollout)
	}
	return slices.Contains(rule.Routes, RouteRef{VirtualService: s.VirtualService, Route: s.Route})
}

func selectorText(s labels.Selector) string {
	if s == nil || s.Empty() {
		return "none"
	}
	return s.String()
}

// methods are the methods asked for, upper case and once each, or the
// default ones.
func methods(asked []string) []string {
	if len(asked) == 0 {
		return DefaultMethods
	}
	var out []string
	for _, m := range asked {
		if m = strings.ToUpper(m); !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	return out
}

func removed(extra []string) []string {
	out := slices.Clone(DefaultRemovedHeaders)
	for _, h := range extra {
		out = append(out, strings.ToLower(strings.TrimSpace(h)))
	}
	slices.Sort(out)
	return slices.DeleteFunc(slices.Compact(out), func(h string) bool { return h == "" })
}
