package promserver

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Traffic is one workload's requests: PerSecond of them, a share
// ErrorRatio of which fail.
type Traffic struct {
	PerSecond, ErrorRatio float64
}

// Requests is OpenMetrics text, for Options.OpenMetrics, of the counter
// metric (its name ending in _total) with a workload label and code="200"
// and code="500" series: each workload's traffic, counted every 15s over
// span up to end.
func Requests(metric string, end time.Time, span time.Duration, workloads map[string]Traffic) string {
	var om strings.Builder
	fmt.Fprintf(&om, "# TYPE %s counter\n", strings.TrimSuffix(metric, "_total"))
	names := make([]string, 0, len(workloads))
	for name := range workloads {
		names = append(names, name)
	}
	slices.Sort(names)
	start := end.Add(-span)
	for _, name := range names {
		w := workloads[name]
		for code, share := range map[string]float64{"200": 1 - w.ErrorRatio, "500": w.ErrorRatio} {
			for i := 0; !start.Add(time.Duration(i) * 15 * time.Second).After(end); i++ {
				fmt.Fprintf(&om, "%s{workload=%q,code=%q} %g %d\n", metric, name, code, float64(i)*w.PerSecond*15*share, start.Add(time.Duration(i)*15*time.Second).Unix())
			}
		}
	}
	return om.String()
}
