package shadow

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/types"

	"github.com/tugboatdev/tugboat/traffic"
)

// Mirror is the copy of a production route's traffic that a preview
// receives: Percentage percent of the requests that meet Match go, as well,
// to Host:Port; the answers to the copies are dropped, and the copies lose
// RemoveHeaders on the preview's side (they arrive with the -shadow host).
type Mirror struct {
	// Owner names the preview in the VirtualService's record of additions,
	// so that no other owner removes its mirror.
	Owner         string
	Host          string
	Port          int32
	Percentage    int32
	Match         []traffic.RequestMatch
	RemoveHeaders []string
}

// Target is where a preview's copies go: its Service.
type Target struct {
	Namespace, Service string
	Port               int32
}

// Host is the Service's cluster-local name.
func (t Target) Host() string { return fmt.Sprintf("%s.%s.svc.cluster.local", t.Service, t.Namespace) }

// OwnerOf names a preview as an owner of mirror routes; no Rollout's name
// (a DNS subdomain) can take this form.
func OwnerOf(namespace, name string) string { return "preview:" + namespace + "/" + name }

// PreviewOf names the preview an owner of mirror routes is, if it is one.
func PreviewOf(owner string) (types.NamespacedName, bool) {
	rest, ok := strings.CutPrefix(owner, "preview:")
	ns, name, found := strings.Cut(rest, "/")
	if !ok || !found || ns == "" || name == "" {
		return types.NamespacedName{}, false
	}
	return types.NamespacedName{Namespace: ns, Name: name}, true
}

// Plan is the mirror an allowed request puts on the route: only the
// methods asked for, each combined with every extra match (any of them
// holding copies the request).
func Plan(r Request, d Decision, to Target, extra []traffic.RequestMatch) Mirror {
	m := Mirror{
		Owner: OwnerOf(r.Namespace, r.Name), Host: to.Host(), Port: to.Port,
		Percentage: r.Percentage, RemoveHeaders: d.RemoveHeaders,
	}
	for _, method := range methods(r.Methods) {
		byMethod := &traffic.ValueMatch{Kind: traffic.Exact, Value: method}
		if len(extra) == 0 {
			m.Match = append(m.Match, traffic.RequestMatch{Method: byMethod})
			continue
		}
		for _, e := range extra {
			e.Method = byMethod // the preview's methods, never another
			m.Match = append(m.Match, e)
		}
	}
	return m
}
