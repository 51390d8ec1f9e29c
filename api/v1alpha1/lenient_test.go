package v1alpha1

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/util/intstr"
	kjson "sigs.k8s.io/json"
)

// A list holding one object with a number past int32 still decodes, as the
// informer decodes it: the number is kept as text, for the controller to
// refuse as that object's problem.
func TestListWithAnOverflowDecodes(t *testing.T) {
	const list = `{"items":[
	  {"metadata":{"name":"bad"},"spec":{"service":{"port":80,"targetPort":4294967296},
	    "steps":[{"pause":{"duration":4294967296}},{"pause":{"duration":1.5}},{"pause":{"duration":"30s"}},{"pause":{"duration":10}},{"pause":{}}]}},
	  {"metadata":{"name":"good"},"spec":{"service":{"port":80,"targetPort":"http"},"steps":[{"setWeight":10}]}}]}`
	var got RolloutList
	if err := kjson.UnmarshalCaseSensitivePreserveInts([]byte(list), &got); err != nil {
		t.Fatalf("decode: %v", err)
	}
	var durations []*intstr.IntOrString
	for _, s := range got.Items[0].Spec.Steps {
		durations = append(durations, s.Pause.Duration)
	}
	want := []*intstr.IntOrString{ptr(intstr.FromString("4294967296")), ptr(intstr.FromString("1.5")), ptr(intstr.FromString("30s")), ptr(intstr.FromInt32(10)), nil}
	if diff := cmp.Diff(want, durations); diff != "" {
		t.Errorf("durations (-want +got):\n%s", diff)
	}
	if tp := got.Items[0].Spec.Service.TargetPort; tp == nil || tp.StrVal != "4294967296" {
		t.Errorf("targetPort %v", tp)
	}
	if got.Items[1].Name != "good" || got.Items[1].Spec.Service.TargetPort.StrVal != "http" {
		t.Errorf("the other object: %+v", got.Items[1])
	}

	const tmpl = `{"spec":{"metrics":[{"name":"m","count":4294967296,"failureLimit":-1,"inconclusiveLimit":"{{args.i}}","provider":{"prometheus":{"query":"up"}}}]}}`
	var at AnalysisTemplate
	if err := json.Unmarshal([]byte(tmpl), &at); err != nil {
		t.Fatalf("decode template: %v", err)
	}
	m := at.Spec.Metrics[0]
	if m.Count.StrVal != "4294967296" || m.FailureLimit.IntVal != -1 || m.InconclusiveLimit.StrVal != "{{args.i}}" || m.Provider.Prometheus.Query != "up" {
		t.Errorf("metric %+v", m)
	}
	// What decodes leniently encodes as it came.
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var again Metric
	if err := json.Unmarshal(b, &again); err != nil || again.Count.StrVal != "4294967296" {
		t.Errorf("round trip: %v, %+v", err, again.Count)
	}
}

func ptr[T any](v T) *T { return &v }
