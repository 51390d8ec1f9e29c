package reconciler

import (
	"context"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/tugboatdev/tugboat/analysis"
	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

// Defaults of the bounds on measurements in flight.
const (
	// DefaultMaxMeasuring bounds the measurements in flight at once, for
	// every run together.
	DefaultMaxMeasuring = 64
	// DefaultMaxMeasuringPerRun bounds one run's measurements in flight, so
	// that a run with many metrics on a slow server takes no more than its
	// share.
	DefaultMaxMeasuringPerRun = 4
	// DefaultMeasureFor is the longest one measurement may take, whatever
	// the metric's timeout says.
	DefaultMeasureFor = 2 * time.Minute
)

// perNamespace is the share of all measurements in flight that the runs of
// one namespace may hold, so that one tenant's silent servers leave room
// for every other tenant.
func perNamespace(total int64) int { return int(max(1, total/4)) }

// flights takes measurements off the reconcile path. A measurement that is
// due starts in a goroutine of its own and Reconcile returns at once; when it
// comes back the run is reconciled again (through wake), and that reconcile
// counts it. The measurements a pass starts together are counted together,
// once all are back (busy), as if taken one after another in one pass. A
// run holds no worker while its server thinks, at most perRun measurements,
// each for at most measureFor; the runs of one namespace at most a quarter
// of total, all runs together at most total.
type flights struct {
	total      *semaphore.Weighted
	perRun     int
	perNS      int
	measureFor time.Duration
	wake       chan event.GenericEvent

	mu     sync.Mutex
	byRun  map[types.NamespacedName]map[string]*flight // metric -> flight
	byNS   map[string]int                              // measurements under way
	ctx    context.Context
	cancel context.CancelFunc
}

// flight is one measurement under way, or back and not counted yet.
type flight struct {
	uid       types.UID // of the run it was started for
	startedAt time.Time
	done      bool
	taken     analysis.Taken
	cancel    context.CancelFunc
}

func newFlights(total, perRun int64, measureFor time.Duration) *flights {
	ctx, cancel := context.WithCancel(context.Background())
	return &flights{
		total:      semaphore.NewWeighted(total),
		perRun:     int(perRun),
		perNS:      perNamespace(total),
		byNS:       map[string]int{},
		measureFor: measureFor,
		wake:       make(chan event.GenericEvent, 1024),
		byRun:      map[types.NamespacedName]map[string]*flight{},
		ctx:        ctx,
		cancel:     cancel,
	}
}

// take returns the metric's measurement once it is back. Until then it
// starts it (measure, in a goroutine, with a deadline) or finds it under
// way, and returns analysis.ErrDeferred, which counts as nothing.
func (fs *flights) take(run *v1alpha1.AnalysisRun, metric string, at time.Time, measure func(ctx context.Context, at time.Time) analysis.Taken) analysis.Taken {
	key := types.NamespacedName{Namespace: run.Namespace, Name: run.Name}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	mine := fs.byRun[key]
	if f, ok := mine[metric]; ok {
		switch {
		case f.uid != run.UID: // a run of the same name, deleted since
			f.cancel()
			delete(mine, metric)
		case !f.done:
			return deferred
		default:
			delete(mine, metric)
			t := f.taken
			if t.StartedAt.IsZero() { // a Job's measurement started with it
				t.StartedAt = f.startedAt
			}
			return t
		}
	}
	if len(mine) >= fs.perRun || fs.byNS[run.Namespace] >= fs.perNS || !fs.total.TryAcquire(1) {
		return deferred
	}
	fs.byNS[run.Namespace]++
	if mine == nil {
		mine = map[string]*flight{}
		fs.byRun[key] = mine
	}
	ctx, cancel := context.WithTimeout(fs.ctx, fs.measureFor)
	f := &flight{uid: run.UID, startedAt: at, cancel: cancel}
	mine[metric] = f
	obj := &v1alpha1.AnalysisRun{}
	obj.Namespace, obj.Name = run.Namespace, run.Name
	go func() {
		t := measure(ctx, at)
		cancel()
		fs.mu.Lock()
		f.taken, f.done = t, true
		if fs.byNS[run.Namespace]--; fs.byNS[run.Namespace] <= 0 {
			delete(fs.byNS, run.Namespace)
		}
		fs.mu.Unlock()
		fs.total.Release(1)
		select {
		case fs.wake <- event.GenericEvent{Object: obj}:
		default: // full: the run's own requeue finds it a second later
		}
	}()
	return deferred
}

// busy reports whether any of the run's measurements is still under way.
// It drops what no pass of this run will collect: flights of an earlier run
// of the same name, and of metrics its spec does not have.
func (fs *flights) busy(run *v1alpha1.AnalysisRun) bool {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	busy := false
	mine := fs.byRun[types.NamespacedName{Namespace: run.Namespace, Name: run.Name}]
	for metric, f := range mine {
		if f.uid != run.UID || !slices.ContainsFunc(run.Spec.Metrics, func(m v1alpha1.Metric) bool { return m.Name == metric }) {
			f.cancel()
			delete(mine, metric)
			continue
		}
		busy = busy || !f.done
	}
	return busy
}

var deferred = analysis.Taken{Sample: analysis.Sample{Err: analysis.ErrDeferred}}

// forget drops a run's measurements, cancelling those under way (each frees
// its slot in total as it returns): the run is gone or decided.
func (fs *flights) forget(key types.NamespacedName) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for _, f := range fs.byRun[key] {
		f.cancel()
	}
	delete(fs.byRun, key)
}

// stop cancels every measurement under way.
func (fs *flights) stop() { fs.cancel() }
