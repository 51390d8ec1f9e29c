package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/rollout"
	"github.com/tugboatdev/tugboat/sandbox/cluster"
	"github.com/tugboatdev/tugboat/sandbox/promserver"
)

// plugin runs `kubectl tug` against a real API server, with the Rollout's
// status written by the test as the controller would write it.
type plugin struct {
	t          *testing.T
	env        *cluster.Env
	kubeconfig string
	ns         string
}

func newPlugin(t *testing.T) *plugin {
	env := cluster.Start(t)
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kc, env.KubeConfig, 0o600); err != nil {
		t.Fatal(err)
	}
	p := &plugin{t: t, env: env, kubeconfig: kc, ns: "prod"}
	if err := env.Client.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: p.ns}}); err != nil {
		t.Fatal(err)
	}
	return p
}

// run runs the plugin and returns its exit code and output.
func (p *plugin) run(args ...string) (int, string) {
	code, out, errOut := p.runApart(args...)
	return code, out + errOut
}

// runApart runs the plugin and returns its exit code, stdout and stderr.
func (p *plugin) runApart(args ...string) (code int, out, errOut string) {
	return p.runFed("", args...)
}

// runFed is runApart with stdin.
func (p *plugin) runFed(stdin string, args ...string) (code int, out, errOut string) {
	var o, e bytes.Buffer
	args = append(args, "--kubeconfig", p.kubeconfig, "-n", p.ns)
	code = execute(p.t.Context(), args, genericiooptions.IOStreams{In: strings.NewReader(stdin), Out: &o, ErrOut: &e})
	return code, o.String(), e.String()
}

// given creates a target Deployment and a Rollout in the given state.
func (p *plugin) given(name string, status v1alpha1.RolloutStatus) (*v1alpha1.Rollout, string) {
	p.t.Helper()
	// The same template for every app: one revision serves all.
	labels := map[string]string{"app": "demo"}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: p.ns, Name: name},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:2"}}}},
		},
	}
	ro := &v1alpha1.Rollout{
		ObjectMeta: metav1.ObjectMeta{Namespace: p.ns, Name: name},
		Spec: v1alpha1.RolloutSpec{
			TargetRef: v1alpha1.TargetRef{APIVersion: "apps/v1", Kind: "Deployment", Name: name},
			Service:   v1alpha1.ServiceSpec{Port: 80},
			TrafficRouting: v1alpha1.TrafficRouting{Istio: v1alpha1.IstioTrafficRouting{
				VirtualService: v1alpha1.IstioVirtualService{Name: name, Routes: []string{"primary"}}}},
			Steps: []v1alpha1.Step{{SetWeight: ptr.To[int32](10)}, {Pause: &v1alpha1.Pause{}}},
		},
	}
	for _, o := range []client.Object{d, ro} {
		if err := p.env.Client.Create(p.t.Context(), o); err != nil {
			p.t.Fatal(err)
		}
	}
	status.ObservedGeneration = ro.Generation
	ro.Status = status
	if err := p.env.Client.Status().Update(p.t.Context(), ro); err != nil {
		p.t.Fatal(err)
	}
	return ro, rollout.Revision(d.Spec.Template)
}

func cond(reason string, ready bool) []metav1.Condition {
	s := metav1.ConditionFalse
	if ready {
		s = metav1.ConditionTrue
	}
	return []metav1.Condition{{Type: "Ready", Status: s, Reason: reason, Message: "m", LastTransitionTime: metav1.Now()}}
}

func TestRequestsAreAnnotations(t *testing.T) {
	p := newPlugin(t)
	p.given("podinfo", v1alpha1.RolloutStatus{})
	annotations := func() map[string]string {
		var ro v1alpha1.Rollout
		if err := p.env.Client.Get(t.Context(), client.ObjectKey{Namespace: p.ns, Name: "podinfo"}, &ro); err != nil {
			t.Fatal(err)
		}
		return ro.Annotations
	}
	for _, tc := range []struct {
		args []string
		key  string
	}{
		{[]string{"promote", "podinfo"}, v1alpha1.AnnotationPromote},
		{[]string{"promote", "--full", "podinfo"}, v1alpha1.AnnotationPromoteFull},
		{[]string{"abort", "podinfo"}, v1alpha1.AnnotationAbort},
		{[]string{"retry", "podinfo"}, v1alpha1.AnnotationRetry},
		{[]string{"pause", "podinfo"}, v1alpha1.AnnotationPaused},
	} {
		before := annotations()[tc.key]
		if code, out := p.run(tc.args...); code != 0 {
			t.Fatalf("%v: exit %d: %s", tc.args, code, out)
		}
		if after := annotations()[tc.key]; after == "" || after == before {
			t.Errorf("%v: annotation %s = %q (was %q); want a new value", tc.args, tc.key, after, before)
		}
	}
	if code, out := p.run("resume", "podinfo"); code != 0 {
		t.Fatalf("resume: exit %d: %s", code, out)
	}
	if _, ok := annotations()[v1alpha1.AnnotationPaused]; ok {
		t.Error("resume left the paused annotation")
	}
	var ro v1alpha1.Rollout
	if err := p.env.Client.Get(t.Context(), client.ObjectKey{Namespace: p.ns, Name: "podinfo"}, &ro); err != nil {
		t.Fatal(err)
	}
	if len(ro.Spec.Steps) != 2 || ro.Generation != 1 {
		t.Errorf("a request changed the spec (generation %d)", ro.Generation)
	}
	if code, out := p.run("promote", "missing"); code != exitTrouble || !strings.Contains(out, "not found") {
		t.Errorf("promote of a missing rollout: exit %d: %s", code, out)
	}
}

func TestWaitExitCodes(t *testing.T) {
	p := newPlugin(t)
	_, rev := p.given("reference", v1alpha1.RolloutStatus{})
	for i, tc := range []struct {
		name   string
		status v1alpha1.RolloutStatus
		args   []string
		code   int
		want   string
	}{{
		name:   "healthy",
		status: v1alpha1.RolloutStatus{Phase: v1alpha1.PhaseHealthy, StableRevision: rev, Conditions: cond("Healthy", true)},
		code:   exitHealthy, want: `"result": "Healthy"`,
	}, {
		name: "aborted",
		status: v1alpha1.RolloutStatus{Phase: v1alpha1.PhaseDegraded, StableRevision: "old", CanaryRevision: rev,
			Abort: &v1alpha1.RolloutAbort{Reason: "AnalysisFailed", Message: "success rate 0.91 < 0.99"}, Message: "success rate 0.91 < 0.99",
			Conditions: cond("AnalysisFailed", false)},
		code: exitFailed, want: `"reason": "AnalysisFailed"`,
	}, {
		name:   "paused",
		status: v1alpha1.RolloutStatus{Phase: v1alpha1.PhasePaused, StableRevision: "old", CanaryRevision: rev, CurrentStepIndex: ptr.To[int32](1), Conditions: cond("WaitingForPromotion", false)},
		code:   exitPaused, want: `"result": "Paused"`,
	}, {
		name:   "progressing",
		status: v1alpha1.RolloutStatus{Phase: v1alpha1.PhaseProgressing, StableRevision: "old", CanaryRevision: rev, CurrentStepIndex: ptr.To[int32](0), Conditions: cond("Holding", false)},
		args:   []string{"--timeout", "1s"},
		code:   exitTimeout, want: `"result": "Timeout"`,
	}, {
		name: "an old revision's abort does not fail a wait for the new one",
		status: v1alpha1.RolloutStatus{Phase: v1alpha1.PhaseDegraded, StableRevision: "old", CanaryRevision: "older",
			Abort: &v1alpha1.RolloutAbort{Reason: "AbortedByUser"}, Conditions: cond("AbortedByUser", false)},
		args: []string{"--timeout", "1s"},
		code: exitTimeout, want: `"result": "Timeout"`,
	}, {
		name:   "a named revision",
		status: v1alpha1.RolloutStatus{Phase: v1alpha1.PhaseHealthy, StableRevision: "abc", Conditions: cond("Healthy", true)},
		args:   []string{"--for-revision", "abc"},
		code:   exitHealthy, want: `"wantRevision": "abc"`,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			name := fmt.Sprintf("wait-%d", i)
			p.given(name, tc.status)
			args := append([]string{"wait", name, "-o", "json", "--timeout", "20s"}, tc.args...)
			code, out := p.run(args...)
			if code != tc.code || !strings.Contains(out, tc.want) {
				t.Errorf("exit %d, want %d; output:\n%s", code, tc.code, out)
			}
			var res waitResult
			if err := json.NewDecoder(strings.NewReader(out)).Decode(&res); err != nil || res.ExitCode != tc.code {
				t.Errorf("json result %+v (%v)", res, err)
			}
		})
	}
}

func TestGetAndList(t *testing.T) {
	p := newPlugin(t)
	ro, _ := p.given("podinfo", v1alpha1.RolloutStatus{Phase: v1alpha1.PhasePaused, StableRevision: "s1", CanaryRevision: "c1",
		CurrentStepIndex: ptr.To[int32](1), CanaryWeight: 10, Message: "paused at step 1 until promoted", Conditions: cond("WaitingForPromotion", false)})
	ev := &eventsv1.Event{
		ObjectMeta:          metav1.ObjectMeta{Namespace: p.ns, Name: "podinfo.1"},
		EventTime:           metav1.NewMicroTime(time.Now()),
		ReportingController: "tugboat", ReportingInstance: "tugboat-1", Action: "Reconcile",
		Regarding: corev1.ObjectReference{Kind: "Rollout", Namespace: p.ns, Name: ro.Name, UID: ro.UID},
		Reason:    "Advanced", Note: "step 0 done", Type: corev1.EventTypeNormal,
	}
	if err := p.env.Client.Create(t.Context(), ev); err != nil {
		t.Fatal(err)
	}
	run := &v1alpha1.AnalysisRun{
		ObjectMeta: metav1.ObjectMeta{Namespace: p.ns, Name: "podinfo-step1-x", Labels: map[string]string{"tugboat.dev/rollout": "podinfo", "tugboat.dev/analysis": "1"}},
		Spec:       v1alpha1.AnalysisRunSpec{Metrics: []v1alpha1.Metric{{Name: "success-rate", Provider: v1alpha1.MetricProvider{Prometheus: &v1alpha1.PrometheusMetric{Query: "up"}}}}},
	}
	if err := p.env.Client.Create(t.Context(), run); err != nil {
		t.Fatal(err)
	}
	run.Status = v1alpha1.AnalysisRunStatus{Phase: "Running", MetricResults: []argo.MetricResult{{Name: "success-rate", Phase: "Running", Successful: 2,
		Measurements: []argo.Measurement{{Phase: "Successful", Value: "[0.997]"}}, Message: "met result[0] >= 0.99"}}}
	if err := p.env.Client.Status().Update(t.Context(), run); err != nil {
		t.Fatal(err)
	}
	code, out := p.run("get", "rollout", "podinfo")
	for _, want := range []string{"Phase:      Paused", "90% stable, 10% canary", "✓  0  setWeight: 10%", "▶  1  pause: until promoted", "WaitingForPromotion", "step 0 done",
		"success-rate", "2/0/0/0", "[0.997]", "met result[0] >= 0.99"} {
		if !strings.Contains(out, want) {
			t.Errorf("get rollout: missing %q in:\n%s", want, out)
		}
	}
	if code != 0 {
		t.Errorf("get: exit %d", code)
	}
	code, out = p.run("list")
	if code != 0 || !strings.Contains(out, "podinfo") || !strings.Contains(out, "1/2") || !strings.Contains(out, "Paused") {
		t.Errorf("list: exit %d:\n%s", code, out)
	}

	// -w shows the rollout and redraws when it changes, or when one of its
	// analysis runs does.
	p.watchChange(ro, "promoting", func(ctx context.Context, out io.Writer) error {
		return p.follow(ctx, out, "get", "rollout", "podinfo", "-w")
	}, change{shows: "[0.995]", apply: func() {
		run.Status.MetricResults[0].Measurements = append(run.Status.MetricResults[0].Measurements, argo.Measurement{Phase: "Successful", Value: "[0.995]"})
		if err := p.env.Client.Status().Update(t.Context(), run); err != nil {
			t.Fatal(err)
		}
	}})
}

// follow runs the plugin until ctx ends (as a watch does), its stdout to
// out; a non-zero exit is an error with what it wrote to stderr.
func (p *plugin) follow(ctx context.Context, out io.Writer, args ...string) error {
	var errOut bytes.Buffer
	args = append(args, "--kubeconfig", p.kubeconfig, "-n", p.ns)
	if code := execute(ctx, args, genericiooptions.IOStreams{In: strings.NewReader(""), Out: out, ErrOut: &errOut}); code != 0 {
		return fmt.Errorf("exit %d: %s", code, errOut.String())
	}
	return nil
}

// change is a change watchChange makes, and what the watch then shows.
type change struct {
	apply func()
	shows string
}

// watchChange runs watch until it has shown ro, then sets ro's message to
// next and runs it until it has shown that too; then, for each change and
// what it shows, makes the change and waits for it to show. It returns what
// watch wrote.
func (p *plugin) watchChange(ro *v1alpha1.Rollout, next string, watch func(ctx context.Context, out io.Writer) error, more ...change) string {
	t := p.t
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var buf syncBuffer
	done := make(chan error, 1)
	go func() { done <- watch(ctx, &buf) }()
	waitForOutput(t, &buf, ro.Status.Message)
	ro.Status.Message = next
	if err := p.env.Client.Status().Update(t.Context(), ro); err != nil {
		t.Fatal(err)
	}
	waitForOutput(t, &buf, next)
	for _, c := range more {
		c.apply()
		waitForOutput(t, &buf, c.shows)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("watch: %v", err)
	}
	return buf.String()
}

func TestAnalysisRun(t *testing.T) {
	ts := time.Now().Add(-30 * time.Second).Truncate(time.Second)
	srv := promserver.Start(t, promserver.Options{OpenMetrics: "# TYPE tugboat_test gauge\n" +
		`tugboat_test{workload="good"} 0.999 ` + strconv.FormatInt(ts.Unix(), 10) + "\n" +
		`tugboat_test{workload="bad"} 0.9 ` + strconv.FormatInt(ts.Unix(), 10) + "\n"})
	file := filepath.Join(t.TempDir(), "template.yaml")
	writeFile(t, file, `apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: sr}
spec:
  args: [{name: workload}]
  metrics:
  - name: success-rate
    successCondition: result[0] >= 0.99
    provider:
      prometheus: {query: 'tugboat_test{workload="{{args.workload}}"}'}
`)
	var c cli
	out, errOut := &c.out, &c.errOut
	run := func(args ...string) int { return c.run(t, args...) }
	if code := run("analysis", "run", "-f", file, "--arg", "workload=good", "--prometheus", srv.URL); code != 0 ||
		!strings.Contains(out.String(), `tugboat_test{workload="good"}`) || !strings.Contains(out.String(), "[0.999]") || !strings.Contains(out.String(), "Successful") {
		t.Errorf("good: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	for _, format := range []string{"json", "yaml"} {
		code := run("analysis", "run", "-f", file, "--arg", "workload=bad", "--prometheus", srv.URL, "-o", format)
		var got []evaluation
		if err := decodeStrict(format, out.String(), &got); code != 1 || err != nil || len(got) != 1 {
			t.Fatalf("bad -o %s: exit %d (%v)\n%s%s", format, code, err, out.String(), errOut.String())
		}
		want := []evaluation{{Metric: "success-rate", Query: `tugboat_test{workload="bad"}`, Value: "[0.9]", Phase: argo.AnalysisPhaseFailed, Message: got[0].Message}}
		if diff := cmp.Diff(want, got); diff != "" || !strings.Contains(got[0].Message, "did not meet result[0] >= 0.99") {
			t.Errorf("bad -o %s: message %q (-want +got):\n%s", format, got[0].Message, diff)
		}
	}
	if !strings.Contains(out.String(), "did not meet result[0] >= 0.99") {
		t.Errorf("-o yaml escapes what it prints:\n%s", out.String())
	}
	// -f - reads the template from stdin.
	template, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	out.Reset()
	errOut.Reset()
	if code := execute(t.Context(), []string{"analysis", "run", "-f", "-", "--arg", "workload=good", "--prometheus", srv.URL},
		genericiooptions.IOStreams{In: bytes.NewReader(template), Out: out, ErrOut: errOut}); code != 0 || !strings.Contains(out.String(), "[0.999]") {
		t.Errorf("-f -: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	if code := run("analysis", "run", "-f", file, "--arg", `workload=x"} or vector(1) #`, "--prometheus", srv.URL); code != 1 {
		t.Errorf("hostile argument: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	// An argument the template reads from a Secret is given by hand, and
	// masked in what is printed, as the controller masks it.
	secret := filepath.Join(t.TempDir(), "secret.yaml")
	writeFile(t, secret, `apiVersion: tugboat.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: sr}
spec:
  args: [{name: workload, valueFrom: {secretKeyRef: {name: tenant, key: workload}}}]
  metrics:
  - name: success-rate
    successCondition: result[0] >= 0.99
    provider:
      prometheus: {query: 'tugboat_test{workload="{{args.workload}}"}'}
`)
	if code := run("analysis", "run", "-f", secret, "--prometheus", srv.URL); code != exitTrouble || !strings.Contains(errOut.String(), "pass its value with --arg workload") {
		t.Errorf("a Secret argument not given: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	if code := run("analysis", "run", "-f", secret, "--arg", "workload=good", "--prometheus", srv.URL); code != 0 ||
		!strings.Contains(out.String(), `tugboat_test{workload="REDACTED"}`) || strings.Contains(out.String(), "good") {
		t.Errorf("a Secret argument given: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	ranged := filepath.Join(t.TempDir(), "range.yaml")
	writeFile(t, ranged, `apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: sr}
spec:
  args: [{name: workload}, {name: lookback, value: 1m}]
  metrics:
  - name: success-rate
    successCondition: "all(result, # >= 0.99)"
    provider:
      prometheus:
        query: 'tugboat_test{workload="{{args.workload}}"}'
        rangeQuery: {start: 'now() - duration("{{args.lookback}}")', end: now(), step: 15s}
`)
	if code := run("analysis", "run", "-f", ranged, "--arg", "workload=good", "--prometheus", srv.URL); code != 0 ||
		!strings.Contains(out.String(), "0.999,0.999") || !strings.Contains(out.String(), "Successful") {
		t.Errorf("range query: exit %d\n%s%s", code, out.String(), errOut.String())
	}
}

// TestAnalysisReplay replays a template over half an hour of past data in
// which the success rate broke ten minutes ago.
func TestAnalysisReplay(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	broke := now.Add(-10 * time.Minute)
	var series strings.Builder
	series.WriteString("# TYPE tugboat_replay gauge\n")
	for ts := now.Add(-35 * time.Minute); !ts.After(now); ts = ts.Add(15 * time.Second) {
		v := "0.999"
		if !ts.Before(broke) {
			v = "0.9"
		}
		fmt.Fprintf(&series, "tugboat_replay{workload=\"podinfo\"} %s %d\n", v, ts.Unix())
	}
	srv := promserver.Start(t, promserver.Options{OpenMetrics: series.String()})
	file := filepath.Join(t.TempDir(), "template.yaml")
	writeFile(t, file, `apiVersion: tugboat.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: sr}
spec:
  args: [{name: workload}, {name: count}]
  metrics:
  - name: success-rate
    interval: 1m
    count: '{{args.count}}'
    successCondition: result[0] >= 0.99
    provider:
      prometheus: {query: 'tugboat_replay{workload="{{args.workload}}"}'}
`)
	var c cli
	out, errOut := &c.out, &c.errOut
	run := func(args ...string) int {
		return c.run(t, append([]string{"analysis", "run", "-f", file, "--arg", "workload=podinfo", "--prometheus", srv.URL}, args...)...)
	}

	for _, format := range []string{"json", "yaml"} {
		if code := run("--arg", "count=60", "--replay-from", "30m", "-o", format); code != 1 {
			t.Fatalf("replay across the break -o %s: exit %d, want 1\n%s%s", format, code, out.String(), errOut.String())
		}
		var r replayed
		if err := decodeStrict(format, out.String(), &r); err != nil {
			t.Fatalf("-o %s: %v\n%s", format, err, out.String())
		}
		ms := r.Metrics[0].Measurements
		last := ms[len(ms)-1]
		if r.Phase != argo.AnalysisPhaseFailed || last.Phase != argo.AnalysisPhaseFailed || last.Value != "[0.9]" ||
			last.At.Before(broke) || last.At.After(broke.Add(time.Minute)) {
			t.Errorf("-o %s replay across the break: %s, last measurement %+v, want Failed at the first minute from %s", format, r.Phase, last, broke)
		}
		for _, m := range ms[:len(ms)-1] {
			if m.Phase != argo.AnalysisPhaseSuccessful || m.Value != "[0.999]" {
				t.Errorf("-o %s before the break: %+v", format, m)
			}
		}
		if len(ms) < 20 || !strings.Contains(r.Metrics[0].Query, `tugboat_replay{workload="podinfo"}`) {
			t.Errorf("-o %s: %d measurements of %s, want 20 or more", format, len(ms), r.Metrics[0].Query)
		}
	}

	if code := run("--arg", "count=5", "--replay-from", "30m", "--replay-to", "20m"); code != 0 ||
		!strings.Contains(out.String(), "Successful after 5 measurements") {
		t.Errorf("replay before the break: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	if code := run("--arg", "count=0", "--replay-from", "30m", "--replay-to", "25m"); code != 2 ||
		!strings.Contains(out.String(), "Running after 6 measurements") {
		t.Errorf("a background metric replayed: exit %d, want 2\n%s%s", code, out.String(), errOut.String())
	}
	if code := run("--arg", "count=5", "--replay-from", "tomorrow"); code != exitTrouble || !strings.Contains(errOut.String(), "--replay-from") {
		t.Errorf("a bad time: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	if code := run("--arg", "count=5", "--replay-to", "20m"); code != exitTrouble || !strings.Contains(errOut.String(), "--replay-to needs --replay-from") {
		t.Errorf("an end without a start: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	if code := run("--arg", "count=0", "--replay-from", "30h"); code != exitTrouble || !strings.Contains(errOut.String(), "replay a shorter stretch") {
		t.Errorf("a stretch too long: exit %d\n%s%s", code, out.String(), errOut.String())
	}
}

// TestAnalysisRunOverTLS evaluates templates against a Prometheus that
// requires a client certificate: given by flags, or read with --secrets from
// the Secret a metric's tls names.
func TestAnalysisRunOverTLS(t *testing.T) {
	p := newPlugin(t)
	dir := t.TempDir()
	ca := promserver.NewCA(t, "tugboat test CA")
	serverCert, serverKey := ca.Issue(t, &x509.Certificate{
		Subject: pkix.Name{CommonName: "prometheus.test"}, DNSNames: []string{"prometheus.test"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	clientCert, clientKey := ca.Issue(t, &x509.Certificate{
		Subject: pkix.Name{CommonName: "kubectl-tug"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	path := func(name string) string { return filepath.Join(dir, name) }
	for name, data := range map[string][]byte{"ca.crt": ca.PEM, "server.crt": serverCert, "server.key": serverKey, "client.crt": clientCert, "client.key": clientKey} {
		if err := os.WriteFile(path(name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	pair, err := tls.X509KeyPair(clientCert, clientKey)
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Now().Add(-30 * time.Second).Truncate(time.Second)
	srv := promserver.Start(t, promserver.Options{
		OpenMetrics: "# TYPE tugboat_test gauge\n" + `tugboat_test{workload="good"} 0.999 ` + strconv.FormatInt(ts.Unix(), 10) + "\n",
		HTTPS: &promserver.HTTPS{CertFile: path("server.crt"), KeyFile: path("server.key"), ClientCAFile: path("ca.crt"),
			Client: &tls.Config{RootCAs: ca.Pool(), ServerName: "prometheus.test", Certificates: []tls.Certificate{pair}}},
	})
	template := func(name, tlsField string) string {
		file := filepath.Join(dir, name+".yaml")
		writeFile(t, file, `apiVersion: tugboat.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: sr}
spec:
  metrics:
  - name: success-rate
    successCondition: result[0] >= 0.99
    provider:
      prometheus:
        query: 'tugboat_test{workload="good"}'
`+tlsField)
		return file
	}
	plain, fromSecret := template("plain", ""), template("secret", "        tls: {secretName: prom-client, serverName: prometheus.test}\n")

	code, out := p.run("analysis", "run", "-f", plain, "--prometheus", srv.URL, "--prometheus-ca-file", path("ca.crt"),
		"--prometheus-cert-file", path("client.crt"), "--prometheus-key-file", path("client.key"), "--prometheus-server-name", "prometheus.test")
	if code != 0 || !strings.Contains(out, "[0.999]") {
		t.Errorf("client certificate from flags: exit %d\n%s", code, out)
	}
	if code, out := p.run("analysis", "run", "-f", plain, "--prometheus", srv.URL, "--prometheus-cert-file", path("client.crt")); code == 0 ||
		!strings.Contains(out, "prometheus-cert-file and prometheus-key-file go together") {
		t.Errorf("a certificate without its key: exit %d\n%s", code, out)
	}
	if code, out := p.run("analysis", "run", "-f", plain, "--prometheus", srv.URL, "--prometheus-ca-file", path("ca.crt"), "--prometheus-server-name", "prometheus.test"); code != 1 ||
		!strings.Contains(out, "Error") {
		t.Errorf("no client certificate: exit %d\n%s", code, out)
	}

	if code, out := p.run("analysis", "run", "-f", fromSecret, "--prometheus", srv.URL); code != 1 || !strings.Contains(out, "needs --secrets") {
		t.Errorf("tls.secretName without --secrets: exit %d\n%s", code, out)
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: p.ns, Name: "prom-client"},
		Data: map[string][]byte{"ca.crt": ca.PEM, "tls.crt": clientCert, "tls.key": clientKey}}
	if err := p.env.Client.Create(t.Context(), secret); err != nil {
		t.Fatal(err)
	}
	if code, out := p.run("analysis", "run", "-f", fromSecret, "--prometheus", srv.URL, "--secrets"); code != 0 || !strings.Contains(out, "[0.999]") {
		t.Errorf("tls.secretName with --secrets: exit %d\n%s", code, out)
	}
}

func TestGetExplainsAFailedAnalysis(t *testing.T) {
	p := newPlugin(t)
	since := metav1.NewTime(time.Date(2026, 11, 24, 10, 30, 0, 0, time.UTC))
	p.given("checkout", v1alpha1.RolloutStatus{Phase: v1alpha1.PhaseDegraded, StableRevision: "s1", CanaryRevision: "c1", CurrentStepIndex: ptr.To[int32](1),
		Abort: &v1alpha1.RolloutAbort{Reason: "AnalysisFailed", Message: "step 1: analysis Failed"}, Message: "step 1: analysis Failed", Conditions: cond("AnalysisFailed", false),
		Analysis: []v1alpha1.RolloutAnalysis{{Run: "checkout-step1-x", Step: ptr.To[int32](1), Phase: argo.AnalysisPhaseFailed, Metrics: []v1alpha1.MetricExplanation{
			{Name: "success-rate", Phase: argo.AnalysisPhaseFailed, Since: &since, Query: `sum(rate(istio_requests_total{destination_workload="checkout"}[1m]))`,
				Value: "[0.8]", SuccessCondition: "result[0] >= 0.99", Message: "did not meet result[0] >= 0.99",
				Counters: v1alpha1.MetricCounters{Successful: 2, Failed: 1}, Limits: &v1alpha1.MetricLimits{ConsecutiveErrorLimit: 4}},
			{Name: "latency", Phase: argo.AnalysisPhaseSuccessful, Since: &since, Query: "histogram_quantile(0.99, x)", Value: "[120]"},
		}}}})
	code, out := p.run("get", "rollout", "checkout")
	for _, want := range []string{
		"success-rate Failed since 2026-11-24T10:30:00Z: did not meet result[0] >= 0.99",
		`query: sum(rate(istio_requests_total{destination_workload="checkout"}[1m]))`,
		"value: [0.8]", "successCondition: result[0] >= 0.99",
		"failed 1 (limit 0), inconclusive 0 (limit 0), errors in a row 0 (limit 4)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("get rollout: missing %q in:\n%s", want, out)
		}
	}
	if strings.Contains(out, "histogram_quantile") {
		t.Errorf("get rollout explains a successful metric:\n%s", out)
	}
	if code != 0 {
		t.Errorf("get: exit %d", code)
	}
}

// cli runs the plugin without a cluster and keeps what it printed last.
type cli struct{ out, errOut bytes.Buffer }

func (c *cli) run(t *testing.T, args ...string) int {
	c.out.Reset()
	c.errOut.Reset()
	return execute(t.Context(), args, genericiooptions.IOStreams{In: strings.NewReader(""), Out: &c.out, ErrOut: &c.errOut})
}

// writeFile writes a test's input file.
func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// asUser is the plugin run as a user of its own, bound in the namespace to a
// Role with rules; it returns once RBAC lets the user read "web" as each of
// canRead (RBAC takes a moment to apply).
func (p *plugin) asUser(name string, rules []rbacv1.PolicyRule, canRead ...client.Object) *plugin {
	t := p.t
	t.Helper()
	cfg, err := p.env.UserConfig(name)
	if err != nil {
		t.Fatal(err)
	}
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: p.ns, Name: name}, Rules: rules}
	binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: p.ns, Name: name},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
		Subjects: []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: name}}}
	for _, o := range []client.Object{role, binding} {
		if err := p.env.Client.Create(t.Context(), o); err != nil {
			t.Fatal(err)
		}
	}
	c, err := client.New(cfg, client.Options{Scheme: p.env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	if err := waitPoll(t.Context(), func(ctx context.Context) (bool, error) {
		for _, o := range canRead {
			if c.Get(ctx, client.ObjectKey{Namespace: p.ns, Name: "web"}, o) != nil {
				return false, nil
			}
		}
		return true, nil
	}); err != nil {
		t.Fatalf("%s never got to read what it needs: %v", name, err)
	}
	q := *p
	q.kubeconfig = writeKubeconfig(t, filepath.Join(t.TempDir(), name), cfg.Host, cfg.CAData,
		clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData})
	return &q
}
