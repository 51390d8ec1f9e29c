package reconciler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"
	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
	istiov1alpha3 "istio.io/client-go/pkg/apis/networking/v1alpha3"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/shadow"
	"github.com/tugboatdev/tugboat/traffic"
)

// act carries out an outcome so that no copy reaches the preview
// unstripped: a mirror is written only once the sanitizer has been as it is
// for the settle time (a change that strips more takes the mirror off until
// then), and the sanitizer stays as long as the Preview does (and the
// settle time after its last mirror came off, see sweep). An analysis run
// the API server would refuse stops the mirror before it is written. Then
// the run is created, or stopped once the outcome is final.
func (r *Reconciler) act(ctx context.Context, p *v1alpha1.Preview, w *world, out shadow.Outcome) error {
	owner := shadow.OwnerOf(p.Namespace, p.Name)
	if w.ownFilter && !w.filter.DeletionTimestamp.IsZero() {
		// Deleted by hand: let go as a deleted Preview's is, then made again.
		if err := r.replaceFilter(ctx, p, w); err != nil {
			return err
		}
		if out.Mirror {
			return &problemError{msg: fmt.Sprintf("envoyfilter %s/%s, which strips the copies' headers, is being deleted; it is made again once the mirror is off and settled", w.filter.Namespace, w.filter.Name), retry: w.retry}
		}
		return r.actRun(ctx, p, w, out)
	}
	if !out.Mirror {
		if err := r.takeOff(ctx, owner, w, w.placed); err != nil {
			return err
		}
		return r.actRun(ctx, p, w, out)
	}
	ready, err := r.ensureFilter(ctx, p, w, owner)
	if err != nil {
		return err
	}
	if wait := ready.Sub(r.Now()); wait > 0 {
		// Copies the proxies' filter may not strip yet stop meanwhile; those
		// the filter before the change stripped go on.
		if err := r.takeOff(ctx, owner, w, w.uncovered()); err != nil {
			return err
		}
		return &waitError{after: wait, msg: fmt.Sprintf("waiting for the filter that strips the copies' headers to reach the preview's proxies as it is now (the settle time, %s) before the mirror is written", r.settle())}
	}
	if err := r.tryRun(ctx, p, w, out); err != nil {
		return err
	}
	var elsewhere []placement
	for _, pl := range w.placed {
		if pl.namespace != w.source.namespace || pl.vs != w.source.vs {
			elsewhere = append(elsewhere, pl)
		}
	}
	if err := r.takeOff(ctx, owner, w, elsewhere); err != nil {
		return err
	}
	m := shadow.Plan(w.request, w.observed.Decision, shadow.TargetOf(p), shadow.MatchOf(p.Spec.Match))
	err = r.Router.ApplyPreview(ctx, w.source.namespace, w.source.vs, w.source.route, owner,
		&traffic.PreviewMirror{Host: m.Host, Port: m.Port, Percentage: m.Percentage, Match: m.Match})
	switch {
	case errors.Is(err, traffic.ErrMisconfigured):
		return &problemError{msg: fmt.Sprintf("the mirror cannot be put on %s: %v", shadow.SourceText(w.source.namespace, w.source.vs, w.source.route), err)}
	case apierrors.IsConflict(err):
		return &waitError{after: time.Second, msg: "the production VirtualService changed meanwhile; trying again"}
	case err != nil:
		return err
	}
	return r.actRun(ctx, p, w, out)
}

// tryRun asks the API server, without creating it, whether the analysis
// run the outcome measures with can be created: one it refuses would
// otherwise leave copies flowing with nothing to judge them.
func (r *Reconciler) tryRun(ctx context.Context, p *v1alpha1.Preview, w *world, out shadow.Outcome) error {
	if w.run == nil || !w.createRun || !out.Measure {
		return nil
	}
	run := w.run.DeepCopy()
	if err := controllerutil.SetControllerReference(p, run, r.Client.Scheme()); err != nil {
		return err
	}
	switch err := r.Client.Create(ctx, run, client.DryRunAll); {
	case apierrors.IsInvalid(err) || apierrors.IsBadRequest(err):
		return &problemError{msg: fmt.Sprintf("analysisrun %s/%s cannot be created: %v", run.Namespace, run.Name, err)}
	case err != nil && !apierrors.IsAlreadyExists(err):
		return fmt.Errorf("create analysisrun %s/%s (dry run): %w", run.Namespace, run.Name, err)
	}
	return nil
}

// takeOff takes owner's mirrors off the VirtualServices placed, having
// first marked on the preview's sanitizer when, so that it stays the settle
// time after; w no longer counts them.
func (r *Reconciler) takeOff(ctx context.Context, owner string, w *world, placed []placement) error {
	if len(placed) == 0 {
		return nil
	}
	if w.ownFilter {
		if err := r.markRemoval(ctx, w.filter); err != nil {
			return err
		}
	}
	for _, pl := range placed {
		if err := r.removeMirror(ctx, owner, pl); err != nil {
			return err
		}
	}
	w.placed = slices.DeleteFunc(w.placed, func(pl placement) bool {
		return slices.ContainsFunc(placed, func(o placement) bool { return o.namespace == pl.namespace && o.vs == pl.vs })
	})
	return nil
}

// markRemoval records on a sanitizer that a mirror is coming off now.
func (r *Reconciler) markRemoval(ctx context.Context, filter *istiov1alpha3.EnvoyFilter, also ...string) error {
	patch := client.MergeFrom(filter.DeepCopy())
	at := stamp(r.Now())
	metav1.SetMetaDataAnnotation(&filter.ObjectMeta, annotationMirrorRemoved, at)
	for _, key := range also {
		metav1.SetMetaDataAnnotation(&filter.ObjectMeta, key, at)
	}
	if err := r.Client.Patch(ctx, filter, patch); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("mark on envoyfilter %s/%s when the mirror came off: %w", filter.Namespace, filter.Name, err)
	}
	return nil
}

// removeMirror takes owner's mirror off a VirtualService; one that is gone
// took the mirror with it.
func (r *Reconciler) removeMirror(ctx context.Context, owner string, pl placement) error {
	var vs istiov1.VirtualService
	switch err := r.Client.Get(ctx, client.ObjectKey{Namespace: pl.namespace, Name: pl.vs}, &vs); {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("get virtualservice %s/%s: %w", pl.namespace, pl.vs, err)
	}
	if err := r.Router.ApplyPreview(ctx, pl.namespace, pl.vs, "", owner, nil); err != nil && !errors.Is(err, traffic.ErrMisconfigured) {
		return fmt.Errorf("take %s's mirror off virtualservice %s/%s: %w", owner, pl.namespace, pl.vs, err)
	}
	return nil
}

// replaceFilter lets a sanitizer deleted by hand go through sweep (its
// mirrors off, the settle time, the API server's word), and says in
// w.retry when to look again: not at all once only others' finalizers hold
// it, since its deletion wakes the Preview.
func (r *Reconciler) replaceFilter(ctx context.Context, p *v1alpha1.Preview, w *world) error {
	w.retry = 0
	if !controllerutil.ContainsFinalizer(w.filter, finalizer) {
		return nil
	}
	res, err := r.sweep(ctx, client.ObjectKeyFromObject(p))
	if err != nil {
		return err
	}
	w.placed, w.retry = nil, res.RequeueAfter
	if w.retry == 0 {
		w.retry = time.Second
	}
	return nil
}

// ensureFilter puts the sanitizer on the preview's pods as w wants it, and
// returns when copies may rely on it: the settle time after it last changed
// in a way that strips more. A change that only drops hosts (after their
// settle time, see wantHosts) leaves that time as it is. Before a change
// that strips more, the copies the filter it replaces did not strip, settled,
// come off (see history's covered). The filter carries a finalizer, so that
// nothing (the namespace's deletion, say) takes it away before the mirror.
func (r *Reconciler) ensureFilter(ctx context.Context, p *v1alpha1.Preview, w *world, owner string) (ready time.Time, _ error) {
	want, err := sanitizerFilter(p, w.selector, w.sanitizer, w.hosts)
	if err != nil {
		return time.Time{}, err
	}
	now := r.Now()
	have := w.filter
	switch {
	case have == nil:
		controllerutil.AddFinalizer(want, finalizer)
		metav1.SetMetaDataAnnotation(&want.ObjectMeta, annotationChanged, stamp(now))
		if err := r.Client.Create(ctx, want); err != nil {
			if apierrors.IsAlreadyExists(err) {
				return time.Time{}, &waitError{after: time.Second, msg: "the filter that strips the copies' headers is being created"}
			}
			return time.Time{}, fmt.Errorf("create envoyfilter %s/%s: %w", want.Namespace, want.Name, err)
		}
		return now.Add(r.settle()), nil
	case !w.ownFilter:
		return time.Time{}, &problemError{msg: fmt.Sprintf("envoyfilter %s/%s exists and is not this Preview's", have.Namespace, have.Name)}
	}
	h := historyOf(have)
	w.covered = h.covered
	changed := !proto.Equal(&have.Spec, &want.Spec) || have.Annotations[annotationHosts] != want.Annotations[annotationHosts]
	hostsOnly := r.sameButHosts(p, w, have, h.hosts)
	grows := slices.ContainsFunc(w.hosts, func(x shadow.Host) bool { return !slices.Contains(h.hosts, x) })
	widens := h.changed.IsZero() || (changed && (!hostsOnly || grows))
	if widens {
		switch {
		case !hostsOnly || h.changed.IsZero():
			w.covered = nil
		case !now.Before(h.changed.Add(r.settle())):
			w.covered = h.hosts
		}
		if err := r.takeOff(ctx, owner, w, w.uncovered()); err != nil {
			return time.Time{}, err
		}
	}
	retiring := jsonText(w.retiring)
	if changed || widens || have.Annotations[annotationRetiring] != retiring || have.Annotations[annotationDeleted] != "" ||
		!controllerutil.ContainsFinalizer(have, finalizer) || len(have.OwnerReferences) > 0 {
		update := w.filter.DeepCopy() // as takeOff left it
		update.Spec = *want.Spec.DeepCopy()
		// Filters made by earlier versions were owned by the Preview, which
		// would let the garbage collector take them before the mirror.
		update.OwnerReferences = nil
		controllerutil.AddFinalizer(update, finalizer)
		setAnnotation(update, annotationHosts, want.Annotations[annotationHosts])
		setAnnotation(update, annotationRetiring, retiring)
		// A Preview of the same name taking over a leftover filter.
		setAnnotation(update, annotationDeleted, "")
		if widens {
			h.changed = now
			setAnnotation(update, annotationChanged, stamp(now))
			setAnnotation(update, annotationCovered, jsonText(w.covered))
		}
		if err := r.Client.Update(ctx, update); err != nil {
			if apierrors.IsConflict(err) {
				return time.Time{}, &waitError{after: time.Second, msg: "the filter that strips the copies' headers changed meanwhile; trying again"}
			}
			return time.Time{}, fmt.Errorf("update envoyfilter %s/%s: %w", have.Namespace, have.Name, err)
		}
		w.filter = update
	}
	return h.changed.Add(r.settle()), nil
}

func setAnnotation(ef *istiov1alpha3.EnvoyFilter, key, value string) {
	if value == "" {
		delete(ef.Annotations, key)
		return
	}
	metav1.SetMetaDataAnnotation(&ef.ObjectMeta, key, value)
}

// uncovered are the placements with a host the filter before the last
// change did not strip, settled.
func (w *world) uncovered() []placement {
	var out []placement
	for _, pl := range w.placed {
		if pl.unknown || slices.ContainsFunc(shadow.HostsOf(pl.namespace, pl.hosts), func(h shadow.Host) bool { return !slices.Contains(w.covered, h) }) {
			out = append(out, pl)
		}
	}
	return out
}

// sameButHosts reports whether the sanitizer w wants is the one it has but
// for its hosts: the same headers, pods and script otherwise.
func (r *Reconciler) sameButHosts(p *v1alpha1.Preview, w *world, have *istiov1alpha3.EnvoyFilter, hosts []shadow.Host) bool {
	if len(hosts) == 0 {
		return false
	}
	lua, err := shadow.Sanitizer{Hosts: hosts, ClusterDomain: r.ClusterDomain, Remove: w.observed.Decision.RemoveHeaders}.Lua()
	if err != nil {
		return false
	}
	was, err := sanitizerFilter(p, w.selector, lua, hosts)
	return err == nil && proto.Equal(&was.Spec, &have.Spec)
}

// deleteFilter lets the sanitizer go: its finalizer off, if the filter is
// still as it was read, and deleted.
func (r *Reconciler) deleteFilter(ctx context.Context, have *istiov1alpha3.EnvoyFilter) error {
	if controllerutil.ContainsFinalizer(have, finalizer) {
		base := have.DeepCopy()
		controllerutil.RemoveFinalizer(have, finalizer)
		if err := r.Client.Patch(ctx, have, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("let envoyfilter %s/%s go: %w", have.Namespace, have.Name, err)
		}
	}
	if err := client.IgnoreNotFound(r.Client.Delete(ctx, have, client.Preconditions{UID: &have.UID, ResourceVersion: &have.ResourceVersion})); err != nil {
		return fmt.Errorf("delete envoyfilter %s/%s: %w", have.Namespace, have.Name, err)
	}
	return nil
}

// actRun creates the analysis run the outcome measures with, and stops runs
// no longer wanted: this generation's once the outcome is final (a verdict,
// or the ttl), any earlier generation's at once. A run is never stopped for
// a passing reason (a policy withdrawn for a moment): stopped, it would
// pass on what it measured so far.
func (r *Reconciler) actRun(ctx context.Context, p *v1alpha1.Preview, w *world, out shadow.Outcome) error {
	if w.run != nil && w.createRun && out.Measure {
		if err := controllerutil.SetControllerReference(p, w.run, r.Client.Scheme()); err != nil {
			return err
		}
		switch err := r.Client.Create(ctx, w.run); {
		case apierrors.IsInvalid(err) || apierrors.IsBadRequest(err):
			return &problemError{msg: fmt.Sprintf("analysisrun %s/%s cannot be created: %v", w.run.Namespace, w.run.Name, err)}
		case err != nil && !apierrors.IsAlreadyExists(err):
			return fmt.Errorf("create analysisrun %s/%s: %w", w.run.Namespace, w.run.Name, err)
		}
	}
	var runs v1alpha1.AnalysisRunList
	if err := r.Client.List(ctx, &runs, client.InNamespace(p.Namespace), client.MatchingLabels{labelPreview: p.Name, labelManagedBy: managedBy}); err != nil {
		return fmt.Errorf("list analysis runs of preview %s/%s: %w", p.Namespace, p.Name, err)
	}
	for i := range runs.Items {
		run := &runs.Items[i]
		current := run.Name == runName(p)
		if run.Spec.Terminate || run.Status.Phase.Completed() || !metav1.IsControlledBy(run, p) || (current && !out.Phase.Final()) {
			continue
		}
		patch := client.MergeFrom(run.DeepCopy())
		run.Spec.Terminate = true
		if err := r.Client.Patch(ctx, run, patch); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("terminate analysisrun %s/%s: %w", run.Namespace, run.Name, err)
		}
	}
	return nil
}
