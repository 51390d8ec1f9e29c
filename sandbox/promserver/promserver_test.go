package promserver_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/tugboatdev/tugboat/sandbox/promserver"
)

// TestBackfilledSeriesAreServed loads exact series through promtool and reads
// them back from the real server.
func TestBackfilledSeriesAreServed(t *testing.T) {
	t0 := time.Now().Add(-30 * time.Minute).Truncate(time.Minute)
	ts := func(d time.Duration) int64 { return t0.Add(d).Unix() }
	series := `# TYPE istio_requests counter
istio_requests_total{destination_workload="podinfo-primary",response_code="200"} 100 ` + itoa(ts(0)) + `
istio_requests_total{destination_workload="podinfo-primary",response_code="200"} 160 ` + itoa(ts(time.Minute)) + `
istio_requests_total{destination_workload="podinfo",response_code="500"} 7 ` + itoa(ts(0)) + `
istio_requests_total{destination_workload="podinfo",response_code="500"} 19 ` + itoa(ts(time.Minute)) + `
`
	srv := promserver.Start(t, promserver.Options{OpenMetrics: series})
	c, err := api.NewClient(api.Config{Address: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	v, _, _, err := promv1.NewAPI(c).Query(t.Context(), `istio_requests_total`, t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, s := range v.(model.Vector) {
		got[string(s.Metric["destination_workload"])+"/"+string(s.Metric["response_code"])] = float64(s.Value)
	}
	want := map[string]float64{"podinfo-primary/200": 160, "podinfo/500": 19}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("series (-want +got):\n%s", diff)
	}

	// Arithmetic across the loaded samples is done by the real engine.
	v, _, _, err = promv1.NewAPI(c).Query(t.Context(), `sum(istio_requests_total{response_code="500"}) - sum(istio_requests_total{response_code="500"} offset 1m)`, t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if vec := v.(model.Vector); len(vec) != 1 || float64(vec[0].Value) != 12 {
		t.Errorf("increase over the window: want [12], got %v", v)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
