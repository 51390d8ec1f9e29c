package main

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

// record creates a ControllerRevision of ro's history, as the controller
// does; nil annotations make an old record, with only its hash.
func (p *plugin) record(ro *v1alpha1.Rollout, number int64, hash, image string, annotations map[string]string, owned bool) {
	p.t.Helper()
	data, err := json.Marshal(corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}}})
	if err != nil {
		p.t.Fatal(err)
	}
	cr := &appsv1.ControllerRevision{
		ObjectMeta: metav1.ObjectMeta{Namespace: ro.Namespace, Name: ro.Name + "-" + hash,
			Labels: map[string]string{v1alpha1.LabelRollout: ro.Name}, Annotations: map[string]string{v1alpha1.AnnotationRevision: hash}},
		Data: runtime.RawExtension{Raw: data}, Revision: number,
	}
	for k, v := range annotations {
		cr.Annotations[k] = v
	}
	if owned {
		cr.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(ro, v1alpha1.GroupVersion.WithKind("Rollout"))}
	}
	if err := p.env.Client.Create(p.t.Context(), cr); err != nil {
		p.t.Fatal(err)
	}
}

func TestHistory(t *testing.T) {
	p := newPlugin(t)
	ro, _ := p.given("web", v1alpha1.RolloutStatus{StableRevision: "h2",
		Rollback:  &v1alpha1.RolloutRollback{Request: "r1", Revision: "h2", Number: 2, From: "h3", Target: "h3", Since: metav1.Now()},
		Rollbacks: []v1alpha1.RevisionRollbacks{{Revision: "h3", Images: []string{"app:3"}, Aborted: 1, Requested: 2}, {Revision: "h0", Aborted: 5}}})
	full := func(images, at, by, analysis string) map[string]string {
		return map[string]string{v1alpha1.AnnotationImages: images, v1alpha1.AnnotationPromotedAt: at,
			v1alpha1.AnnotationPromotedBy: by, v1alpha1.AnnotationAnalysis: analysis}
	}
	p.record(ro, 3, "h3", "app:3", full("app:3,log:1", "2026-11-24T10:30:00Z", "steps", "success-rate 0.999 >= 0.99"), true)
	p.record(ro, 1, "h1", "app:1", nil, true)
	p.record(ro, 2, "h2", "app:2", full("app:2", "2026-11-20T09:00:00Z", "initial", "none"), true)
	p.record(ro, 9, "stray", "app:9", nil, false) // labelled, but not the Rollout's

	code, out := p.run("history", "web")
	if code != 0 {
		t.Fatalf("history: exit %d\n%s", code, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "REVISION") || !strings.Contains(lines[0], "ROLLED BACK") {
		t.Fatalf("history: want a header and 3 revisions:\n%s", out)
	}
	for i, want := range [][]string{
		{"3 ", "h3", "app:3,log:1", "2026-11-24T10:30:00Z", "steps", "success-rate 0.999 >= 0.99", "2 requested, 1 aborted"},
		{"2 (serving, pinned)", "h2", "app:2", "initial"},
		{"1 ", "h1", "app:1"},
	} {
		row := lines[i+1]
		if !strings.HasPrefix(row, want[0]) {
			t.Errorf("row %d = %q, want it to start %q", i+1, row, want[0])
		}
		for _, w := range want[1:] {
			if !strings.Contains(row, w) {
				t.Errorf("row %d = %q, lacks %q", i+1, row, w)
			}
		}
	}
	if f := strings.Fields(lines[3]); len(f) != 7 || !slices.Equal(f[3:], []string{"-", "-", "-", "-"}) {
		t.Errorf("an old record: %q, want - for what it does not say", lines[3])
	}
	if strings.Contains(out, "stray") || strings.Contains(lines[1], "serving") || strings.Contains(lines[2], "aborted") {
		t.Errorf("history marks or lists the wrong revisions:\n%s", out)
	}

	code, out = p.run("history", "web", "-o", "json")
	var revs []revision
	if err := json.Unmarshal([]byte(out), &revs); code != 0 || err != nil {
		t.Fatalf("history -o json: exit %d, %v\n%s", code, err, out)
	}
	want := []revision{
		{Number: 3, Hash: "h3", Images: []string{"app:3", "log:1"}, PromotedAt: "2026-11-24T10:30:00Z", PromotedBy: "steps", Analysis: "success-rate 0.999 >= 0.99", Aborted: 1, Requested: 2},
		{Number: 2, Hash: "h2", Images: []string{"app:2"}, PromotedAt: "2026-11-20T09:00:00Z", PromotedBy: "initial", Analysis: "none", Serving: true, Pinned: true},
		{Number: 1, Hash: "h1", Images: []string{"app:1"}},
	}
	if !slices.EqualFunc(revs, want, func(a, b revision) bool { return a.Number == b.Number && jsonEqual(t, a, b) }) {
		t.Errorf("history -o json:\n%s\nwant %+v", out, want)
	}
	if !strings.Contains(out, ">= 0.99") {
		t.Errorf("history -o json escapes what it prints:\n%s", out)
	}
	if code, out := p.run("history", "web", "-o", "yaml"); code != 0 || !strings.Contains(out, "- aborted: 1") || !strings.Contains(out, "number: 3") {
		t.Errorf("history -o yaml: exit %d\n%s", code, out)
	}
	if code, out := p.run("history", "web", "-o", "wide"); code != exitTrouble || !strings.Contains(out, "want json or yaml") {
		t.Errorf("history -o wide: exit %d\n%s", code, out)
	}
	if code, out := p.run("history", "missing"); code != exitTrouble || !strings.Contains(out, "rollout prod/missing") || !strings.Contains(out, "not found") {
		t.Errorf("history of a missing rollout: exit %d\n%s", code, out)
	}
}

func jsonEqual(t *testing.T, a, b any) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	return string(x) == string(y)
}

// annotation reads one of a Rollout's annotations.
func (p *plugin) annotation(ctx context.Context, name, key string) (string, error) {
	var ro v1alpha1.Rollout
	err := p.env.Client.Get(ctx, client.ObjectKey{Namespace: p.ns, Name: name}, &ro)
	return ro.Annotations[key], err
}

// answer plays the controller: once the annotation holds a new value, it
// writes status as write says. wait returns the value it answered.
func (p *plugin) answer(name, key string, write func(value string, s *v1alpha1.RolloutStatus)) (wait func() (string, error)) {
	before, err := p.annotation(p.t.Context(), name, key)
	if err != nil {
		p.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(p.t.Context(), 30*time.Second)
	type seen struct {
		value string
		err   error
	}
	done := make(chan seen, 1)
	go func() {
		defer cancel()
		var s seen
		s.err = waitPoll(ctx, func(ctx context.Context) (bool, error) {
			v, err := p.annotation(ctx, name, key)
			s.value = v
			return err == nil && v != "" && v != before, nil
		})
		if s.err == nil {
			s.err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
				var ro v1alpha1.Rollout
				if err := p.env.Client.Get(ctx, client.ObjectKey{Namespace: p.ns, Name: name}, &ro); err != nil {
					return err
				}
				write(s.value, &ro.Status)
				return p.env.Client.Status().Update(ctx, &ro)
			})
		}
		done <- s
	}()
	return func() (string, error) { s := <-done; return s.value, s.err }
}

func waitPoll(ctx context.Context, cond wait.ConditionWithContextFunc) error {
	return wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 30*time.Second, true, cond)
}

func TestRollback(t *testing.T) {
	p := newPlugin(t)
	p.given("web", v1alpha1.RolloutStatus{Phase: v1alpha1.PhaseHealthy, StableRevision: "h3"})
	answered := func(accepted bool, msg string) func(string, *v1alpha1.RolloutStatus) {
		return func(v string, s *v1alpha1.RolloutStatus) {
			id := v1alpha1.RollbackRequestID(v)
			s.ObservedRequests.Rollback = id
			s.RollbackRequest = &v1alpha1.RollbackRequestStatus{ID: id, Accepted: accepted, Message: msg}
			if accepted {
				s.StableRevision = "h2"
				s.Rollback = &v1alpha1.RolloutRollback{Request: id, Revision: "h2", Number: 2, From: "h3", Target: "h3", Since: metav1.Now()}
			}
		}
	}

	// Accepted: the request is JSON in the annotation, the user the API
	// server knows, and the controller's message is printed.
	got := p.answer("web", v1alpha1.AnnotationRollback, answered(true, "rolled back to revision 2 (h2) from h3"))
	code, out := p.run("rollback", "web", "--to-revision", "2", "--reason", "checkout errors")
	value, err := got()
	if code != exitRolledBack || !strings.Contains(out, "rollout prod/web: rolled back to revision 2 (h2) from h3") || err != nil {
		t.Fatalf("accepted: exit %d (answer: %v)\n%s", code, err, out)
	}
	var req v1alpha1.RollbackRequest
	if err := json.Unmarshal([]byte(value), &req); err != nil || req.ID == "" || len(req.ID) > 64 ||
		req.ToRevision != 2 || req.Reason != "checkout errors" || req.User == "" {
		t.Errorf("annotation %s = %s (%v), want a request for revision 2 that names the user", v1alpha1.AnnotationRollback, value, err)
	}
	first := req.ID

	// -o json and yaml print the answer, with the same exit codes, whatever it is.
	for _, tc := range []struct {
		name   string
		answer func(string, *v1alpha1.RolloutStatus) // nil: none comes
		args   []string
		format string
		result string
		code   int
		msg    string
	}{
		{"accepted", answered(true, "rolled back to revision 2 (h2) from h3"), []string{"--to-revision", "2"}, "json", "RolledBack", exitRolledBack, "rolled back to revision 2 (h2) from h3"},
		{"refused", answered(false, "rollback refused: no revision 9 in history"), []string{"--to-revision", "9"}, "yaml", "Refused", exitRefused, "rollback refused: no revision 9 in history"},
		{"unanswered", nil, []string{"--timeout", "1s"}, "json", "Pending", exitPending, "is written and pending"},
	} {
		var got func() (string, error)
		if tc.answer != nil {
			got = p.answer("web", v1alpha1.AnnotationRollback, tc.answer)
		}
		code, stdout, stderr := p.runApart(append([]string{"rollback", "web", "-o", tc.format}, tc.args...)...)
		value, err := p.annotation(t.Context(), "web", v1alpha1.AnnotationRollback)
		if got != nil {
			value, err = got()
		}
		var res rollbackResult
		if derr := decodeStrict(tc.format, stdout, &res); code != tc.code || err != nil || derr != nil {
			t.Fatalf("%s: exit %d, want %d (answer: %v, decode: %v)\n%s%s", tc.name, code, tc.code, err, derr, stdout, stderr)
		}
		s := p.rolloutObj("web").Status
		want := rollbackResult{Name: "web", Namespace: p.ns, Request: v1alpha1.RollbackRequestID(value), Result: tc.result, ExitCode: tc.code,
			Message: res.Message, StableRevision: s.StableRevision, Pinned: s.Rollback}
		if diff := cmp.Diff(want, res); diff != "" || !strings.Contains(res.Message, tc.msg) {
			t.Errorf("%s: message %q, want %q; (-want +got):\n%s", tc.name, res.Message, tc.msg, diff)
		}
		if !strings.Contains(stderr, "rollback requested (request "+res.Request+")") {
			t.Errorf("%s: stderr does not say the request was written:\n%s", tc.name, stderr)
		}
	}

	// Through the steps: accepted, and followed until it holds; on its way
	// at the timeout it is pending (2), aborted on its way it failed (1).
	onItsWay := func(aborted bool) func(string, *v1alpha1.RolloutStatus) {
		return func(v string, s *v1alpha1.RolloutStatus) {
			id := v1alpha1.RollbackRequestID(v)
			s.ObservedRequests.Rollback, s.StableRevision, s.CanaryRevision = id, "h3", "h1"
			s.RollbackRequest = &v1alpha1.RollbackRequestStatus{ID: id, Accepted: true, Message: "rolling back to revision 1 (h1) from h3 through the steps"}
			s.Rollback = &v1alpha1.RolloutRollback{Request: id, Revision: "h1", Number: 1, From: "h3", Target: "h3", Since: metav1.Now(), ThroughSteps: true}
			s.Message, s.Abort = "step 2: waiting for the analysis verdict", nil
			if aborted {
				s.Abort = &v1alpha1.RolloutAbort{Reason: "AnalysisFailed", Message: "step 2: analysis Failed: metric success-rate Failed"}
			}
		}
	}
	for _, tc := range []struct {
		aborted bool
		code    int
		says    string
	}{
		{false, exitPending, "accepted, still going through the steps after 2s: rolling back to revision 1 (h1) from h3 through the steps; step 2: waiting"},
		{true, exitRefused, "the rollback through the steps was aborted: step 2: analysis Failed"},
	} {
		got = p.answer("web", v1alpha1.AnnotationRollback, onItsWay(tc.aborted))
		code, out = p.run("rollback", "web", "--to-revision", "1", "--timeout", "2s")
		if _, err := got(); code != tc.code || err != nil || !strings.Contains(out, tc.says) {
			t.Errorf("through the steps (aborted %v): exit %d, want %d (answer: %v)\n%s", tc.aborted, code, tc.code, err, out)
		}
	}

	// Refused: the reason, exit 1; asking again is a new request.
	got = p.answer("web", v1alpha1.AnnotationRollback, answered(false, "rollback refused: no revision 9 in history"))
	code, out = p.run("rollback", "web", "--to-revision", "9")
	value, err = got()
	if code != exitRefused || !strings.Contains(out, "rollout prod/web: rollback refused: no revision 9 in history") || err != nil {
		t.Errorf("refused: exit %d (answer: %v)\n%s", code, err, out)
	}
	if id := v1alpha1.RollbackRequestID(value); id == first || strings.HasPrefix(id, "invalid-") {
		t.Errorf("a second request has id %q (the first was %q)", id, first)
	}

	// Unanswered: written and pending, exit 2.
	code, out = p.run("rollback", "web", "--timeout", "1s")
	if code != exitPending || !strings.Contains(out, "written and pending") {
		t.Errorf("unanswered: exit %d\n%s", code, out)
	}
	if v, err := p.annotation(t.Context(), "web", v1alpha1.AnnotationRollback); err != nil || v == value {
		t.Errorf("unanswered: the request was not written (%v)", err)
	}

	// Cancel: a token in its own annotation, answered in status as a
	// rollback request is.
	got = p.answer("web", v1alpha1.AnnotationRollbackCancel, func(v string, s *v1alpha1.RolloutStatus) {
		s.ObservedRequests.RollbackCancel, s.Rollback, s.StableRevision = v, nil, "h3"
		s.RollbackRequest = &v1alpha1.RollbackRequestStatus{ID: v, Accepted: true, Message: "rollback to revision 2 (h2) lifted; the target's template rolls out as usual"}
	})
	code, out = p.run("rollback", "web", "--cancel")
	if _, err := got(); code != 0 || err != nil || !strings.Contains(out, "rollback to revision 2 (h2) lifted") {
		t.Errorf("cancel: exit %d (answer: %v)\n%s", code, err, out)
	}
	// Nothing to lift is no failure either: no rollback pins it.
	got = p.answer("web", v1alpha1.AnnotationRollbackCancel, func(v string, s *v1alpha1.RolloutStatus) {
		s.ObservedRequests.RollbackCancel, s.Rollback = v, nil
		s.RollbackRequest = &v1alpha1.RollbackRequestStatus{ID: v, Message: "nothing to cancel: no rollback pins the Rollout"}
	})
	code, out = p.run("rollback", "web", "--cancel")
	if _, err := got(); code != 0 || err != nil || !strings.Contains(out, "nothing to cancel") {
		t.Errorf("cancel with nothing to lift: exit %d (answer: %v)\n%s", code, err, out)
	}
	if code, out := p.run("rollback", "web", "--cancel", "--to-revision", "2"); code != exitTrouble || !strings.Contains(out, "--cancel takes neither") {
		t.Errorf("--cancel with --to-revision: exit %d\n%s", code, out)
	}

	var ro v1alpha1.Rollout
	if err := p.env.Client.Get(t.Context(), client.ObjectKey{Namespace: p.ns, Name: "web"}, &ro); err != nil || ro.Generation != 1 {
		t.Errorf("a rollback changed the spec (generation %d, %v)", ro.Generation, err)
	}
}

// TestRollbackNeedsPermission: a user who may not patch the Rollout is told
// which permission is missing, and nothing is written; one who may is
// recorded by name.
func TestRollbackNeedsPermission(t *testing.T) {
	p := newPlugin(t)
	p.given("web", v1alpha1.RolloutStatus{StableRevision: "h3"})
	user := func(name string, verbs ...string) *plugin {
		return p.asUser(name, []rbacv1.PolicyRule{{APIGroups: []string{v1alpha1.GroupVersion.Group}, Resources: []string{"rollouts"}, Verbs: verbs}}, &v1alpha1.Rollout{})
	}

	viewer := user("viewer", "get", "list", "watch")
	code, out := viewer.run("rollback", "web", "--reason", "x")
	if code != exitTrouble || !strings.Contains(out, "rollout prod/web: you may not patch rollouts.tugboat.dev in namespace prod") ||
		!strings.Contains(out, "nothing was requested") {
		t.Errorf("viewer: exit %d\n%s", code, out)
	}
	if v, err := p.annotation(t.Context(), "web", v1alpha1.AnnotationRollback); v != "" || err != nil {
		t.Errorf("viewer's refused rollback wrote %q (%v)", v, err)
	}

	editor := user("alice", "get", "patch")
	got := p.answer("web", v1alpha1.AnnotationRollback, func(v string, s *v1alpha1.RolloutStatus) {
		id := v1alpha1.RollbackRequestID(v)
		s.ObservedRequests.Rollback, s.RollbackRequest = id, &v1alpha1.RollbackRequestStatus{ID: id, Accepted: true, Message: "rolled back"}
	})
	code, out = editor.run("rollback", "web")
	value, err := got()
	var req v1alpha1.RollbackRequest
	if jerr := json.Unmarshal([]byte(value), &req); code != 0 || err != nil || jerr != nil || req.User != "alice" || req.ToRevision != 0 {
		t.Errorf("alice: exit %d, request %s (%v, %v)\n%s", code, value, err, jerr, out)
	}
}

func TestRollbacksAcrossNamespaces(t *testing.T) {
	p := newPlugin(t)
	p.given("web", v1alpha1.RolloutStatus{Rollbacks: []v1alpha1.RevisionRollbacks{
		{Revision: "h3", Images: []string{"app:3", "log:1"}, Aborted: 1, Requested: 2},
		{Revision: "h4", Aborted: 1},
		{Revision: "h5", Images: []string{"app:3"}, Aborted: 1},
	}})
	staging := *p
	staging.ns = "staging"
	if err := p.env.Client.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: staging.ns}}); err != nil {
		t.Fatal(err)
	}
	staging.given("api", v1alpha1.RolloutStatus{Rollbacks: []v1alpha1.RevisionRollbacks{
		{Revision: "x1", Images: []string{"app:3"}, Aborted: 3},
		{Revision: "x2", Images: []string{"log:1"}}, // counted nothing
	}})

	code, out := p.run("rollbacks", "-A")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	want := [][]string{
		{"IMAGE", "ROLLOUTS", "ABORTED", "REQUESTED", "SEEN", "IN"},
		{"app:3", "2", "5", "2", "prod/web,", "staging/api"},
		{"log:1", "1", "1", "2", "prod/web"},
		{"h4", "1", "1", "0", "prod/web"},
	}
	if code != 0 || len(lines) != len(want) {
		t.Fatalf("rollbacks -A: exit %d\n%s", code, out)
	}
	for i, w := range want {
		if f := strings.Fields(lines[i]); !slices.Equal(f, w) {
			t.Errorf("rollbacks -A row %d = %q, want %q", i, f, w)
		}
	}

	code, out = p.run("rollbacks")
	if f := strings.Fields(strings.Split(out, "\n")[1]); code != 0 || strings.Contains(out, "staging") || strings.Contains(out, "SEEN IN") ||
		!slices.Equal(f, []string{"app:3", "1", "2", "2"}) {
		t.Errorf("rollbacks in prod: exit %d\n%s", code, out)
	}

	code, out = p.run("rollbacks", "--all-namespaces", "-o", "json")
	var images []rolledBackImage
	if err := json.Unmarshal([]byte(out), &images); code != 0 || err != nil || len(images) != 3 {
		t.Fatalf("rollbacks -o json: exit %d, %v\n%s", code, err, out)
	}
	if top := images[0]; top.Image != "app:3" || top.Rollouts != 2 || top.Aborted != 5 || top.Requested != 2 ||
		!slices.Equal(top.In, []string{"prod/web", "staging/api"}) {
		t.Errorf("rollbacks -o json: top %+v", top)
	}
	if code, out := p.run("rollbacks", "-o", "yaml"); code != 0 || !strings.Contains(out, "image: app:3") {
		t.Errorf("rollbacks -o yaml: exit %d\n%s", code, out)
	}
}
