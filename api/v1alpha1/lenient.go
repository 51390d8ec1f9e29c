package v1alpha1

import (
	"encoding/json"

	"k8s.io/apimachinery/pkg/util/intstr"
)

// The schema bounds every int-or-string field, but an object stored before
// the bounds were there (or with the schema bypassed) may still hold a number
// past int32. intstr.IntOrString refuses to decode it, and one such object
// would fail the informer's LIST of every object of its kind: no Rollout in
// the cluster would progress. The types holding such fields decode them
// leniently instead: a number that is not an int32 is kept as its text, a
// string, which the controller then refuses as a spec problem of that
// object alone (it is no count, limit, port name or pause it accepts).

// lenient decodes an int-or-string field that may hold any JSON number.
func lenient(raw json.RawMessage) (*intstr.IntOrString, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var v intstr.IntOrString
	if err := json.Unmarshal(raw, &v); err == nil {
		return &v, nil
	}
	var n json.Number // past int32, or not whole: kept as its text
	if err := json.Unmarshal(raw, &n); err != nil {
		return nil, err
	}
	return &intstr.IntOrString{Type: intstr.String, StrVal: n.String()}, nil
}

// UnmarshalJSON decodes a pause, taking any number as its duration.
func (p *Pause) UnmarshalJSON(b []byte) error {
	type plain Pause
	aux := struct {
		*plain
		Duration json.RawMessage `json:"duration,omitempty"`
	}{plain: (*plain)(p)}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	d, err := lenient(aux.Duration)
	p.Duration = d
	return err
}

// UnmarshalJSON decodes a service spec, taking any number as its target port.
func (s *ServiceSpec) UnmarshalJSON(b []byte) error {
	type plain ServiceSpec
	aux := struct {
		*plain
		TargetPort json.RawMessage `json:"targetPort,omitempty"`
	}{plain: (*plain)(s)}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	tp, err := lenient(aux.TargetPort)
	s.TargetPort = tp
	return err
}

// UnmarshalJSON decodes a metric, taking any number as its count or limits.
func (m *Metric) UnmarshalJSON(b []byte) error {
	type plain Metric
	aux := struct {
		*plain
		Count                   json.RawMessage `json:"count,omitempty"`
		FailureLimit            json.RawMessage `json:"failureLimit,omitempty"`
		InconclusiveLimit       json.RawMessage `json:"inconclusiveLimit,omitempty"`
		ConsecutiveErrorLimit   json.RawMessage `json:"consecutiveErrorLimit,omitempty"`
		ConsecutiveSuccessLimit json.RawMessage `json:"consecutiveSuccessLimit,omitempty"`
	}{plain: (*plain)(m)}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	var err error
	for _, f := range []struct {
		into **intstr.IntOrString
		raw  json.RawMessage
	}{
		{&m.Count, aux.Count},
		{&m.FailureLimit, aux.FailureLimit},
		{&m.InconclusiveLimit, aux.InconclusiveLimit},
		{&m.ConsecutiveErrorLimit, aux.ConsecutiveErrorLimit},
		{&m.ConsecutiveSuccessLimit, aux.ConsecutiveSuccessLimit},
	} {
		v, e := lenient(f.raw)
		if e != nil && err == nil {
			err = e
		}
		*f.into = v
	}
	return err
}
