package crash

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
	appsv1 "k8s.io/api/apps/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/rollout"
)

// watcher records every version of the tier's Rollouts, primaries and
// VirtualServices, in the API server's order (resourceVersion), for check.
type watcher struct {
	mu       sync.Mutex
	rollouts map[string][]rolloutVersion
	primary  map[string][]primaryVersion
	mesh     map[string][]meshVersion
}

type rolloutVersion struct {
	rv     uint64
	seen   time.Time
	status v1alpha1.RolloutStatus
}

type primaryVersion struct {
	rv       uint64
	revision string
}

type meshVersion struct {
	rv     uint64
	seen   time.Time
	canary int32
}

func (w *world) watch() *watcher {
	w.t.Helper()
	c, err := cache.New(kube.Config, cache.Options{Scheme: kube.Scheme, DefaultNamespaces: map[string]cache.Config{w.ns: {}}})
	if err != nil {
		w.t.Fatal(err)
	}
	v := &watcher{rollouts: map[string][]rolloutVersion{}, primary: map[string][]primaryVersion{}, mesh: map[string][]meshVersion{}}
	ctx, cancel := context.WithCancel(context.Background())
	w.t.Cleanup(cancel)
	for _, o := range []client.Object{&v1alpha1.Rollout{}, &appsv1.Deployment{}, &istiov1.VirtualService{}} {
		inf, err := c.GetInformer(ctx, o)
		if err != nil {
			w.t.Fatal(err)
		}
		record := func(obj any) { v.record(obj) }
		if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc:    record,
			UpdateFunc: func(_, obj any) { record(obj) },
		}); err != nil {
			w.t.Fatal(err)
		}
	}
	go func() { _ = c.Start(ctx) }()
	if !c.WaitForCacheSync(ctx) {
		w.t.Fatal("the watcher's cache never synced")
	}
	return v
}

func (v *watcher) record(obj any) {
	o, ok := obj.(client.Object)
	if !ok {
		return
	}
	rv, err := strconv.ParseUint(o.GetResourceVersion(), 10, 64)
	if err != nil {
		return
	}
	now := time.Now()
	v.mu.Lock()
	defer v.mu.Unlock()
	switch o := o.(type) {
	case *v1alpha1.Rollout:
		v.rollouts[o.Name] = append(v.rollouts[o.Name], rolloutVersion{rv: rv, seen: now, status: *o.Status.DeepCopy()})
	case *appsv1.Deployment:
		if name, ok := strings.CutSuffix(o.Name, "-primary"); ok {
			v.primary[name] = append(v.primary[name], primaryVersion{rv: rv, revision: o.Annotations["tugboat.dev/revision"]})
		}
	case *istiov1.VirtualService:
		var canary int32
		for _, h := range o.Spec.Http {
			for _, d := range h.Route {
				if strings.HasSuffix(d.GetDestination().GetHost(), "-canary") {
					canary = max(canary, d.Weight)
				}
			}
		}
		v.mesh[o.Name] = append(v.mesh[o.Name], meshVersion{rv: rv, seen: now, canary: canary})
	}
}

func (v *watcher) versions() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	n := 0
	for _, l := range v.rollouts {
		n += len(l)
	}
	for _, l := range v.primary {
		n += len(l)
	}
	for _, l := range v.mesh {
		n += len(l)
	}
	return n
}

// check returns every violation of the tier's invariants:
//   - within an attempt, the step never goes back, a step's start is never
//     rewritten (no step repeated), no pause is skipped and none ends more
//     than a second early;
//   - primary never runs a revision that status (as last written before it)
//     calls neither stable nor promoting;
//   - once status records an abort, the managed route sends nothing to the
//     canary within 2 s.
func (v *watcher) check() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []string
	for name, versions := range v.rollouts {
		sort.Slice(versions, func(i, j int) bool { return versions[i].rv < versions[j].rv })
		out = append(out, checkSteps(name, versions)...)
		out = append(out, checkPrimary(name, versions, v.primary[name])...)
		out = append(out, checkAborts(name, versions, v.mesh[name])...)
	}
	return out
}

func attemptOf(s v1alpha1.RolloutStatus) string {
	if s.CanaryRevision == "" || s.StartedAt == nil {
		return ""
	}
	return s.CanaryRevision + "@" + s.StartedAt.UTC().Format(time.RFC3339)
}

func checkSteps(name string, versions []rolloutVersion) []string {
	var out []string
	for i := 1; i < len(versions); i++ {
		a, b := versions[i-1].status, versions[i].status
		if attemptOf(a) == "" || attemptOf(a) != attemptOf(b) || a.Abort != nil || b.Abort != nil || a.CurrentStepIndex == nil || b.CurrentStepIndex == nil {
			continue
		}
		from, to := int(*a.CurrentStepIndex), int(*b.CurrentStepIndex)
		switch {
		case to < from:
			out = append(out, fmt.Sprintf("%s %s: step went back from %d to %d", name, attemptOf(a), from, to))
		case to == from && !a.StepStartedAt.Equal(b.StepStartedAt):
			out = append(out, fmt.Sprintf("%s %s: step %d started again (%s, then %s)", name, attemptOf(a), from, a.StepStartedAt, b.StepStartedAt))
		case to > from:
			for j := from + 1; j < to && j < len(steps); j++ {
				if steps[j].Pause != nil {
					out = append(out, fmt.Sprintf("%s %s: pause step %d skipped (from %d to %d)", name, attemptOf(a), j, from, to))
				}
			}
			if from < len(steps) && steps[from].Pause != nil && a.StepStartedAt != nil && b.StepStartedAt != nil {
				d, _, _ := rollout.PauseDuration(steps[from].Pause)
				if held := b.StepStartedAt.Sub(a.StepStartedAt.Time); held < d-time.Second {
					out = append(out, fmt.Sprintf("%s %s: pause step %d held %s of %s", name, attemptOf(a), from, held, d))
				}
			}
		}
	}
	return out
}

func checkPrimary(name string, versions []rolloutVersion, primaries []primaryVersion) []string {
	var out []string
	for _, p := range primaries {
		// The status in force when primary changed: the last written before.
		i := sort.Search(len(versions), func(i int) bool { return versions[i].rv > p.rv }) - 1
		if i < 0 {
			continue
		}
		s := versions[i].status
		if s.StableRevision == "" {
			continue // initializing: primary is created from the target
		}
		promoting := s.Promoting && s.Abort == nil && p.revision == s.CanaryRevision
		if p.revision != s.StableRevision && !promoting {
			out = append(out, fmt.Sprintf("%s: primary on revision %s (rv %d) while status (rv %d) calls %s stable and %s %s",
				name, p.revision, p.rv, versions[i].rv, s.StableRevision, ptr.Deref(ptrIf(s.Promoting, "promoting"), "not promoting"), s.CanaryRevision))
		}
	}
	return out
}

func ptrIf(b bool, s string) *string {
	if b {
		return &s
	}
	return nil
}

func checkAborts(name string, versions []rolloutVersion, mesh []meshVersion) []string {
	sort.Slice(mesh, func(i, j int) bool { return mesh[i].rv < mesh[j].rv })
	var out []string
	for i, r := range versions {
		if r.status.Abort == nil || (i > 0 && versions[i-1].status.Abort != nil && attemptOf(versions[i-1].status) == attemptOf(r.status)) {
			continue
		}
		// The first version recording this abort: the mesh must show 0% to
		// the canary by 2 s later.
		at := sort.Search(len(mesh), func(j int) bool { return mesh[j].rv > r.rv }) - 1
		ok := at >= 0 && mesh[at].canary == 0
		for j := at + 1; !ok && j < len(mesh) && mesh[j].seen.Sub(r.seen) <= 2*time.Second; j++ {
			ok = mesh[j].canary == 0
		}
		if !ok {
			out = append(out, fmt.Sprintf("%s: aborted (rv %d) and the canary still had traffic 2 s later", name, r.rv))
		}
	}
	return out
}
