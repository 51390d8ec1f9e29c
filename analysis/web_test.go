package analysis

import (
	"encoding/json"
	"strings"
	"testing"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

func TestRenderWeb(t *testing.T) {
	args := Args{
		Values: map[string]string{"base": "https://approvals.example.com", "release": "a&b=c/d ?#", "token": "s3cret", "up": "..", "name": `x","evil":true,"y":"`},
		Secret: map[string]bool{"token": true},
	}
	for _, tt := range []struct {
		name    string
		web     v1alpha1.WebMetric
		wantURL string
		body    string
		wantErr string
	}{
		{name: "an argument stays within its path segment and query value",
			web:     v1alpha1.WebMetric{URL: "https://approvals.example.com/api/{{args.release}}?r={{ args.release }}"},
			wantURL: "https://approvals.example.com/api/a%26b%3Dc%2Fd%20%3F%23?r=a%26b%3Dc%2Fd%20%3F%23"},
		{name: "an argument that opens the url goes in as it is",
			web:     v1alpha1.WebMetric{URL: "{{args.base}}/api/{{args.release}}"},
			wantURL: "https://approvals.example.com/api/a%26b%3Dc%2Fd%20%3F%23"},
		{name: "a JSON body's strings take arguments without changing its structure",
			web:     v1alpha1.WebMetric{Method: "POST", URL: "https://h.example/", JSONBody: json.RawMessage(`{"release":"{{args.name}}","n":3}`)},
			wantURL: "https://h.example/", body: `{"n":3,"release":"x\",\"evil\":true,\"y\":\""}`},
		{name: "a text body takes arguments as they are, Secrets' too",
			web:     v1alpha1.WebMetric{Method: "POST", URL: "https://h.example/", Body: "token={{args.token}}"},
			wantURL: "https://h.example/", body: "token=s3cret"},
		{name: "integers past 2^53 stay as written in a JSON body",
			web:     v1alpha1.WebMetric{Method: "PUT", URL: "https://h.example/", JSONBody: json.RawMessage(`{"id":9007199254740993}`)},
			wantURL: "https://h.example/", body: `{"id":9007199254740993}`},
		{name: "no argument that is only dots", web: v1alpha1.WebMetric{URL: "https://h.example/api/{{args.up}}/admin"}, wantErr: `argument "up" is only dots`},
		{name: "no argument in a JSON body's key", web: v1alpha1.WebMetric{Method: "POST", URL: "https://h.example/", JSONBody: json.RawMessage(`{"{{args.name}}":1}`)}, wantErr: "arguments stand in values, not keys"},
		{name: "no argument in a text body sent as JSON", web: v1alpha1.WebMetric{Method: "POST", URL: "https://h.example/", Body: `{"r":"{{args.name}}"}`,
			Headers: []v1alpha1.WebHeader{{Key: "content-type", Value: "application/json"}}}, wantErr: "go in jsonBody"},
		{name: "no Secret in the url", web: v1alpha1.WebMetric{URL: "https://h.example/?t={{args.token}}"}, wantErr: "arguments from Secrets cannot be used in the url"},
		{name: "the url must stay http", web: v1alpha1.WebMetric{URL: "{{args.release}}/x"}, wantErr: "does not render to an http:// or https:// URL"},
		{name: "no user in the url", web: v1alpha1.WebMetric{URL: "https://user:pw@h.example/"}, wantErr: "with a host and no user"},
		{name: "an unknown argument", web: v1alpha1.WebMetric{URL: "https://h.example/{{args.nope}}"}, wantErr: `argument "nope" has no value`},
		{name: "no control characters in a header", web: v1alpha1.WebMetric{URL: "https://h.example/", Headers: []v1alpha1.WebHeader{{Key: "X-R", Value: "a\r\nX-Injected: 1"}}}, wantErr: "control characters"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, err := args.RenderWeb(tt.web)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "s3cret") {
					t.Errorf("the error shows a Secret's value: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if req.URL != tt.wantURL || string(req.Body) != tt.body {
				t.Errorf("url %s body %s, want %s and %s", req.URL, req.Body, tt.wantURL, tt.body)
			}
		})
	}
	req, err := args.RenderWeb(v1alpha1.WebMetric{URL: "https://h.example/", Headers: []v1alpha1.WebHeader{{Key: "Authorization", Value: "Bearer {{args.token}}"}}})
	if err != nil || req.Headers[0].Value != "Bearer s3cret" || req.Method != "GET" || req.Timeout != DefaultWebTimeout {
		t.Errorf("a Secret's token in a header: %+v, %v", req, err)
	}
}

func TestJudgeAWebAnswer(t *testing.T) {
	m := v1alpha1.Metric{Name: "approval", SuccessCondition: "result.approved == true", FailureCondition: "result.approved == false"}
	for _, tt := range []struct {
		answer any
		want   argo.AnalysisPhase
		value  string
	}{
		{map[string]any{"approved": true}, argo.AnalysisPhaseSuccessful, `{"approved":true}`},
		{map[string]any{"approved": false}, argo.AnalysisPhaseFailed, `{"approved":false}`},
		{map[string]any{"approved": nil}, argo.AnalysisPhaseInconclusive, `{"approved":null}`},
		{nil, argo.AnalysisPhaseInconclusive, ""},
	} {
		phase, value, msg := Judge(m, Sample{Web: true, Answer: tt.answer}, nil)
		if phase != tt.want || value != tt.value {
			t.Errorf("%v: %s %q (%s), want %s %q", tt.answer, phase, value, msg, tt.want, tt.value)
		}
	}
	n := v1alpha1.Metric{Name: "errors", SuccessCondition: "asFloat(result) < 0.05"}
	if phase, _, msg := Judge(n, Sample{Web: true, Answer: 0.01}, nil); phase != argo.AnalysisPhaseSuccessful {
		t.Errorf("a number: %s %s", phase, msg)
	}
}
