package reconciler_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/notify"
)

// inbox is a webhook receiver that keeps the notifications it gets.
type inbox struct {
	mu  sync.Mutex
	got []notify.Event
	ids []string
}

func (f *fixture) inbox(provider string) *inbox {
	f.t.Helper()
	in := &inbox{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var e notify.Event
		if err := json.NewDecoder(r.Body).Decode(&e); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		in.mu.Lock()
		in.got = append(in.got, e)
		in.ids = append(in.ids, r.Header.Get("X-Tugboat-Id"))
		in.mu.Unlock()
	}))
	f.t.Cleanup(srv.Close)
	np := &v1alpha1.NotificationProvider{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: provider},
		Spec:       v1alpha1.NotificationProviderSpec{Type: v1alpha1.NotifyWebhook, Address: srv.URL},
	}
	if err := f.c.Create(f.t.Context(), np); err != nil {
		f.t.Fatal(err)
	}
	return in
}

func (in *inbox) names() []string {
	in.mu.Lock()
	defer in.mu.Unlock()
	var out []string
	for _, e := range in.got {
		out = append(out, e.Name)
	}
	return out
}

func (in *inbox) find(name string) notify.Event {
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, e := range in.got {
		if e.Name == name {
			return e
		}
	}
	return notify.Event{}
}

// waitFor polls until the inbox holds every one of names.
func (f *fixture) waitFor(in *inbox, names ...string) {
	f.t.Helper()
	if err := pollUntil(f.t, 30*time.Second, func() bool {
		got := in.names()
		for _, n := range names {
			if !slices.Contains(got, n) {
				return false
			}
		}
		return true
	}); err != nil {
		f.t.Fatalf("waiting for notifications %v: got %v", names, in.names())
	}
}

// A rollout's story arrives as notifications, in order, once each: started,
// the steps, the wait for a person (with the command that goes on), the
// promotion.
func TestNotificationsTellTheRollout(t *testing.T) {
	f := given(t)
	in := f.inbox("team")
	f.app("nt", 1, managedRoute("nt"))
	ro := newRollout("nt", weight(20), pause(""))
	ro.Spec.Notifications = []v1alpha1.Notification{{ProviderRef: v1alpha1.LocalObjectReference{Name: "team"}}}
	f.rollout(ro)
	f.eventually("nt", "initialized", time.Minute, hasReason("Healthy"))
	rev := f.release("nt", "v2")
	f.waitFor(in, notify.Paused)
	paused := in.find(notify.Paused)
	if paused.Revision != rev || ptr.Deref(paused.Step, -1) != 1 || paused.Steps != 2 || ptr.Deref(paused.Weight, -1) != 20 || paused.Reason != "WaitingForPromotion" {
		t.Errorf("paused: %+v: want revision %s at step 1 of 2, weight 20", paused, rev)
	}
	if !slices.Contains(paused.Next, "kubectl tug promote nt -n "+f.ns) {
		t.Errorf("paused: next %v: want the promote command", paused.Next)
	}
	f.annotate("nt", v1alpha1.AnnotationPromote, "p1")
	f.waitFor(in, notify.Promoted)
	want := []string{notify.Started, notify.StepAdvanced, notify.Paused, notify.StepAdvanced, notify.Promoted}
	if got := in.names(); !slices.Equal(got, want) {
		t.Errorf("notifications %v: want %v", got, want)
	}
	in.mu.Lock()
	ids := slices.Clone(in.ids)
	in.mu.Unlock()
	slices.Sort(ids)
	if len(slices.Compact(ids)) != len(want) {
		t.Errorf("ids %v: want one per notification", in.ids)
	}
	if p := in.find(notify.Promoted); p.Revision != rev || p.Object.Kind != "Rollout" || p.Object.Name != "nt" {
		t.Errorf("promoted: %+v", p)
	}
}

// An analysis that fails tells subscribers of aborted and analysisFailed
// with what was measured, and nothing they did not ask for.
func TestNotificationsOfAFailedAnalysis(t *testing.T) {
	f := given(t)
	in := f.inbox("oncall")
	successRate.WithLabelValues("nf").Set(0.5)
	f.scraped("nf")
	f.backgroundTemplate("failing", `tugboat_test_success_rate{workload="nf"}`)
	f.app("nf", 1, managedRoute("nf"))
	ro := newRollout("nf", weight(20), pause(""))
	ro.Spec.Analysis = &v1alpha1.BackgroundAnalysis{Analysis: v1alpha1.Analysis{
		Templates: []v1alpha1.AnalysisTemplateRef{{TemplateName: "failing"}},
	}}
	ro.Spec.Notifications = []v1alpha1.Notification{{ProviderRef: v1alpha1.LocalObjectReference{Name: "oncall"}, Events: []string{notify.Aborted, notify.AnalysisFailed}}}
	f.rollout(ro)
	f.eventually("nf", "initialized", time.Minute, hasReason("Healthy"))
	f.release("nf", "v2")
	f.eventually("nf", "aborted", time.Minute, hasReason("AnalysisFailed"))
	f.waitFor(in, notify.Aborted, notify.AnalysisFailed)
	aborted := in.find(notify.Aborted)
	if aborted.Reason != "AnalysisFailed" || !slices.Contains(aborted.Next, "kubectl tug retry nf -n "+f.ns) {
		t.Errorf("aborted: %+v", aborted)
	}
	failed := in.find(notify.AnalysisFailed)
	if len(failed.Findings) != 1 || failed.Findings[0].Metric != "success-rate" || !strings.Contains(failed.Findings[0].Value, "0.5") {
		t.Errorf("analysisFailed: %+v: want the metric and its value", failed)
	}
	for _, n := range in.names() {
		if n != notify.Aborted && n != notify.AnalysisFailed {
			t.Errorf("got %s, which the subscription does not name", n)
		}
	}
}
