// Package convert turns Argo Rollouts' and Flagger's objects into Tugboat's:
// an Argo Rollout into a Deployment and a Rollout, Argo's AnalysisTemplates
// into Tugboat's, a Flagger Canary into a Rollout, the AnalysisTemplates its
// metrics need and the VirtualService Flagger generated, and a Flagger
// MetricTemplate into an AnalysisTemplate. Every field of a source object
// that is not carried over is reported as a Finding, so nothing is dropped
// without a word. Objects of other kinds (Services, VirtualServices,
// Gateways, Deployments) are passed through as they are.
//
// It is pure: its input is a YAML stream and its output values.
package convert

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// Finding is one thing that could not be carried over, or that needs doing
// by hand, named by the source object and the field it is about.
type Finding struct {
	// Object is the source object, as Kind/name.
	Object string `json:"object"`
	// Field is the source object's field, such as spec.strategy.blueGreen.
	Field string `json:"field"`
	// Message says what was not carried over and what to do instead.
	Message string `json:"message"`
}

func (f Finding) String() string { return f.Object + ": " + f.Field + ": " + f.Message }

// Result is what a stream converts into.
type Result struct {
	// Objects are the objects to apply, in the order of the documents they
	// came from.
	Objects []*unstructured.Unstructured
	// Findings are what could not be carried over.
	Findings []Finding
	// Documents is how many documents the stream held.
	Documents int
}

// doc is one object of the input.
type doc struct {
	index int
	raw   map[string]any
	// out is what the object converts into; nil passes raw through.
	out       []*unstructured.Unstructured
	converted bool
}

func (d *doc) kind() string       { s, _ := d.raw["kind"].(string); return s }
func (d *doc) apiVersion() string { s, _ := d.raw["apiVersion"].(string); return s }
func (d *doc) group() string {
	g, _, ok := strings.Cut(d.apiVersion(), "/")
	if !ok {
		return ""
	}
	return g
}
func (d *doc) name() string      { return str(d.raw, "metadata", "name") }
func (d *doc) namespace() string { return str(d.raw, "metadata", "namespace") }
func (d *doc) ref() string       { return d.kind() + "/" + d.name() }

// converter holds the whole stream, so that one object's conversion can
// read another (a Rollout's Services, a Canary's MetricTemplates).
type converter struct {
	docs     []*doc
	findings []Finding
}

// Convert converts a stream of YAML (or JSON) documents. It fails only on
// input it cannot read: a document that is not YAML, or an object whose
// fields have the wrong types.
func Convert(stream []byte) (Result, error) {
	c := &converter{}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(stream)))
	for n := 1; ; n++ {
		b, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Result{}, fmt.Errorf("document %d: %w", n, err)
		}
		var raw map[string]any
		if err := yaml.Unmarshal(b, &raw); err != nil {
			return Result{}, fmt.Errorf("document %d: %w", n, err)
		}
		if len(raw) == 0 {
			continue // only comments, or empty
		}
		if err := c.add(n, raw); err != nil {
			return Result{}, err
		}
	}
	for _, d := range c.docs {
		if err := c.convert(d); err != nil {
			return Result{}, fmt.Errorf("document %d (%s): %w", d.index, d.ref(), err)
		}
	}
	res := Result{Findings: c.findings, Documents: len(c.docs)}
	for _, d := range c.docs {
		if d.converted {
			res.Objects = append(res.Objects, d.out...)
			continue
		}
		res.Objects = append(res.Objects, &unstructured.Unstructured{Object: d.raw})
	}
	return res, nil
}

// add records a document, each item of a List on its own.
func (c *converter) add(n int, raw map[string]any) error {
	if raw["kind"] == "List" {
		items, _ := raw["items"].([]any)
		for i, it := range items {
			m, ok := it.(map[string]any)
			if !ok {
				return fmt.Errorf("document %d: items[%d]: not an object", n, i)
			}
			if err := c.add(n, m); err != nil {
				return err
			}
		}
		return nil
	}
	d := &doc{index: n, raw: raw}
	if d.kind() == "" || d.apiVersion() == "" {
		return fmt.Errorf("document %d: apiVersion and kind are required", n)
	}
	c.docs = append(c.docs, d)
	return nil
}

func (c *converter) convert(d *doc) error {
	switch d.group() {
	case "argoproj.io":
		switch d.kind() {
		case "Rollout":
			return c.argoRollout(d)
		case "AnalysisTemplate", "ClusterAnalysisTemplate":
			return c.argoTemplate(d)
		}
		d.converted = true
		c.find(d, "kind", "Tugboat has no %s; it was left out", d.kind())
	case "flagger.app":
		switch d.kind() {
		case "Canary":
			return c.flaggerCanary(d)
		case "MetricTemplate":
			return c.flaggerMetricTemplate(d)
		}
		d.converted = true
		msg := "Tugboat has no " + d.kind() + "; it was left out"
		if d.kind() == "AlertProvider" {
			msg += ": send events with a NotificationProvider and the Rollout's spec.notifications (examples/notifications)"
		}
		c.find(d, "kind", "%s", msg)
	}
	return nil
}

func (c *converter) find(d *doc, field, format string, args ...any) {
	c.findings = append(c.findings, Finding{Object: d.ref(), Field: field, Message: fmt.Sprintf(format, args...)})
}

// lookup finds a document of the stream by kind, namespace and name; an
// empty namespace matches any.
func (c *converter) lookup(group, kind, namespace, name string) *doc {
	for _, d := range c.docs {
		if d.group() == group && d.kind() == kind && d.name() == name && (namespace == "" || d.namespace() == "" || d.namespace() == namespace) {
			return d
		}
	}
	return nil
}

// decode reads raw into a typed value through JSON, naming the object when
// a field has the wrong type.
func decode(raw map[string]any, into any) error {
	b, err := json.Marshal(raw)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, into)
}

// object turns a typed object into an unstructured one, without its status
// or empty creation timestamps.
func object(v any) (*unstructured.Unstructured, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	delete(m, "status")
	prune(m)
	return &unstructured.Unstructured{Object: m}, nil
}

// prune removes null creationTimestamps and empty metadata, which typed
// objects marshal and nobody writes.
func prune(m map[string]any) {
	for k, v := range m {
		switch v := v.(type) {
		case nil:
			if k == "creationTimestamp" {
				delete(m, k)
			}
		case map[string]any:
			prune(v)
			if len(v) == 0 && k == "metadata" {
				delete(m, k)
			}
		case []any:
			for _, it := range v {
				if im, ok := it.(map[string]any); ok {
					prune(im)
				}
			}
		}
	}
}

// at returns the value at a path of keys, or nil.
func at(m map[string]any, keys ...string) any {
	var v any = m
	for _, k := range keys {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[k]
	}
	return v
}

func str(m map[string]any, keys ...string) string { s, _ := at(m, keys...).(string); return s }

// deepCopy copies a JSON value.
func deepCopy(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = deepCopy(e)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = deepCopy(e)
		}
		return out
	}
	return v
}

// meta is the metadata a converted object keeps of its source: name,
// namespace, labels and annotations (but kubectl's last applied
// configuration, which describes the source).
func meta(t *tracker, raw map[string]any) map[string]any {
	out := map[string]any{}
	for _, k := range []string{"name", "namespace", "labels", "annotations"} {
		v := at(raw, "metadata", k)
		if v == nil {
			continue
		}
		if k == "annotations" {
			a, _ := deepCopy(v).(map[string]any)
			delete(a, "kubectl.kubernetes.io/last-applied-configuration")
			if len(a) == 0 {
				continue
			}
			v = a
		}
		out[k] = deepCopy(v)
	}
	t.use("metadata")
	return out
}
