package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/tugboatdev/tugboat/config/monitoring"
	"github.com/tugboatdev/tugboat/sandbox/toolchain"
)

// thenDashboardAndAlertsSeeIt checks what the sandbox's Prometheus, which
// scrapes the running controller and evaluates Tugboat's alerting rules,
// holds since the story began: every series the Grafana dashboard and the
// rules select, with the labels they match on, and the abort alert firing
// for this Rollout.
func (s *scenario) thenDashboardAndAlertsSeeIt(since time.Time, abortReason string) {
	s.t.Helper()
	ctx := s.t.Context()
	c, err := api.NewClient(api.Config{Address: box.Prometheus.URL})
	if err != nil {
		s.t.Fatal(err)
	}
	prom := promv1.NewAPI(c)

	alert := fmt.Sprintf(`ALERTS{alertname="TugboatRolloutAborted",alertstate="firing",namespace=%q,name=%q,reason=%q}`, s.key.Namespace, s.key.Name, abortReason)
	err = wait.PollUntilContextTimeout(ctx, time.Second, time.Minute, true, func(ctx context.Context) (bool, error) {
		v, _, _, err := prom.Query(ctx, alert, time.Now())
		if err != nil {
			return false, err
		}
		vec, ok := v.(model.Vector)
		return ok && len(vec) == 1, nil
	})
	if err != nil {
		s.t.Errorf("%s never fired: %v", alert, err)
	}

	dashboard, err := monitoring.Dashboard(toolchain.Root())
	if err != nil {
		s.t.Error(err)
	}
	rules, err := monitoring.Rules(toolchain.Root())
	if err != nil {
		s.t.Fatal(err)
	}
	type want struct {
		where, name string
		labels      []string
	}
	var wants []want
	names := map[string]bool{}
	for _, e := range append(dashboard, rules...) {
		sels, err := monitoring.Selectors(e)
		if err != nil {
			s.t.Error(err)
		}
		for _, sel := range sels {
			w := want{where: e.Where, name: sel.Name}
			for _, m := range sel.LabelMatchers {
				if m.Name != model.MetricNameLabel {
					w.labels = append(w.labels, m.Name)
				}
			}
			wants = append(wants, w)
			names[sel.Name] = true
		}
	}
	if len(names) < 8 {
		s.t.Errorf("the dashboard and rules name only %d metrics", len(names))
	}
	// A scrape can fail on a busy machine: wait a while for every series to
	// be there before calling one missing.
	var missing []string
	err = wait.PollUntilContextTimeout(ctx, 2*time.Second, time.Minute, true, func(ctx context.Context) (bool, error) {
		missing = nil
		seen := map[string]map[model.LabelName]bool{}
		for name := range names {
			series, _, _, err := prom.Series(ctx, []string{fmt.Sprintf("{__name__=%q}", name)}, since, time.Now())
			if err != nil {
				return false, fmt.Errorf("series %s: %w", name, err)
			}
			labels := map[model.LabelName]bool{}
			for _, ls := range series {
				for l := range ls {
					labels[l] = true
				}
			}
			seen[name] = labels
		}
		for _, w := range wants {
			labels := seen[w.name]
			if len(labels) == 0 {
				missing = append(missing, fmt.Sprintf("%s asks for %s, which Prometheus never scraped from the controller (serving now: %s)", w.where, w.name, servedNow(ctx, w.name)))
				continue
			}
			for _, l := range w.labels {
				if !labels[model.LabelName(l)] {
					missing = append(missing, fmt.Sprintf("%s matches label %s of %s, which has none in Prometheus (labels %s)", w.where, l, w.name, keys(labels)))
				}
			}
		}
		return len(missing) == 0, nil
	})
	if err != nil {
		s.t.Errorf("%v:\n%s", err, strings.Join(missing, "\n"))
	}
}

func keys(m map[model.LabelName]bool) string {
	var out []string
	for k := range m {
		out = append(out, string(k))
	}
	return strings.Join(out, ",")
}

// servedNow is what the controller serves of a metric at this moment.
func servedNow(ctx context.Context, name string) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, box.MetricsURL, nil)
	if err != nil {
		return err.Error()
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err.Error()
	}
	var lines []string
	for _, l := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(l, name) {
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 {
		return "nothing"
	}
	return strings.Join(lines, "; ")
}
