package reconciler

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/tugboatdev/tugboat/analysis"
	"github.com/tugboatdev/tugboat/api/v1alpha1"
)

// One tenant whose servers never answer holds at most its share of the
// measurements in flight: another tenant's run is measured at once.
func TestOneNamespaceHoldsOnlyItsShare(t *testing.T) {
	fs := newFlights(8, 4, time.Minute)
	defer fs.stop()
	silent := func(ctx context.Context, _ time.Time) analysis.Taken {
		<-ctx.Done()
		return analysis.Taken{Sample: analysis.Sample{Err: ctx.Err()}}
	}
	run := func(ns, name string) *v1alpha1.AnalysisRun {
		return &v1alpha1.AnalysisRun{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(ns + "/" + name)}}
	}
	for i := range 4 { // four runs of one tenant, four metrics each: far more than its share
		for m := range 4 {
			fs.take(run("noisy", fmt.Sprint(i)), fmt.Sprint(m), time.Now(), silent)
		}
	}
	fs.mu.Lock()
	started := fs.byNS["noisy"]
	fs.mu.Unlock()
	if started != perNamespace(8) {
		t.Fatalf("the noisy tenant holds %d measurements, want its share %d", started, perNamespace(8))
	}
	quiet := run("quiet", "r")
	answer := func(context.Context, time.Time) analysis.Taken {
		return analysis.Taken{Sample: analysis.Sample{Values: []float64{1}}}
	}
	var got analysis.Taken
	err := wait.PollUntilContextTimeout(t.Context(), 5*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		got = fs.take(quiet, "m", time.Now(), answer)
		return !errors.Is(got.Sample.Err, analysis.ErrDeferred), nil
	})
	if err != nil || len(got.Sample.Values) != 1 {
		t.Fatalf("the other tenant was not measured: %v, %+v", err, got)
	}
	// Once the noisy runs are gone, their share is free again.
	for i := range 4 {
		fs.forget(types.NamespacedName{Namespace: "noisy", Name: fmt.Sprint(i)})
	}
	err = wait.PollUntilContextTimeout(t.Context(), 5*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		fs.mu.Lock()
		defer fs.mu.Unlock()
		return fs.byNS["noisy"] == 0, nil
	})
	if err != nil {
		t.Errorf("the noisy tenant still holds %d after its runs went", fs.byNS["noisy"])
	}
}
