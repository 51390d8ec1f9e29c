package convert

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
)

// tracker records which fields of a source object a conversion carried
// over, so that every other field set in it becomes a finding.
type tracker struct {
	raw  map[string]any
	used map[string]bool
	// reasons explain fields Tugboat has no place for, by path with list
	// indices written [] (spec.strategy.canary.steps[].experiment); a key
	// ending in .* covers every field under it.
	reasons map[string]string
}

func newTracker(raw map[string]any, reasons map[string]string) *tracker {
	t := &tracker{raw: raw, used: map[string]bool{"apiVersion": true, "kind": true, "status": true}, reasons: reasons}
	return t
}

// use marks paths (and everything under them) as carried over.
func (t *tracker) use(paths ...string) {
	for _, p := range paths {
		t.used[p] = true
	}
}

// useSame marks as carried over every field under path whose value out
// holds unchanged at the same place.
func (t *tracker) useSame(path string, raw, out any) {
	switch r := raw.(type) {
	case map[string]any:
		o, ok := out.(map[string]any)
		if !ok {
			return
		}
		for k, v := range r {
			t.useSame(join(path, k), v, o[k])
		}
	case []any:
		o, ok := out.([]any)
		if !ok || len(o) != len(r) {
			return
		}
		for i, v := range r {
			t.useSame(fmt.Sprintf("%s[%d]", path, i), v, o[i])
		}
	default:
		if reflect.DeepEqual(raw, out) {
			t.used[path] = true
		}
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// leftovers reports every field set in the source and not carried over,
// each at the outermost field none of whose parts was.
func (t *tracker) leftovers(c *converter, d *doc) {
	for _, p := range t.unused("", t.raw) {
		c.find(d, p, "%s", t.reason(p))
	}
}

func (t *tracker) unused(path string, v any) []string {
	if t.used[path] {
		return nil
	}
	if v == nil {
		return nil // an empty YAML key sets nothing
	}
	if path != "" && !t.usedUnder(path) {
		m, isMap := v.(map[string]any)
		if isMap && len(m) == 0 {
			return nil
		}
		if !isMap || !t.reasonUnder(path) {
			return []string{path}
		}
	}
	var out []string
	switch v := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			out = append(out, t.unused(join(path, k), v[k])...)
		}
	case []any:
		for i, e := range v {
			out = append(out, t.unused(fmt.Sprintf("%s[%d]", path, i), e)...)
		}
	}
	return out
}

func (t *tracker) usedUnder(path string) bool {
	for p := range t.used {
		if strings.HasPrefix(p, path+".") || strings.HasPrefix(p, path+"[") {
			return true
		}
	}
	return false
}

// reasonUnder reports whether a field under path, but not path itself, has
// a reason of its own, so that the finding names that field.
func (t *tracker) reasonUnder(path string) bool {
	p := index.ReplaceAllString(path, "[]")
	if _, ok := t.reasons[p]; ok {
		return false
	}
	if _, ok := t.reasons[p+".*"]; ok {
		return false
	}
	for k := range t.reasons {
		if strings.HasPrefix(k, p+".") || strings.HasPrefix(k, p+"[") {
			return true
		}
	}
	return false
}

var index = regexp.MustCompile(`\[\d+\]`)

func (t *tracker) reason(path string) string {
	p := index.ReplaceAllString(path, "[]")
	if r, ok := t.reasons[p]; ok {
		return r
	}
	for q := p; ; {
		i := strings.LastIndexAny(q, ".[")
		if i < 0 {
			break
		}
		q = q[:i]
		if r, ok := t.reasons[q+".*"]; ok {
			return r
		}
	}
	return "Tugboat has no such field; it was not carried over"
}
