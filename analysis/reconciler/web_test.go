package reconciler_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tugboatdev/tugboat/analysis/reconciler"
	"github.com/tugboatdev/tugboat/analysis/web"
	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/egress"
	"github.com/tugboatdev/tugboat/sandbox/cluster"
)

// TestWebMetricGates: a web metric that asks an approval endpoint holds
// its run until the endpoint says yes, with a token from a Secret that
// reaches the endpoint and never status; a url the controller does not
// allow is refused with the reason.
func TestWebMetricGates(t *testing.T) {
	env := cluster.Start(t)
	var approved atomic.Bool
	var asked atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer s3cret" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		asked.Add(1)
		// It echoes the token, as servers that return what they were sent do.
		_ = json.NewEncoder(w).Encode(map[string]any{"release": r.URL.Query().Get("release"), "approved": approved.Load(), "auth": r.Header.Get("Authorization")})
	}))
	defer srv.Close()

	secrets := func(context.Context, string, string) (map[string][]byte, error) {
		return map[string][]byte{"token": []byte("s3cret")}, nil
	}
	startAnalysis(t, env, &reconciler.Reconciler{
		Measurer: &measurer{}, Secrets: secrets,
		Web: &web.Provider{Guard: egress.Guard{AllowLoopback: true}},
	})

	gate := func(url string) v1alpha1.Metric {
		return v1alpha1.Metric{
			Name: "approval", Interval: "1s",
			SuccessCondition:        "result.approved == true",
			FailureLimit:            ptr.To(intstr.FromInt32(-1)),
			ConsecutiveSuccessLimit: ptr.To(intstr.FromInt32(1)),
			Provider: v1alpha1.MetricProvider{Web: &v1alpha1.WebMetric{
				URL:      url,
				Headers:  []v1alpha1.WebHeader{{Key: "Authorization", Value: "Bearer {{args.token}}"}},
				JSONPath: "{$}",
			}},
		}
	}
	args := []argo.Argument{{Name: "release", Value: ptr.To("v2&x=1")}, {Name: "token", ValueFrom: &argo.ValueFrom{SecretKeyRef: &argo.SecretKeyRef{Name: "approvals", Key: "token"}}}}
	for name, url := range map[string]string{"approval": srv.URL + "/approve?release={{args.release}}", "elsewhere": "http://approvals.example.com/approve"} {
		run := &v1alpha1.AnalysisRun{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
			Spec: v1alpha1.AnalysisRunSpec{Args: args, Metrics: []v1alpha1.Metric{gate(url)}}}
		if err := env.Client.Create(t.Context(), run); err != nil {
			t.Fatal(err)
		}
	}
	get := func(name string) *v1alpha1.AnalysisRun {
		var run v1alpha1.AnalysisRun
		if err := env.Client.Get(t.Context(), client.ObjectKey{Namespace: "default", Name: name}, &run); err != nil {
			t.Fatal(err)
		}
		return &run
	}
	until := func(what, name string, cond func(*v1alpha1.AnalysisRun) bool) *v1alpha1.AnalysisRun {
		t.Helper()
		var run *v1alpha1.AnalysisRun
		if err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
			run = get(name)
			return cond(run), nil
		}); err != nil {
			t.Fatalf("%s: %+v", what, run.Status)
		}
		return run
	}

	// Held: the endpoint says no, again and again.
	run := until("two answers of no", "approval", func(r *v1alpha1.AnalysisRun) bool {
		return len(r.Status.MetricResults) == 1 && r.Status.MetricResults[0].Failed >= 2
	})
	if run.Status.Phase.Completed() {
		t.Fatalf("the gate did not hold: %+v", run.Status)
	}
	res := run.Status.MetricResults[0]
	if m := res.Measurements[0]; m.Value != `{"approved":false,"auth":"Bearer REDACTED","release":"v2&x=1"}` {
		t.Errorf("measurement %+v, want the answer with the release argument carried as one value", m)
	}
	if got := res.Metadata["ResolvedWebRequest"]; !strings.HasPrefix(got, "GET "+srv.URL+"/approve?release=v2%26x%3D1") {
		t.Errorf("the request shown: %q", got)
	}
	// Then yes.
	approved.Store(true)
	run = until("Successful", "approval", func(r *v1alpha1.AnalysisRun) bool { return r.Status.Phase.Completed() })
	if run.Status.Phase != argo.AnalysisPhaseSuccessful {
		t.Errorf("after the approval: %+v", run.Status)
	}
	if b, _ := json.Marshal(run.Status); strings.Contains(string(b), "s3cret") {
		t.Errorf("status shows the Secret's token: %s", b)
	}

	// A url the controller does not allow.
	other := until("an error measurement", "elsewhere", func(r *v1alpha1.AnalysisRun) bool {
		return len(r.Status.MetricResults) == 1 && len(r.Status.MetricResults[0].Measurements) > 0
	})
	if m := other.Status.MetricResults[0].Measurements[0]; m.Phase != argo.AnalysisPhaseError || !strings.Contains(m.Message, "--web-allowed-hosts") {
		t.Errorf("a url not allowed: %+v", m)
	}
	if n := asked.Load(); n < 3 {
		t.Errorf("the endpoint was asked %d times", n)
	}
}
