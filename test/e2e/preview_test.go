package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/sandbox/demo"
)

// TestPreviews: given production's podinfo with examples/preview's
// MirrorPolicy, when two pull requests' builds get Previews while a canary
// rolls out on the same route, then the bad build is Failed and the good
// one Succeeded; production's success rate is unchanged; no POST and no
// removed header reaches a preview; the Rollout and both Previews write
// the route without fighting; a Preview in a namespace the policy does not
// trust is Denied with the rule named; and an expired or deleted Preview's
// mirror is off the VirtualService at once.
func TestPreviews(t *testing.T) {
	s := given(t).theProduction("podinfo")
	if err := demo.AllowPreviews(t.Context(), box.Client(), box.Namespace); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	good := demo.PreviewBuild{Name: "good", Namespace: "e2e-pr-1", ErrorRate: "0.001", Want: demo.PreviewSucceeded}
	bad := demo.PreviewBuild{Name: "bad", Namespace: "e2e-pr-2", ErrorRate: "0.30", Want: demo.PreviewFailed}

	// When: a canary starts, and both builds are deployed with their Previews.
	canary := demo.Release{Name: "with previews", Image: "ghcr.io/stefanprodan/podinfo:6.7.9", ErrorRate: "0.001", LatencyMs: "45"}
	s.whenReleasedUntilStep(canary, 2)
	start := time.Now()
	for _, b := range []demo.PreviewBuild{good, bad} {
		if err := demo.DeployPreview(t.Context(), box.Client(), box.Namespace, b); err != nil {
			t.Fatal(err)
		}
	}
	s.previewsMirroring(good, bad)

	// Then: while the canary's analysis step runs, nobody rewrites the
	// route: the VirtualService's resourceVersion settles.
	s.virtualServiceSettles(8 * time.Second)

	results := map[string]demo.Result{}
	for _, b := range []demo.PreviewBuild{good, bad} {
		res, p, err := demo.FollowPreview(t.Context(), box.Client(), b, 3*time.Minute, &s.log)
		if err != nil {
			t.Fatal(err)
		}
		if res.Got != b.Want {
			t.Fatalf("%s build: %s (%s), want %s\n%s", b.Name, res.Got, res.Message, b.Want, s.log.String())
		}
		results[b.Name] = res
		if b.Want == demo.PreviewFailed && (p.Status.Analysis == nil || len(p.Status.Analysis.Metrics) == 0 ||
			p.Status.Analysis.Metrics[0].Value == "" || !strings.Contains(p.Status.Analysis.Metrics[0].Query, `reporter="destination"`)) {
			t.Errorf("the failed preview does not explain itself: %+v", p.Status.Analysis)
		}
	}
	end := time.Now()

	// Production's own success rate while the bad build received copies.
	before, err := demo.ProductionSuccessRate(t.Context(), box.Prometheus.URL, s.key, start.Add(-end.Sub(start)), start)
	if err != nil {
		t.Fatal(err)
	}
	during, err := demo.ProductionSuccessRate(t.Context(), box.Prometheus.URL, s.key, start, end)
	if err != nil {
		t.Fatal(err)
	}
	if d := during - before; d < -0.005 || d > 0.005 {
		t.Errorf("production's success rate went from %.4f to %.4f while previews received copies", before, during)
	}

	// What the previews' pods received: GET (and HEAD) copies only, without
	// a single removed header, while production's pods got theirs.
	for _, b := range []demo.PreviewBuild{good, bad} {
		if n := s.count(fmt.Sprintf(`sum(tugboat_sandbox_received_requests_total{namespace=%q, mirrored="true", method="GET"})`, b.Namespace)); n == 0 {
			t.Errorf("%s received no GET copies", b.Namespace)
		}
		if n := s.count(fmt.Sprintf(`sum(tugboat_sandbox_received_requests_total{namespace=%q, method="POST"})`, b.Namespace)); n != 0 {
			t.Errorf("%s received %v POST copies without opting in", b.Namespace, n)
		}
		if n := s.count(fmt.Sprintf(`sum(tugboat_sandbox_received_headers_total{namespace=%q})`, b.Namespace)); n != 0 {
			t.Errorf("%s received %v removed headers", b.Namespace, n)
		}
	}
	for _, h := range []string{"authorization", "cookie", "x-api-key", "x-tenant-token"} {
		if n := s.count(fmt.Sprintf(`sum(tugboat_sandbox_received_headers_total{namespace=%q, mirrored="false", header=%q})`, box.Namespace, h)); n == 0 {
			t.Errorf("production's pods never received %s: the check above proves nothing", h)
		}
	}

	// A namespace the policy does not trust is Denied, the rule named.
	untrusted := demo.PreviewBuild{Name: "untrusted", Namespace: "e2e-untrusted", ErrorRate: "0.001"}
	if err := box.Client().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: untrusted.Namespace}}); err != nil {
		t.Fatal(err)
	}
	if err := demo.DeployPreview(t.Context(), box.Client(), box.Namespace, untrusted); err != nil {
		t.Fatal(err)
	}
	denied := s.preview(untrusted, "Denied", func(p *v1alpha1.Preview) bool { return p.Status.Phase == "Denied" })
	if !strings.Contains(denied.Status.Message, "rule previews/pull-requests: namespace e2e-untrusted is not among the namespaces it lets mirror") {
		t.Errorf("denied with %q", denied.Status.Message)
	}

	// An expired Preview's mirror goes in the reconcile that finds it so: a
	// ttl too short for a verdict.
	expiring := demo.PreviewBuild{Name: "expiring", Namespace: "e2e-pr-3", ErrorRate: "0.001"}
	if err := demo.DeployPreview(t.Context(), box.Client(), box.Namespace, expiring); err != nil {
		t.Fatal(err)
	}
	s.previewsMirroring(expiring)
	patch := client.RawPatch(types.MergePatchType, []byte(`{"spec":{"ttl":"1m","analysis":null}}`))
	if err := box.Client().Patch(t.Context(), &v1alpha1.Preview{ObjectMeta: metav1.ObjectMeta{Namespace: expiring.Namespace, Name: "podinfo"}}, patch); err != nil {
		t.Fatal(err)
	}
	s.preview(expiring, "Expired", func(p *v1alpha1.Preview) bool { return p.Status.Phase == "Expired" })
	if hosts := s.mirrorHosts(); strings.Contains(hosts, expiring.Namespace) {
		t.Errorf("the expired preview's mirror is still on the route: %s", hosts)
	}

	// A deleted Preview is let go only once its mirror is off the route.
	if err := demo.DeployPreview(t.Context(), box.Client(), box.Namespace, demo.PreviewBuild{Name: "deleted", Namespace: "e2e-pr-4", ErrorRate: "0.001"}); err != nil {
		t.Fatal(err)
	}
	s.previewsMirroring(demo.PreviewBuild{Namespace: "e2e-pr-4"})
	p := &v1alpha1.Preview{ObjectMeta: metav1.ObjectMeta{Namespace: "e2e-pr-4", Name: "podinfo"}}
	if err := box.Client().Delete(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		return apierrors.IsNotFound(box.Client().Get(ctx, client.ObjectKeyFromObject(p), &v1alpha1.Preview{})), nil
	})
	if err != nil {
		t.Fatalf("the deleted preview was never let go: %v\n%s", err, box.ControllerLog(20))
	}
	if hosts := s.mirrorHosts(); strings.Contains(hosts, "e2e-pr-4") {
		t.Errorf("the deleted preview's mirror is still on the route: %s", hosts)
	}
	t.Logf("good build %s in %s, bad build %s in %s; production %.4f before, %.4f during",
		results["good"].Got, results["good"].Took.Round(time.Second), results["bad"].Got, results["bad"].Took.Round(time.Second), before, during)
}

// theProduction makes sure the example's Rollout runs at rest in the
// sandbox's namespace, applying it unless an earlier test did.
func (s *scenario) theProduction(rollout string) *scenario {
	s.t.Helper()
	s.key = types.NamespacedName{Namespace: box.Namespace, Name: rollout}
	err := box.Client().Get(s.t.Context(), s.key, &v1alpha1.Rollout{})
	switch {
	case apierrors.IsNotFound(err):
		return s.theExample("podinfo", rollout)
	case err != nil:
		s.t.Fatal(err)
	}
	if err := demo.WaitHealthy(s.t.Context(), box.Client(), s.key, 3*time.Minute); err != nil {
		s.t.Fatalf("%s is not at rest: %v", rollout, err)
	}
	return s
}

// previewsMirroring waits until each build's Preview is Mirroring with its
// host on the route.
func (s *scenario) previewsMirroring(builds ...demo.PreviewBuild) {
	s.t.Helper()
	for _, b := range builds {
		s.preview(b, "Mirroring", func(p *v1alpha1.Preview) bool { return p.Status.Phase == "Mirroring" })
		if hosts := s.mirrorHosts(); !strings.Contains(hosts, "podinfo."+b.Namespace+".svc") {
			s.t.Fatalf("%s is Mirroring but not on the route: %s", b.Namespace, hosts)
		}
	}
}

func (s *scenario) preview(b demo.PreviewBuild, what string, cond func(*v1alpha1.Preview) bool) *v1alpha1.Preview {
	s.t.Helper()
	var p v1alpha1.Preview
	err := wait.PollUntilContextTimeout(s.t.Context(), 100*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		if err := box.Client().Get(ctx, types.NamespacedName{Namespace: b.Namespace, Name: "podinfo"}, &p); err != nil {
			return false, nil
		}
		return cond(&p), nil
	})
	if err != nil {
		s.t.Fatalf("preview in %s never %s: %v; status %+v\n%s", b.Namespace, what, err, p.Status, box.ControllerLog(20))
	}
	return &p
}

// mirrorHosts lists the mirror destinations on podinfo's VirtualService.
func (s *scenario) mirrorHosts() string {
	s.t.Helper()
	var vs istiov1.VirtualService
	if err := box.Client().Get(s.t.Context(), s.key, &vs); err != nil {
		s.t.Fatal(err)
	}
	var hosts []string
	for _, h := range vs.Spec.GetHttp() {
		for _, m := range h.GetMirrors() {
			hosts = append(hosts, h.GetName()+"→"+m.GetDestination().GetHost())
		}
	}
	return strings.Join(hosts, " ")
}

// virtualServiceSettles checks that podinfo's VirtualService is written
// for d only when the canary moves to another step: every owner computes the
// same routes, so none undoes another. It watches all of d, whatever the
// steps do.
func (s *scenario) virtualServiceSettles(d time.Duration) {
	s.t.Helper()
	read := func() (string, int32) {
		var vs istiov1.VirtualService
		var ro v1alpha1.Rollout
		if err := box.Client().Get(s.t.Context(), s.key, &vs); err != nil {
			s.t.Fatal(err)
		}
		if err := box.Client().Get(s.t.Context(), s.key, &ro); err != nil {
			s.t.Fatal(err)
		}
		return vs.ResourceVersion, ptr.Deref(ro.Status.CurrentStepIndex, -1)
	}
	rv, step := read()
	writes := 0
	deadline := time.Now().Add(d)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for time.Now().Before(deadline) {
		<-tick.C
		now, at := read()
		if now == rv {
			continue
		}
		// The Rollout writes the route before its status: give its step
		// two seconds to show.
		moved := at != step
		wait.PollUntilContextTimeout(s.t.Context(), 100*time.Millisecond, 2*time.Second, true, func(context.Context) (bool, error) { //nolint:errcheck // moved says
			_, at = read()
			moved = at != step
			return moved, nil
		})
		if !moved {
			s.t.Fatalf("the VirtualService was rewritten at step %d (%s → %s): owners fight\n%s", step, rv, now, box.ControllerLog(20))
		}
		writes++
		rv, step = read()
	}
	fmt.Fprintf(&s.log, "the VirtualService settled for %s (%d writes, each for a new step)\n", d, writes)
}

// count is the value of a PromQL query that sums to one number; 0 when
// there is no series at all.
func (s *scenario) count(q string) float64 {
	s.t.Helper()
	c, err := api.NewClient(api.Config{Address: box.Prometheus.URL})
	if err != nil {
		s.t.Fatal(err)
	}
	v, _, _, err := promv1.NewAPI(c).Query(s.t.Context(), q, time.Now())
	if err != nil {
		s.t.Fatalf("query %s: %v", q, err)
	}
	if vec, ok := v.(model.Vector); ok && len(vec) > 0 {
		return float64(vec[0].Value)
	}
	return 0
}
