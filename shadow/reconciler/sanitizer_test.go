package reconciler_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	networkingv1 "istio.io/api/networking/v1"
	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/shadow/reconciler"
	"github.com/tugboatdev/tugboat/traffic"
)

// An hour of settle time, which passes only when a test moves the clock.
func settleHour(r *reconciler.Reconciler) { r.SanitizerSettle = time.Hour }

// consistently polls cond for d and fails at the first time it does not hold.
func (f *fixture) consistently(what string, d time.Duration, cond func() bool) {
	f.t.Helper()
	err := wait.PollUntilContextTimeout(f.t.Context(), 50*time.Millisecond, d, true, func(context.Context) (bool, error) {
		return !cond(), nil
	})
	if err == nil {
		f.t.Fatalf("%s stopped holding", what)
	}
}

// settled moves the clock past the settle time and wakes the controller.
func (f *fixture) settled() {
	f.clock.add(time.Hour + time.Second)
	f.touch()
}

// filterHosts are the production hosts the sanitizer says it strips for.
func (f *fixture) filterHosts() []string {
	f.t.Helper()
	ef, err := f.filter()
	if err != nil {
		return nil
	}
	var hosts []struct{ Name, Namespace string }
	if err := json.Unmarshal([]byte(ef.Annotations["tugboat.dev/sanitizer-hosts"]), &hosts); err != nil {
		f.t.Fatalf("the sanitizer's hosts: %v", err)
	}
	var out []string
	for _, h := range hosts {
		out = append(out, h.Namespace+"/"+h.Name)
	}
	return out
}

func (f *fixture) mirroringAfterSettle() {
	f.t.Helper()
	p := f.eventually("waiting for the sanitizer", func(p *v1alpha1.Preview) bool { return p.Status.Phase == "Pending" })
	if !strings.Contains(p.Status.Message, "settle time") {
		f.t.Errorf("message %q", p.Status.Message)
	}
	f.consistently("no mirror before the sanitizer settled", time.Second, func() bool { return len(f.mirrors()) == 0 })
	f.settled()
	f.eventually("Mirroring", func(p *v1alpha1.Preview) bool { return p.Status.Phase == "Mirroring" })
	f.eventuallyMirrors("the mirror", 2)
}

// The sanitizer outlasts the mirror by the settle time, however many times
// the Preview is reconciled in between.
func TestSanitizerOutlastsTheMirrorBySettleTime(t *testing.T) {
	f := given(t, map[string]string{"tugboat.dev/preview": "true"}, settleHour)
	f.policy()
	p := f.newPreview(nil)
	f.mirroringAfterSettle()
	if err := f.c.Delete(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	f.eventuallyMirrors("the mirror off", 0)
	f.consistently("the sanitizer while copies may be in flight", 2*time.Second, func() bool {
		_, err := f.filter()
		return err == nil
	})
	f.settled()
	err := wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := f.filter()
		return apierrors.IsNotFound(f.c.Get(ctx, client.ObjectKeyFromObject(p), &v1alpha1.Preview{})) && apierrors.IsNotFound(err), nil
	})
	if err != nil {
		t.Fatalf("the preview and its sanitizer stay after the settle time: %v", err)
	}
}

// A new source's hosts reach the sanitizer the settle time before its
// mirror, and the old source's stay the settle time after theirs.
func TestNewSourceWaitsForTheSanitizerAndOldHostsStay(t *testing.T) {
	f := given(t, map[string]string{"tugboat.dev/preview": "true"}, settleHour)
	f.create(&istiov1.VirtualService{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.prod, Name: "cart"},
		Spec: networkingv1.VirtualService{Hosts: []string{"cart"}, Http: []*networkingv1.HTTPRoute{{
			Name:  "primary",
			Route: []*networkingv1.HTTPRouteDestination{{Destination: &networkingv1.Destination{Host: "cart"}}},
		}}},
	})
	pol := f.policy()
	f.edit(pol, func() {
		pol.Spec.Rules[0].Routes = append(pol.Spec.Rules[0].Routes, v1alpha1.PreviewRouteRef{Name: "cart", Route: "primary"})
	})
	p := f.newPreview(nil)
	f.mirroringAfterSettle()

	f.edit(p, func() {
		p.Spec.Source.VirtualService.Name = "cart"
	})
	shop, cart := f.prod+"/shop", f.prod+"/cart"
	wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) { //nolint:errcheck // checked below
		return slices.Contains(f.filterHosts(), cart), nil
	})
	if got := f.filterHosts(); !slices.Contains(got, cart) || !slices.Contains(got, shop) {
		t.Fatalf("the sanitizer strips for %v, want both sources' hosts", got)
	}
	f.consistently("copies from the old source only, until the sanitizer knows the new one", 2*time.Second, func() bool {
		return len(f.mirrors()) == 2 && len(f.mirrorsOf("cart")) == 0
	})

	f.settled()
	err := wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		return len(f.mirrors()) == 0 && len(f.mirrorsOf("cart")) == 2, nil
	})
	if err != nil {
		t.Fatalf("the mirror never moved: shop %v, cart %v", f.mirrors(), f.mirrorsOf("cart"))
	}
	f.consistently("the old source's hosts in the sanitizer while its copies may be in flight", time.Second, func() bool {
		return slices.Contains(f.filterHosts(), shop)
	})
	changed := func() string {
		ef, err := f.filter()
		if err != nil {
			t.Fatal(err)
		}
		return ef.Annotations["tugboat.dev/sanitizer-changed"]
	}
	before := changed()
	f.settled()
	err = wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		return !slices.Contains(f.filterHosts(), shop), nil
	})
	if err != nil {
		t.Errorf("the old source's hosts stay in the sanitizer: %v", f.filterHosts())
	}
	// Dropping them strips no more: nothing waits for it.
	if after := changed(); after != before {
		t.Errorf("dropping hosts counted as a change to wait for (%s → %s)", before, after)
	}
	f.consistently("the copies from the new source", time.Second, func() bool { return len(f.mirrorsOf("cart")) == 2 })
}

// mirrorsOf is mirrors for another VirtualService of the production
// namespace.
func (f *fixture) mirrorsOf(name string) []string {
	f.t.Helper()
	var vs istiov1.VirtualService
	if err := f.c.Get(f.t.Context(), client.ObjectKey{Namespace: f.prod, Name: name}, &vs); err != nil {
		f.t.Fatal(err)
	}
	var out []string
	for _, h := range vs.Spec.GetHttp() {
		for _, m := range h.GetMirrors() {
			out = append(out, h.GetName()+": "+m.GetDestination().GetHost())
		}
	}
	return out
}

// With the record of wants broken by hand, the VirtualService still counts
// as the preview's: deleting it takes the copies away.
func TestMirrorUnderAnUnreadableRecordIsSwept(t *testing.T) {
	f := given(t, map[string]string{"tugboat.dev/preview": "true"})
	f.policy()
	p := f.newPreview(nil)
	f.eventually("Mirroring", func(p *v1alpha1.Preview) bool { return p.Status.Phase == "Mirroring" })
	f.eventuallyMirrors("the mirror", 2)
	vs := &istiov1.VirtualService{ObjectMeta: metav1.ObjectMeta{Namespace: f.prod, Name: "shop"}}
	f.edit(vs, func() { vs.Annotations["tugboat.dev/preview-mirrors"] = "{oops" })
	if err := f.c.Delete(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	err := wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		return apierrors.IsNotFound(f.c.Get(ctx, client.ObjectKeyFromObject(p), &v1alpha1.Preview{})), nil
	})
	if err != nil {
		t.Fatalf("the preview was never let go: %v", err)
	}
	if got := f.mirrors(); len(got) != 0 {
		t.Errorf("copies flow after the preview went: %v", got)
	}
}

// A run the API server refuses is found before the mirror is written, so
// production's VirtualService is never touched.
func TestARefusedRunWritesNoMirror(t *testing.T) {
	f := given(t, map[string]string{"tugboat.dev/preview": "true"})
	f.policy()
	f.template()
	var vs istiov1.VirtualService
	if err := f.c.Get(t.Context(), client.ObjectKey{Namespace: f.prod, Name: "shop"}, &vs); err != nil {
		t.Fatal(err)
	}
	f.newPreview(func(p *v1alpha1.Preview) {
		p.Spec.Analysis = &v1alpha1.Analysis{
			Templates:           []v1alpha1.AnalysisTemplateRef{{TemplateName: "preview-errors"}},
			Args:                []argo.AnalysisRunArgument{{Name: "namespace", Value: "x"}},
			AnalysisRunMetadata: &argo.AnalysisRunMetadata{Labels: map[string]string{"team": "not a label value!"}},
		}
	})
	p := f.eventually("Pending", func(p *v1alpha1.Preview) bool {
		return p.Status.Phase == "Pending" && strings.Contains(p.Status.Message, "cannot be created")
	})
	f.consistently("production's VirtualService untouched", 2*time.Second, func() bool {
		var now istiov1.VirtualService
		return f.c.Get(t.Context(), client.ObjectKeyFromObject(&vs), &now) == nil && now.ResourceVersion == vs.ResourceVersion
	})
	if !strings.Contains(p.Status.Message, "shop-preview-1") {
		t.Errorf("message %q", p.Status.Message)
	}
}

type applier interface {
	ApplyPreview(ctx context.Context, namespace, name, route, owner string, want *traffic.PreviewMirror) error
}

// conflicting is the Router, losing the race for the VirtualService as
// often as the test says, and counting the removals.
type conflicting struct {
	applier
	conflicts, removals, removalConflicts atomic.Int32
}

func (c *conflicting) ApplyPreview(ctx context.Context, namespace, name, route, owner string, want *traffic.PreviewMirror) error {
	if want == nil {
		c.removals.Add(1)
		if c.removalConflicts.Add(-1) >= 0 {
			return apierrors.NewConflict(schema.GroupResource{Group: "networking.istio.io", Resource: "virtualservices"}, name, nil)
		}
	} else if c.conflicts.Add(-1) >= 0 {
		return apierrors.NewConflict(schema.GroupResource{Group: "networking.istio.io", Resource: "virtualservices"}, name, nil)
	}
	return c.applier.ApplyPreview(ctx, namespace, name, route, owner, want)
}

// Losing a race for the VirtualService is tried again, with the copies
// flowing meanwhile.
func TestAConflictKeepsTheMirror(t *testing.T) {
	var router *conflicting
	f := given(t, map[string]string{"tugboat.dev/preview": "true"}, func(r *reconciler.Reconciler) {
		router = &conflicting{applier: r.Router}
		r.Router = router
	})
	f.policy()
	p := f.newPreview(nil)
	f.eventually("Mirroring", func(p *v1alpha1.Preview) bool { return p.Status.Phase == "Mirroring" })
	f.eventuallyMirrors("the mirror", 2)
	router.conflicts.Store(3)
	router.removals.Store(0)
	f.edit(p, func() {
		p.Spec.Percentage = 5
	})
	err := wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		got := f.mirrors()
		return len(got) == 2 && strings.HasSuffix(got[0], "=5"), nil
	})
	if err != nil {
		t.Fatalf("the new percentage never landed: %v", f.mirrors())
	}
	if n := router.removals.Load(); n != 0 || router.conflicts.Load() >= 0 {
		t.Errorf("%d removals while the write was retried (%d conflicts left)", n, router.conflicts.Load())
	}
}

// A sanitizer deleted by hand does not hang in Terminating: the mirror goes
// first, the filter once that has settled, and the copies resume only once
// the new filter has.
func TestASanitizerDeletedByHandIsMadeAgain(t *testing.T) {
	f := given(t, map[string]string{"tugboat.dev/preview": "true"}, settleHour)
	f.policy()
	f.newPreview(nil)
	f.mirroringAfterSettle()
	old, err := f.filter()
	if err != nil {
		t.Fatal(err)
	}
	if err := f.c.Delete(t.Context(), old); err != nil {
		t.Fatal(err)
	}
	f.eventuallyMirrors("the mirror off", 0)
	f.eventually("Pending", func(p *v1alpha1.Preview) bool { return p.Status.Phase == "Pending" })
	f.consistently("the old filter held while copies may be in flight", time.Second, func() bool {
		ef, err := f.filter()
		return err == nil && ef.UID == old.UID
	})
	f.settled()
	err = wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		ef, err := f.filter()
		return err == nil && ef.UID != old.UID && ef.DeletionTimestamp.IsZero(), nil
	})
	if err != nil {
		t.Fatalf("no new sanitizer: %v", err)
	}
	f.consistently("no copies while the new filter settles", time.Second, func() bool { return len(f.mirrors()) == 0 })
	f.settled()
	f.eventuallyMirrors("the mirror back", 2)
}

// A header the policy adds to the removed ones stops the copies until the
// filter that strips it has settled, even when taking them off first loses
// a race.
func TestAHeaderAddedStopsTheCopiesUntilStripped(t *testing.T) {
	var router *conflicting
	f := given(t, map[string]string{"tugboat.dev/preview": "true"}, settleHour, func(r *reconciler.Reconciler) {
		router = &conflicting{applier: r.Router}
		r.Router = router
	})
	pol := f.policy()
	f.newPreview(nil)
	f.mirroringAfterSettle()
	router.removalConflicts.Store(1)
	f.edit(pol, func() {
		pol.Spec.Rules[0].RemoveHeaders = append(pol.Spec.Rules[0].RemoveHeaders, "x-new-secret")
	})
	f.eventuallyMirrors("the mirror off", 0)
	// The copies come off first, then the filter changes.
	err := wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		ef, err := f.filter()
		return err == nil && strings.Contains(ef.Spec.String(), "x-new-secret"), nil
	})
	if err != nil {
		t.Fatal("the filter never strips the new header")
	}
	f.consistently("no copies while the filter settles", time.Second, func() bool { return len(f.mirrors()) == 0 })
	if router.removalConflicts.Load() >= 0 {
		t.Fatal("the removal never lost its race")
	}
	f.settled()
	f.eventuallyMirrors("the mirror back", 2)
}

// A client that calls production's Service by its cluster IP keeps that as
// the copy's host: the filter strips for it too.
func TestTheSanitizerKnowsProductionsClusterIP(t *testing.T) {
	f := given(t, map[string]string{"tugboat.dev/preview": "true"})
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.prod, Name: "shop"},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "shop"}, Ports: []corev1.ServicePort{{Port: 80}}},
	}
	f.create(svc)
	if svc.Spec.ClusterIP == "" || svc.Spec.ClusterIP == corev1.ClusterIPNone {
		t.Fatalf("the API server gave no cluster IP: %+v", svc.Spec)
	}
	f.policy()
	f.newPreview(nil)
	f.eventually("Mirroring", func(p *v1alpha1.Preview) bool { return p.Status.Phase == "Mirroring" })
	if got := f.filterHosts(); !slices.Contains(got, "/"+svc.Spec.ClusterIP) {
		t.Errorf("the sanitizer strips for %v, not production's cluster IP %s", got, svc.Spec.ClusterIP)
	}
}

// Lowering maxPreviews keeps the previews first in the record mirroring,
// rather than denying them all in turn.
func TestLoweringMaxPreviewsKeepsTheFirst(t *testing.T) {
	f := given(t, map[string]string{"tugboat.dev/preview": "true"})
	pol := f.policy()
	for _, name := range []string{"a", "b"} {
		f.newPreview(func(p *v1alpha1.Preview) { p.Name = name })
	}
	phases := func() (string, string) {
		var a, b v1alpha1.Preview
		_ = f.c.Get(t.Context(), client.ObjectKey{Namespace: f.preview, Name: "a"}, &a)
		_ = f.c.Get(t.Context(), client.ObjectKey{Namespace: f.preview, Name: "b"}, &b)
		return a.Status.Phase, b.Status.Phase
	}
	err := wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		a, b := phases()
		return a == "Mirroring" && b == "Mirroring", nil
	})
	if err != nil {
		t.Fatal(phases())
	}
	f.edit(pol, func() {
		pol.Spec.Rules[0].MaxPreviews = 1
	})
	err = wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		a, b := phases()
		return a == "Mirroring" && b == "Denied", nil
	})
	if err != nil {
		t.Fatal(phases())
	}
	f.consistently("the first preview mirroring, the second denied", 2*time.Second, func() bool {
		a, b := phases()
		return a == "Mirroring" && b == "Denied"
	})
}
