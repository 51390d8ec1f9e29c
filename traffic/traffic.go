// Package traffic describes, as values, how traffic should be shared between
// the stable and canary versions: the weight split of the managed routes and
// the header routes that send chosen requests to the canary. It is pure: the
// adapter in traffic/istio writes these values into Istio objects.
package traffic

import (
	"errors"
	"fmt"
)

// Split is the share of a managed route's traffic, in percent, that goes to
// each version. Stable+Canary is always 100.
type Split struct {
	Stable int32
	Canary int32
}

// CanaryAt returns the split that sends weight percent to the canary; weights
// outside 0..100 are clamped.
func CanaryAt(weight int32) Split {
	weight = min(max(weight, 0), 100)
	return Split{Stable: 100 - weight, Canary: weight}
}

// String formats the split as stable/canary, as in "90/10".
func (s Split) String() string { return fmt.Sprintf("%d/%d", s.Stable, s.Canary) }

// MatchKind says how a header's value is compared.
type MatchKind int

// The ways a header value can match, as Istio's StringMatch has them.
const (
	Exact MatchKind = iota
	Prefix
	Regex
)

// MarshalText writes the kind by name, as records keep it.
func (k MatchKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText reads a kind by name.
func (k *MatchKind) UnmarshalText(b []byte) error {
	for _, c := range []MatchKind{Exact, Prefix, Regex} {
		if c.String() == string(b) {
			*k = c
			return nil
		}
	}
	return fmt.Errorf("unknown match kind %q", b)
}

func (k MatchKind) String() string {
	switch k {
	case Exact:
		return "exact"
	case Prefix:
		return "prefix"
	case Regex:
		return "regex"
	}
	return fmt.Sprintf("MatchKind(%d)", int(k))
}

// HeaderMatch is a condition on one request header.
type HeaderMatch struct {
	Header string    `json:"header"`
	Kind   MatchKind `json:"kind"`
	Value  string    `json:"value"`
}

// HeaderRoute sends every request that meets all of Match to the canary.
type HeaderRoute struct {
	Name  string
	Match []HeaderMatch
}

// ValueMatch is a condition on a request's method or path.
type ValueMatch struct {
	Kind  MatchKind `json:"kind"`
	Value string    `json:"value"`
}

// RequestMatch is a condition on a request: every part that is set must hold.
type RequestMatch struct {
	Method  *ValueMatch   `json:"method,omitempty"`
	Path    *ValueMatch   `json:"path,omitempty"`
	Headers []HeaderMatch `json:"headers,omitempty"`
}

// MirrorRoute copies Percentage percent of the requests that meet any of
// Match to the canary. Clients get their responses as before, from the split
// of the managed route; the canary's answers to the copies are dropped.
type MirrorRoute struct {
	Name       string
	Match      []RequestMatch
	Percentage int32
}

// Desired is the whole traffic state a rollout wants on the mesh at a moment.
type Desired struct {
	Split Split
	// HeaderRoutes currently in force, in the order they should be tried.
	HeaderRoutes []HeaderRoute
	// MirrorRoutes currently in force, tried after the header routes.
	MirrorRoutes []MirrorRoute
}

// AtRest is the state outside a rollout, and after an abort: everything to
// stable, no header or mirror routes.
func AtRest() Desired { return Desired{Split: CanaryAt(0)} }

// AllStable reports whether d sends all traffic to stable and adds no route,
// as AtRest does. Such a state can be put on the mesh in part: when some
// route or subset does not fit, moving the rest to stable is still right.
func (d Desired) AllStable() bool {
	return d.Split == CanaryAt(0) && len(d.HeaderRoutes) == 0 && len(d.MirrorRoutes) == 0
}

// ErrMisconfigured marks an error in how the mesh objects fit the rollout (a
// route or subset that does not exist, a destination that is neither stable
// nor canary). Retrying cannot fix it; the rollout reports InvalidSpec.
var ErrMisconfigured = errors.New("traffic routing does not fit the rollout")

// Mesh names the mesh objects and backends of one rollout.
type Mesh struct {
	Namespace string
	// Owner names the Rollout. Several Rollouts may share a VirtualService
	// (a gateway's, with a route per service); each removes only the header
	// and mirror routes recorded under its own Owner.
	Owner string
	// VirtualService and the HTTP routes in it whose weights are set.
	VirtualService string
	Routes         []string
	// StableService and CanaryService select the two versions' pods.
	StableService, CanaryService string
	// DestinationRule, when set, splits by subset of one host instead of by
	// Service; its two subsets are kept selecting StableLabels and CanaryLabels.
	DestinationRule            string
	StableSubset, CanarySubset string
	StableLabels, CanaryLabels map[string]string
}
