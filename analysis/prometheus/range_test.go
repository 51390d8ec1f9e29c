package prometheus

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	argo "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	"k8s.io/utils/ptr"

	"github.com/tugboatdev/tugboat/analysis"
	"github.com/tugboatdev/tugboat/api/v1alpha1"
	"github.com/tugboatdev/tugboat/sandbox/promserver"
)

// TestRangeQueryAgainstPrometheus runs range queries over series backfilled
// once a minute: now() is the measurement's moment, and the matrix is
// flattened series by series, in label order.
func TestRangeQueryAgainstPrometheus(t *testing.T) {
	ts := time.Now().Add(-10 * time.Minute).Truncate(time.Minute)
	var om strings.Builder
	om.WriteString("# TYPE tugboat_latency_ms gauge\n")
	for _, w := range []struct {
		workload    string
		first, step int
	}{{"bad", 900, 200}, {"good", 100, 1}} {
		for i := range 4 {
			at := ts.Add(time.Duration(i-3) * time.Minute).Unix()
			fmt.Fprintf(&om, "tugboat_latency_ms{workload=%q} %d %d\n", w.workload, w.first+i*w.step, at)
		}
	}
	srv := promserver.Start(t, promserver.Options{OpenMetrics: om.String()})
	p := &Provider{Guard: Guard{AllowLoopback: true}}
	lastTwoMinutes := &v1alpha1.PrometheusRangeQuery{Start: `now() - duration("2m")`, End: "now()", Step: "1m"}
	for _, tt := range []struct {
		name       string
		query      string
		rangeQuery *v1alpha1.PrometheusRangeQuery
		minSamples *int32
		values     []float64
		phase      argo.AnalysisPhase
		wantErr    string
	}{{
		name:       "one series, every step",
		query:      `tugboat_latency_ms{workload="good"}`,
		rangeQuery: lastTwoMinutes,
		values:     []float64{101, 102, 103},
		phase:      argo.AnalysisPhaseSuccessful,
	}, {
		name:       "several series, in label order",
		query:      `tugboat_latency_ms`,
		rangeQuery: lastTwoMinutes,
		values:     []float64{1100, 1300, 1500, 101, 102, 103},
		phase:      argo.AnalysisPhaseFailed,
	}, {
		name:       "a range that ends before the measurement",
		query:      `tugboat_latency_ms{workload="bad"}`,
		rangeQuery: &v1alpha1.PrometheusRangeQuery{Start: `now() - duration("3m")`, End: `now() - duration("2m")`, Step: "30s"},
		values:     []float64{900, 900, 1100},
		phase:      argo.AnalysisPhaseFailed,
	}, {
		name:       "no data",
		query:      `tugboat_latency_ms{workload="none"}`,
		rangeQuery: lastTwoMinutes,
		values:     []float64{},
		phase:      argo.AnalysisPhaseInconclusive,
	}, {
		name:       "fewer points than minSamples is no data",
		query:      `tugboat_latency_ms{workload="good"}`,
		rangeQuery: lastTwoMinutes,
		minSamples: ptr.To[int32](4),
		values:     []float64{101, 102, 103},
		phase:      argo.AnalysisPhaseInconclusive,
	}, {
		name:       "a start that does not evaluate",
		query:      `tugboat_latency_ms`,
		rangeQuery: &v1alpha1.PrometheusRangeQuery{Start: `now() - duration("banana")`, End: "now()", Step: "1m"},
		wantErr:    `rangeQuery.start "now() - duration(\"banana\")": time: invalid duration "banana"`,
	}, {
		name:       "end before start",
		query:      `tugboat_latency_ms`,
		rangeQuery: &v1alpha1.PrometheusRangeQuery{Start: "now()", End: `now() - duration("1m")`, Step: "1m"},
		wantErr:    "is 1m0s before start",
	}, {
		name:       "too many points",
		query:      `tugboat_latency_ms`,
		rangeQuery: &v1alpha1.PrometheusRangeQuery{Start: `now() - duration("4h")`, End: "now()", Step: "1s"},
		wantErr:    "14400 points per series, more than Prometheus's 11000",
	}} {
		t.Run(tt.name, func(t *testing.T) {
			m := &v1alpha1.PrometheusMetric{Address: srv.URL, RangeQuery: tt.rangeQuery}
			s := p.Measure(t.Context(), "prod", m, tt.query, ts)
			if tt.wantErr != "" {
				if s.Err == nil || !strings.Contains(s.Err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", s.Err, tt.wantErr)
				}
				return
			}
			if s.Err != nil {
				t.Fatal(s.Err)
			}
			if !sameValues(s.Values, tt.values) || s.Scalar {
				t.Errorf("got %v (scalar %v), want %v", s.Values, s.Scalar, tt.values)
			}
			metric := v1alpha1.Metric{SuccessCondition: "all(result, # < 1000)", MinSamples: tt.minSamples}
			if phase, _, msg := analysis.Judge(metric, s, nil); phase != tt.phase {
				t.Errorf("phase %s (%s), want %s", phase, msg, tt.phase)
			}
		})
	}
}

// TestRangeQueriesCoalesce: the range is part of what makes two queries the
// same, and now() is the measurement's moment, so identical range queries
// due at once are sent once.
func TestRangeQueriesCoalesce(t *testing.T) {
	var calls atomic.Int32
	var lastForm atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if err := r.ParseForm(); err == nil {
			lastForm.Store(r.Form.Encode())
		}
		fmt.Fprint(w, `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"1"],[61,"2"]]}]}}`)
	}))
	defer srv.Close()
	p := &Provider{Guard: Guard{AllowLoopback: true}}
	ts := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	fiveMinutes := &v1alpha1.PrometheusMetric{Address: srv.URL, RangeQuery: &v1alpha1.PrometheusRangeQuery{Start: `now() - duration("5m")`, End: "now()", Step: "1m"}}
	for range 3 {
		if s := p.Measure(t.Context(), "prod", fiveMinutes, "up", ts); s.Err != nil || !sameValues(s.Values, []float64{1, 2}) {
			t.Fatalf("measure: %+v", s)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("identical range queries due at once sent %d times, want once", n)
	}
	form := lastForm.Load().(string)
	wantStart := "start=" + strconv.FormatInt(ts.Add(-5*time.Minute).Unix(), 10)
	if !strings.Contains(form, wantStart) || !strings.Contains(form, "step=60") {
		t.Errorf("request %s, want %s and step=60", form, wantStart)
	}
	tenMinutes := *fiveMinutes
	tenMinutes.RangeQuery = &v1alpha1.PrometheusRangeQuery{Start: `now() - duration("10m")`, End: "now()", Step: "1m"}
	p.Measure(t.Context(), "prod", &tenMinutes, "up", ts)
	p.Measure(t.Context(), "prod", &v1alpha1.PrometheusMetric{Address: srv.URL}, "up", ts)
	if n := calls.Load(); n != 3 {
		t.Errorf("another range and an instant query of the same text: %d calls in all, want 3", n)
	}
}
