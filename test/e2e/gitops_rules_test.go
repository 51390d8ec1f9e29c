package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/itchyny/gojq"
	"sigs.k8s.io/yaml"

	"github.com/tugboatdev/tugboat/sandbox/toolchain"
)

// rule is one entry of a GitOps tool's ignore rules: JSON pointers, or one
// jq path expression, and the objects it applies to.
type rule struct {
	from              string // where it is written, for messages
	group, kind, name string
	pointers          []string
	jq                string
	match             func(kept) bool
}

// argoMatch matches objects as Argo CD does for an ignoreDifferences entry:
// group and kind, and name when it is set.
func (r rule) argoMatch(o kept) bool {
	return o.group == r.group && o.kind == r.kind && (r.name == "" || o.name == r.name)
}

// check reports whether r names only fields Tugboat writes, over every
// snapshot: each of its pointers (or its expression) selects a value; every
// value it selects is tugboat's; and one of them at least differs from what
// git holds.
func (r rule) check(snapshots ...[]kept) error {
	selectors := r.pointers
	if r.jq != "" {
		selectors = []string{r.jq}
	}
	changed := 0
	for _, sel := range selectors {
		selected := 0
		for _, objects := range snapshots {
			for _, o := range objects {
				if !r.match(o) {
					continue
				}
				paths, err := r.paths(sel, o)
				if err != nil {
					return err
				}
				for _, p := range paths {
					v, ok := lookup(o.live, p)
					if !ok {
						continue
					}
					selected++
					if !ownsAll(o.owned, o.live, p, v) {
						return fmt.Errorf("%s: %s of %s is not tugboat's", r.from, showPath(p), o)
					}
					if g, ok := lookup(o.git, p); !ok || !reflect.DeepEqual(g, v) {
						changed++
					}
				}
			}
		}
		if selected == 0 {
			return fmt.Errorf("%s: %s selects nothing on the objects git holds", r.from, sel)
		}
	}
	if changed == 0 {
		return fmt.Errorf("%s selects only values git holds: Tugboat changed none of them", r.from)
	}
	return nil
}

// paths are the paths sel, a pointer or r's expression, selects on o,
// live. An expression must also run on what git holds, as Argo CD runs it
// on both.
func (r rule) paths(sel string, o kept) ([][]any, error) {
	if r.jq == "" {
		p, err := parsePointer(sel)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", r.from, err)
		}
		return [][]any{p}, nil
	}
	q, err := gojq.Parse("path(" + sel + ")")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r.from, err)
	}
	var out [][]any
	for _, doc := range []any{o.git, o.live} {
		out = nil
		it := q.Run(doc)
		for {
			v, ok := it.Next()
			if !ok {
				break
			}
			if err, ok := v.(error); ok {
				return nil, fmt.Errorf("%s on %s: %w", r.from, o, err)
			}
			out = append(out, v.([]any))
		}
	}
	return out, nil
}

// sameSpec checks that o's spec, live, is git's once both lose what the
// rules that apply to o select, as the tools remove it before they compare.
// An object no rule applies to is left out.
func sameSpec(rules []rule, o kept) error {
	live, git := cloneDoc(o.live), cloneDoc(o.git)
	applied := false
	for _, r := range rules {
		if !r.match(o) {
			continue
		}
		applied = true
		for _, doc := range []*any{&live, &git} {
			if err := r.remove(doc); err != nil {
				return fmt.Errorf("%s on %s: %w", r.from, o, err)
			}
		}
	}
	ls, gs := live.(map[string]any)["spec"], git.(map[string]any)["spec"]
	if applied && !reflect.DeepEqual(ls, gs) {
		l, _ := json.Marshal(ls)
		g, _ := json.Marshal(gs)
		return fmt.Errorf("%s differs from git with the rules applied:\n live %s\n git  %s", o, l, g)
	}
	return nil
}

// remove takes what r selects out of doc: del(expression), or each
// pointer's member, where it is there.
func (r rule) remove(doc *any) error {
	if r.jq != "" {
		q, err := gojq.Parse("del(" + r.jq + ")")
		if err != nil {
			return err
		}
		v, _ := q.Run(*doc).Next()
		if err, ok := v.(error); ok {
			return err
		}
		*doc = v
		return nil
	}
	for _, p := range r.pointers {
		path, err := parsePointer(p)
		if err != nil || len(path) == 0 {
			return fmt.Errorf("pointer %q: %v", p, err)
		}
		parent, ok := lookup(*doc, path[:len(path)-1])
		if !ok {
			continue
		}
		node, ok := parent.(map[string]any)
		if !ok {
			return fmt.Errorf("pointer %q: only object members are taken out here", p)
		}
		delete(node, path[len(path)-1].(string))
	}
	return nil
}

func cloneDoc(doc any) any {
	raw, _ := json.Marshal(doc)
	var out any
	_ = json.Unmarshal(raw, &out)
	return out
}

// parsePointer splits an RFC 6901 JSON pointer into its unescaped tokens.
func parsePointer(p string) ([]any, error) {
	if p == "" {
		return nil, nil
	}
	if !strings.HasPrefix(p, "/") {
		return nil, fmt.Errorf("json pointer %q does not start with /", p)
	}
	var out []any
	for _, tok := range strings.Split(p[1:], "/") {
		out = append(out, strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~"))
	}
	return out, nil
}

// lookup is the value at path in doc. A path's tokens are object keys, or
// array indices as ints (gojq's paths) or as decimal strings (a pointer's).
func lookup(doc any, path []any) (any, bool) {
	for _, tok := range path {
		switch node := doc.(type) {
		case map[string]any:
			key, ok := tok.(string)
			if !ok {
				return nil, false
			}
			if doc, ok = node[key]; !ok {
				return nil, false
			}
		case []any:
			i, ok := arrayIndex(tok)
			if !ok || i >= len(node) {
				return nil, false
			}
			doc = node[i]
		default:
			return nil, false
		}
	}
	return doc, true
}

func arrayIndex(tok any) (int, bool) {
	switch tok := tok.(type) {
	case int:
		return tok, tok >= 0
	case string:
		i, err := strconv.Atoi(tok)
		return i, err == nil && i >= 0 && strconv.Itoa(i) == tok
	}
	return 0, false
}

// ownsAll reports whether the fieldsV1 set fields owns the value v at path
// in doc whole: every field in it, or an atomic field (a leaf of the set,
// as a list without keys is) that holds it.
func ownsAll(fields map[string]any, doc any, path []any, v any) bool {
	node := fields
	for _, tok := range path {
		if len(node) == 0 {
			return true // an atomic field holds the rest
		}
		var ok bool
		if node, doc, ok = fieldsChild(node, doc, tok); !ok {
			return false
		}
	}
	return ownsValue(node, v)
}

func ownsValue(node map[string]any, v any) bool {
	if len(node) == 0 {
		return true
	}
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			child, ok := node["f:"+k].(map[string]any)
			if !ok || !ownsValue(child, x) {
				return false
			}
		}
	case []any:
		for i, x := range v {
			child, _, ok := fieldsChild(node, v, i)
			if !ok || !ownsValue(child, x) {
				return false
			}
		}
	}
	return true
}

// fieldsChild goes from a fieldsV1 node and the value it describes to the child
// named by tok: a field, or an element of a list with keys (k:) or a set
// (v:).
func fieldsChild(node map[string]any, doc any, tok any) (map[string]any, any, bool) {
	switch d := doc.(type) {
	case map[string]any:
		key, _ := tok.(string)
		child, ok := node["f:"+key].(map[string]any)
		return child, d[key], ok
	case []any:
		i, ok := arrayIndex(tok)
		if !ok || i >= len(d) {
			return nil, nil, false
		}
		elem := d[i]
		if raw, err := json.Marshal(elem); err == nil {
			if child, ok := node["v:"+string(raw)].(map[string]any); ok {
				return child, elem, true
			}
		}
		for key, child := range node {
			var keys map[string]any
			if !strings.HasPrefix(key, "k:") || json.Unmarshal([]byte(key[2:]), &keys) != nil {
				continue
			}
			m, _ := elem.(map[string]any)
			same := m != nil
			for k, want := range keys {
				same = same && reflect.DeepEqual(m[k], want)
			}
			if c, ok := child.(map[string]any); same && ok {
				return c, elem, true
			}
		}
	}
	return nil, nil, false
}

func showPath(path []any) string {
	var b strings.Builder
	for _, tok := range path {
		fmt.Fprintf(&b, "/%v", tok)
	}
	return b.String()
}

// argoRules are the entries of config/argocd/ignore-differences.yaml: one
// rule for an entry's JSON pointers, one for each of its expressions.
func argoRules(t *testing.T) []rule {
	t.Helper()
	var app struct {
		Spec struct {
			IgnoreDifferences []struct {
				Group                 string   `json:"group"`
				Kind                  string   `json:"kind"`
				Name                  string   `json:"name"`
				Namespace             string   `json:"namespace"`
				JSONPointers          []string `json:"jsonPointers"`
				JQPathExpressions     []string `json:"jqPathExpressions"`
				ManagedFieldsManagers []string `json:"managedFieldsManagers"`
			} `json:"ignoreDifferences"`
		} `json:"spec"`
	}
	readConfig(t, "config/argocd/ignore-differences.yaml", &app)
	var out []rule
	for _, e := range app.Spec.IgnoreDifferences {
		if e.Namespace != "" || len(e.ManagedFieldsManagers) > 0 {
			t.Fatalf("argocd %s: namespace and managedFieldsManagers are not checked here", e.Kind)
		}
		base := rule{group: e.Group, kind: e.Kind, name: e.Name}
		if len(e.JSONPointers) > 0 {
			r := base
			r.from, r.pointers = "argocd/"+e.Kind+" "+strings.Join(e.JSONPointers, ","), e.JSONPointers
			out = append(out, r)
		}
		for _, q := range e.JQPathExpressions {
			r := base
			r.from, r.jq = "argocd/"+e.Kind+" "+q, q
			out = append(out, r)
		}
	}
	for i := range out {
		out[i].match = out[i].argoMatch
	}
	if len(out) == 0 {
		t.Fatal("config/argocd/ignore-differences.yaml has no rules")
	}
	return out
}

// fluxSelector is a Flux ignore rule's target; its fields are anchored
// regular expressions, and an empty one matches anything.
type fluxSelector struct {
	Group     string `json:"group"`
	Version   string `json:"version"`
	Kind      string `json:"kind"`
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
}

type fluxIgnore struct {
	Paths  []string      `json:"paths"`
	Target *fluxSelector `json:"target"`
}

// fluxRules are the rules of the HelmRelease's spec.driftDetection.ignore
// and the Kustomization's spec.ignore in config/flux.
func fluxRules(t *testing.T) []rule {
	t.Helper()
	var hr struct {
		Spec struct {
			DriftDetection struct {
				Ignore []fluxIgnore `json:"ignore"`
			} `json:"driftDetection"`
		} `json:"spec"`
	}
	readConfig(t, "config/flux/helmrelease.yaml", &hr)
	var ks struct {
		Spec struct {
			Ignore []fluxIgnore `json:"ignore"`
		} `json:"spec"`
	}
	readConfig(t, "config/flux/flux-kustomization.yaml", &ks)
	var out []rule
	for _, file := range []struct {
		name  string
		rules []fluxIgnore
	}{{"helmrelease.yaml", hr.Spec.DriftDetection.Ignore}, {"flux-kustomization.yaml", ks.Spec.Ignore}} {
		if len(file.rules) == 0 {
			t.Fatalf("config/flux/%s has no ignore rules", file.name)
		}
		for _, ig := range file.rules {
			if ig.Target == nil || ig.Target.Kind == "" || ig.Target.Name == "" || ig.Target.Version != "" || ig.Target.Namespace != "" {
				t.Fatalf("config/flux/%s: each rule here names its target by kind and name alone", file.name)
			}
			out = append(out, rule{from: "flux/" + file.name + "/" + ig.Target.Kind + " " + ig.Target.Name, pointers: ig.Paths, match: fluxMatch(t, *ig.Target)})
		}
	}
	return out
}

func fluxMatch(t *testing.T, s fluxSelector) func(kept) bool {
	t.Helper()
	anchored := func(expr string) *regexp.Regexp {
		if expr == "" {
			return nil
		}
		re, err := regexp.Compile("^(?:" + expr + ")$")
		if err != nil {
			t.Fatal(err)
		}
		return re
	}
	group, kind, name := anchored(s.Group), anchored(s.Kind), anchored(s.Name)
	matches := func(re *regexp.Regexp, v string) bool { return re == nil || re.MatchString(v) }
	return func(o kept) bool {
		return matches(group, o.group) && matches(kind, o.kind) && matches(name, o.name)
	}
}

func readConfig(t *testing.T, file string, into any) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(toolchain.Root(), file))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, into); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}
