package main

import (
	"context"
	"fmt"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

// respec gives the preview a new spec, as a CI re-run does, so that its
// status is of the generation before.
func respec(pv *v1alpha1.Preview) { pv.Spec.Percentage = 20 }

func TestPreviewWaitExitCodes(t *testing.T) {
	p := newPlugin(t).inNamespace("pr-42")
	for i, tc := range []struct {
		name   string
		status v1alpha1.PreviewStatus
		// stale gives the preview a new spec after status is written.
		stale bool
		args  []string
		code  int
		want  []string
	}{{
		name:   "succeeded",
		status: v1alpha1.PreviewStatus{Phase: "Succeeded", Message: "analysis Successful: the preview behaves as production does; the mirror is gone"},
		code:   exitSucceeded, want: []string{"Succeeded: analysis Successful: the preview behaves as production does"},
	}, {
		name:   "failed, explained metric by metric",
		status: v1alpha1.PreviewStatus{Phase: "Failed", Message: "analysis Failed: metric success-rate Failed; the mirror is gone", Analysis: failedAnalysis("x")},
		code:   exitFailed,
		want: []string{"Failed: analysis Failed: metric success-rate Failed", "success-rate Failed since 2026-11-24T10:30:00Z: did not meet result[0] >= 0.99",
			`query: sum(rate(istio_requests_total{destination_workload="web"}[1m]))`},
	}, {
		name:   "inconclusive",
		status: v1alpha1.PreviewStatus{Phase: "Inconclusive", Message: "analysis Inconclusive: no data; the mirror is gone", Analysis: failedAnalysis("x")},
		code:   exitNoVerdict, want: []string{"Inconclusive: analysis Inconclusive: no data", "success-rate Failed since"},
	}, {
		name:   "denied",
		status: v1alpha1.PreviewStatus{Phase: "Denied", Message: "denied: no rule of prod's mirror policies selects namespace pr-42"},
		code:   exitNoVerdict, want: []string{"Denied: denied: no rule of prod's mirror policies", "it stays Denied until a mirror policy in namespace prod allows it"},
	}, {
		name:   "expired",
		status: v1alpha1.PreviewStatus{Phase: "Expired", Message: "the ttl ran out before a verdict; the mirror is gone"},
		code:   exitNoVerdict, want: []string{"Expired: the ttl ran out before a verdict"},
	}, {
		name:   "mirroring until the timeout",
		status: v1alpha1.PreviewStatus{Phase: "Mirroring", Message: "receiving copies"},
		args:   []string{"--timeout", "1s"},
		code:   exitTimeout, want: []string{"no verdict after 1s: Mirroring: receiving copies"},
	}, {
		name:   "a verdict on the spec before does not end the wait",
		status: v1alpha1.PreviewStatus{Phase: "Succeeded", Message: "analysis Successful"},
		stale:  true, args: []string{"--timeout", "1s"},
		code: exitTimeout, want: []string{"no verdict after 1s: the controller has not yet seen generation 2 (status is of generation 1: Succeeded)"},
	}, {
		name:   "a failure on the spec before does not end it either",
		status: v1alpha1.PreviewStatus{Phase: "Failed", Message: "analysis Failed"},
		stale:  true, args: []string{"--timeout", "1s"},
		code: exitTimeout, want: []string{"has not yet seen generation 2"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			name := fmt.Sprintf("wait-%d", i)
			p.givenPreview(name, nil, tc.status)
			if tc.stale {
				p.changePreview(name, respec)
			}
			code, out, errOut := p.runApart(append([]string{"preview", "wait", name}, tc.args...)...)
			if code != tc.code {
				t.Errorf("exit %d, want %d\n%s%s", code, tc.code, out, errOut)
			}
			for _, want := range tc.want {
				if !strings.Contains(out, want) {
					t.Errorf("stdout lacks %q:\n%s", want, out)
				}
			}
			if tc.code != exitSucceeded && !strings.Contains(errOut, "preview pr-42/"+name+": ") {
				t.Errorf("stderr does not say why it exits %d:\n%s", tc.code, errOut)
			}
			// -o prints the Preview instead, with the same exit code.
			for _, format := range []string{"json", "yaml"} {
				code, out, errOut := p.runApart(append([]string{"preview", "wait", name, "-o", format}, tc.args...)...)
				var got v1alpha1.Preview
				if err := decodeStrict(format, out, &got); code != tc.code || err != nil || got.Name != name || got.Kind != "Preview" {
					t.Errorf("-o %s: exit %d, want %d (%v)\n%s%s", format, code, tc.code, err, out, errOut)
				}
			}
		})
	}

	// A verdict for the current spec, written while the wait goes on, ends it.
	p.givenPreview("rerun", nil, v1alpha1.PreviewStatus{Phase: "Failed", Message: "analysis Failed: the first build"})
	pv := p.changePreview("rerun", respec)
	type result struct {
		code int
		out  string
	}
	done := make(chan result, 1)
	go func() {
		code, out := p.run("preview", "wait", "rerun", "--timeout", "30s")
		done <- result{code, out}
	}()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := p.env.Client.Get(t.Context(), client.ObjectKeyFromObject(pv), pv); err != nil {
			return err
		}
		pv.Status = v1alpha1.PreviewStatus{ObservedGeneration: pv.Generation, Phase: "Succeeded", Message: "analysis Successful: the second build"}
		return p.env.Client.Status().Update(t.Context(), pv)
	})
	if err != nil {
		t.Fatal(err)
	}
	if r := <-done; r.code != exitSucceeded || !strings.Contains(r.out, "Succeeded: analysis Successful: the second build") {
		t.Errorf("a re-run's wait: exit %d, want %d\n%s", r.code, exitSucceeded, r.out)
	}

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no such preview", []string{"missing"}, `"missing" not found`},
		{"a connect timeout of 0", []string{"wait-0", "--connect-timeout", "0s"}, "--connect-timeout: want a positive duration"},
		{"a format wait does not print", []string{"wait-0", "-o", "name"}, "want json or yaml"},
	} {
		code, out, errOut := p.runApart(append([]string{"preview", "wait"}, tc.args...)...)
		if code != exitTrouble || out != "" || !strings.Contains(errOut, tc.want) {
			t.Errorf("%s: exit %d, want %d and nothing on stdout\n%s%s", tc.name, code, exitTrouble, out, errOut)
		}
	}
}

func TestPreviewDelete(t *testing.T) {
	p := newPlugin(t).inNamespace("pr-42")
	const finalizer = "tugboat.dev/preview-mirror" // the controller's, held until the mirror is off the route
	held := func(pv *v1alpha1.Preview) { pv.Finalizers = []string{finalizer} }
	release := func(name string) { p.changePreview(name, func(pv *v1alpha1.Preview) { pv.Finalizers = nil }) }
	gone := func(name string) bool {
		err := p.env.Client.Get(t.Context(), client.ObjectKey{Namespace: p.ns, Name: name}, &v1alpha1.Preview{})
		return apierrors.IsNotFound(err)
	}

	// While the controller holds it, delete waits, and says so at the timeout.
	p.givenPreview("web", held, v1alpha1.PreviewStatus{Phase: "Mirroring"})
	code, out := p.run("preview", "delete", "web", "--timeout", "1s")
	if code != exitTimeout || !strings.Contains(out, "preview pr-42/web is still there after 1s, held by tugboat.dev/preview-mirror") {
		t.Errorf("delete with the mirror in place: exit %d, want %d\n%s", code, exitTimeout, out)
	}
	if pv := p.previewObj("web"); pv.DeletionTimestamp == nil {
		t.Errorf("delete did not delete")
	}
	// A create for a Preview on its way out is refused.
	if code, out := p.run(append([]string{"preview", "create", "web"}, webPreview...)...); code != exitTrouble || !strings.Contains(out, "is being deleted") {
		t.Errorf("create while being deleted: exit %d\n%s", code, out)
	}

	release("web")

	// Given time, it waits until the controller lets go.
	p.givenPreview("db", held, v1alpha1.PreviewStatus{Phase: "Mirroring"})
	type result struct {
		code int
		out  string
	}
	done := make(chan result, 1)
	go func() {
		code, out := p.run("preview", "delete", "db", "--timeout", "30s")
		done <- result{code, out}
	}()
	if err := waitPoll(t.Context(), func(ctx context.Context) (bool, error) {
		var pv v1alpha1.Preview
		err := p.env.Client.Get(ctx, client.ObjectKey{Namespace: p.ns, Name: "db"}, &pv)
		return err == nil && pv.DeletionTimestamp != nil, err
	}); err != nil {
		t.Fatalf("delete never deleted: %v", err)
	}
	select {
	case r := <-done:
		t.Fatalf("delete returned while the mirror was in place: exit %d\n%s", r.code, r.out)
	default:
	}
	release("db")
	if r := <-done; r.code != 0 || r.out != "preview pr-42/db deleted: the mirror is gone\n" || !gone("db") {
		t.Errorf("delete once the mirror is gone: exit %d\n%s", r.code, r.out)
	}

	// --wait=false returns once the deletion is accepted.
	p.givenPreview("api", held, v1alpha1.PreviewStatus{Phase: "Mirroring"})
	code, out = p.run("preview", "delete", "api", "--wait=false")
	if code != 0 || out != "preview pr-42/api deleted; the controller removes the mirror, then the Preview\n" {
		t.Errorf("delete --wait=false: exit %d\n%s", code, out)
	}
	if pv := p.previewObj("api"); pv.DeletionTimestamp == nil {
		t.Errorf("delete --wait=false did not delete")
	}
	release("api")

	p.givenPreview("named", nil, v1alpha1.PreviewStatus{})
	if code, out := p.run("preview", "delete", "named", "-o", "name"); code != 0 || out != "preview.tugboat.dev/named\n" || !gone("named") {
		t.Errorf("delete -o name: exit %d\n%s", code, out)
	}
	if code, out := p.run("preview", "delete", "missing"); code != exitTrouble || !strings.Contains(out, `"missing" not found`) {
		t.Errorf("delete of a missing preview: exit %d\n%s", code, out)
	}
	if code, out := p.run("preview", "delete", "missing", "--ignore-not-found"); code != 0 || out != "" {
		t.Errorf("delete --ignore-not-found of a missing preview: exit %d\n%s", code, out)
	}
}
