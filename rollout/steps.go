package rollout

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"maps"
	"math"
	"slices"
	"strconv"
	"time"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/traffic"
)

// TrafficAfter is the traffic in force once the first n steps are done: the
// weight of the last setWeight among them and the header and mirror routes
// they left set. Desired weights are a function of progress, never read back from the
// mesh, so a GitOps tool resetting a VirtualService is simply corrected.
func TrafficAfter(steps []v1alpha1.Step, n int) traffic.Desired {
	d := traffic.AtRest()
	for _, s := range steps[:min(n, len(steps))] {
		switch {
		case s.SetWeight != nil:
			d.Split = traffic.CanaryAt(*s.SetWeight)
		case s.SetHeaderRoute != nil:
			d.HeaderRoutes = setHeaderRoute(d.HeaderRoutes, s.SetHeaderRoute)
		case s.SetMirrorRoute != nil:
			d.MirrorRoutes = setMirrorRoute(d.MirrorRoutes, s.SetMirrorRoute)
		}
	}
	return d
}

// setMirrorRoute adds, replaces or (without a match) removes a mirror route,
// as Argo Rollouts' setMirrorRoute does. Without a percentage, every
// matching request is mirrored.
func setMirrorRoute(routes []traffic.MirrorRoute, s *argo.SetMirrorRoute) []traffic.MirrorRoute {
	out := slices.DeleteFunc(slices.Clone(routes), func(r traffic.MirrorRoute) bool { return r.Name == s.Name })
	if len(s.Match) == 0 {
		return out
	}
	mr := traffic.MirrorRoute{Name: s.Name, Percentage: ptr.Deref(s.Percentage, 100)}
	for _, m := range s.Match {
		rm := traffic.RequestMatch{Method: valueMatch(m.Method), Path: valueMatch(m.Path)}
		for _, h := range slices.Sorted(maps.Keys(m.Headers)) { // a fixed order, so the route is written once
			v := m.Headers[h]
			vm := valueMatch(&v)
			rm.Headers = append(rm.Headers, traffic.HeaderMatch{Header: h, Kind: vm.Kind, Value: vm.Value})
		}
		mr.Match = append(mr.Match, rm)
	}
	return append(out, mr)
}

func valueMatch(m *argo.StringMatch) *traffic.ValueMatch {
	switch {
	case m == nil:
		return nil
	case m.Prefix != "":
		return &traffic.ValueMatch{Kind: traffic.Prefix, Value: m.Prefix}
	case m.Regex != "":
		return &traffic.ValueMatch{Kind: traffic.Regex, Value: m.Regex}
	}
	return &traffic.ValueMatch{Kind: traffic.Exact, Value: m.Exact}
}

func setHeaderRoute(routes []traffic.HeaderRoute, s *v1alpha1.SetHeaderRoute) []traffic.HeaderRoute {
	var out []traffic.HeaderRoute
	for _, r := range routes {
		if r.Name != s.Name {
			out = append(out, r)
		}
	}
	if len(s.Match) == 0 {
		return out // a header route step without a match removes the route
	}
	hr := traffic.HeaderRoute{Name: s.Name}
	for _, m := range s.Match {
		hm := traffic.HeaderMatch{Header: m.HeaderName}
		switch v := m.HeaderValue; {
		case v.Prefix != "":
			hm.Kind, hm.Value = traffic.Prefix, v.Prefix
		case v.Regex != "":
			hm.Kind, hm.Value = traffic.Regex, v.Regex
		default:
			hm.Kind, hm.Value = traffic.Exact, v.Exact
		}
		hr.Match = append(hr.Match, hm)
	}
	return append(out, hr)
}

// CanaryReplicasAfter is the canary's size once the first n steps are done:
// full size unless a setCanaryScale step says otherwise.
func CanaryReplicasAfter(steps []v1alpha1.Step, n int, replicas int32) int32 {
	want := replicas
	for _, s := range steps[:min(n, len(steps))] {
		if sc := s.SetCanaryScale; sc != nil {
			switch {
			case sc.Replicas != nil:
				want = *sc.Replicas
			case sc.Weight != nil:
				want = share(replicas, *sc.Weight)
			case sc.MatchTrafficWeight:
				want = share(replicas, TrafficAfter(steps, n).Split.Canary)
			}
		}
	}
	return want
}

// CanaryReplicasFor is the size the canary must be Ready at for step n to
// complete. For a step that takes no time it is the size after the step, so
// that a step that grows the canary (setCanaryScale, or setWeight with
// matchTrafficWeight) scales it first and moves traffic to it only once the
// new pods are Ready; for any other step, the size the steps before it left.
func CanaryReplicasFor(steps []v1alpha1.Step, n int, replicas int32) int32 {
	if n < len(steps) && instant(steps[n]) {
		return CanaryReplicasAfter(steps, n+1, replicas)
	}
	return CanaryReplicasAfter(steps, n, replicas)
}

// share is weight percent of replicas, rounded up so that a non-zero weight
// never means zero pods.
func share(replicas, weight int32) int32 {
	return int32((int64(replicas)*int64(weight) + 99) / 100)
}

// PauseText is a timed pause's duration as written, with seconds given as a
// bare number shown as such ("10" reads "10s").
func PauseText(p *v1alpha1.Pause) string {
	if p == nil || p.Duration == nil {
		return ""
	}
	if p.Duration.Type == intstr.Int {
		return strconv.Itoa(int(p.Duration.IntVal)) + "s"
	}
	if _, err := strconv.Atoi(p.Duration.StrVal); err == nil {
		return p.Duration.StrVal + "s"
	}
	return p.Duration.StrVal
}

// PauseDuration parses a pause step's duration: a number of seconds or a Go
// duration. ok is false for a pause that waits for a person.
func PauseDuration(p *v1alpha1.Pause) (d time.Duration, ok bool, err error) {
	if p == nil || p.Duration == nil {
		return 0, false, nil
	}
	if p.Duration.Type == intstr.Int {
		return time.Duration(p.Duration.IntVal) * time.Second, true, nil
	}
	refused := fmt.Errorf("pause duration %q: want seconds or a duration such as 30s, at most %d seconds", p.Duration.StrVal, math.MaxInt32)
	if n, err := strconv.ParseInt(p.Duration.StrVal, 10, 64); err == nil {
		if n < 0 || n > math.MaxInt32 {
			return 0, false, refused
		}
		return time.Duration(n) * time.Second, true, nil
	}
	d, err = time.ParseDuration(p.Duration.StrVal)
	if err != nil || d < 0 || d > math.MaxInt32*time.Second {
		return 0, false, refused
	}
	return d, true, nil
}

// StepsHash identifies a list of steps: a short hash of its JSON.
func StepsHash(steps []v1alpha1.Step) string {
	b, err := json.Marshal(steps)
	if err != nil {
		// Steps always marshal; a failure is a programming error.
		panic(fmt.Sprintf("marshal steps: %v", err))
	}
	h := fnv.New64a()
	h.Write(b)
	return strconv.FormatUint(h.Sum64(), 36)
}
