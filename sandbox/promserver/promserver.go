// Package promserver runs a real Prometheus server (built by `make tools`) for
// tests and the sandbox: with exact series backfilled through promtool, or
// scraping targets. Every server picks its own port and directory.
package promserver

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tugboatdev/tugboat/sandbox/process"
	"github.com/tugboatdev/tugboat/sandbox/toolchain"
)

// Options say what the server holds.
type Options struct {
	// OpenMetrics is text in the OpenMetrics format, with timestamps, that is
	// written into the server's storage before it starts. "# EOF" is added
	// when missing.
	OpenMetrics string
	// Targets are host:port addresses to scrape at ScrapeInterval.
	Targets []string
	// ScrapeInterval defaults to 1s; rules are evaluated as often.
	ScrapeInterval time.Duration
	// RuleFiles are recording and alerting rule files to load; their alerts
	// show in the ALERTS series.
	RuleFiles []string
	// Dir holds the configuration, storage and log (default: a new temporary directory).
	Dir string
	// HTTPS, when set, makes the server serve TLS; its URL is then https://.
	HTTPS *HTTPS
}

// HTTPS is how the server serves TLS (Prometheus's --web.config.file).
type HTTPS struct {
	// CertFile and KeyFile are the server's certificate and key, PEM files.
	CertFile, KeyFile string
	// ClientCAFile, when set, makes the server require a client certificate
	// that this CA signed.
	ClientCAFile string
	// Client is the TLS the readiness check connects with: what trusts the
	// server's certificate, and a client certificate when one is required.
	Client *tls.Config
}

// webConfig is the --web.config.file that serves h.
func (h HTTPS) webConfig() string {
	c := fmt.Sprintf("tls_server_config:\n  cert_file: %q\n  key_file: %q\n", h.CertFile, h.KeyFile)
	if h.ClientCAFile != "" {
		c += fmt.Sprintf("  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: %q\n", h.ClientCAFile)
	}
	return c
}

// Server is a running Prometheus.
type Server struct {
	// URL is the server's base URL, such as http://127.0.0.1:41234.
	URL string
	// Dir holds its configuration, storage and log.
	Dir string

	proc   *process.Process
	data   string // its storage.tsdb.path
	client *http.Client
}

// Start starts a server for the test and stops it when the test ends.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	s, err := New(t.Context(), o)
	if err != nil {
		t.Fatalf("start prometheus: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("stop prometheus: %v", err)
		}
	})
	return s
}

// New starts a server and waits until it is ready; the caller must Stop it.
func New(ctx context.Context, o Options) (*Server, error) {
	prom, err := toolchain.Path(toolchain.Prometheus)
	if err != nil {
		return nil, err
	}
	if o.Dir == "" {
		if o.Dir, err = os.MkdirTemp("", "tugboat-prometheus-"); err != nil {
			return nil, err
		}
	}
	if o.ScrapeInterval == 0 {
		o.ScrapeInterval = time.Second
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, err
	}
	data := filepath.Join(o.Dir, "data")
	if o.OpenMetrics != "" {
		if err := backfill(ctx, o.OpenMetrics, o.Dir, data); err != nil {
			return nil, err
		}
	}
	config := filepath.Join(o.Dir, "prometheus.yml")
	if err := os.WriteFile(config, []byte(scrapeConfig(o.Targets, o.RuleFiles, o.ScrapeInterval)), 0o644); err != nil {
		return nil, err
	}
	args := []string{
		"--config.file=" + config,
		"--storage.tsdb.path=" + data,
		// Backfilled series carry fixed timestamps; keep them whatever their age.
		"--storage.tsdb.retention.time=100y",
		"--log.level=warn",
	}
	scheme, client := "http", http.DefaultClient
	if o.HTTPS != nil {
		web := filepath.Join(o.Dir, "web.yml")
		if err := os.WriteFile(web, []byte(o.HTTPS.webConfig()), 0o644); err != nil {
			return nil, err
		}
		args = append(args, "--web.config.file="+web)
		scheme, client = "https", &http.Client{Transport: &http.Transport{TLSClientConfig: o.HTTPS.Client}}
	}
	// A free port can be taken by another process before Prometheus binds it;
	// try again on a new one.
	var errs []error
	for range 3 {
		port, err := process.FreePort()
		if err != nil {
			return nil, err
		}
		s := &Server{URL: fmt.Sprintf("%s://127.0.0.1:%d", scheme, port), Dir: o.Dir, data: data, client: client}
		s.proc, err = process.Start("prometheus", prom, append(args, fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port)), o.Dir)
		if err != nil {
			return nil, err
		}
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		err = s.proc.WaitFor(wctx, s.ready)
		cancel()
		if err == nil {
			return s, nil
		}
		errs = append(errs, err, s.proc.Stop(5*time.Second))
	}
	return nil, errors.Join(errs...)
}

// Stop stops the server.
func (s *Server) Stop() error { return s.proc.Stop(10 * time.Second) }

func (s *Server) ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/-/ready", nil)
	if err != nil {
		return err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /-/ready: %s", resp.Status)
	}
	// Another test's Prometheus may have taken the port first: make sure
	// this one answers.
	req, err = http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/api/v1/status/flags", nil)
	if err != nil {
		return err
	}
	if resp, err = s.client.Do(req); err != nil {
		return err
	}
	defer resp.Body.Close()
	var flags struct {
		Data map[string]string `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&flags); err != nil {
		return fmt.Errorf("GET /api/v1/status/flags: %w", err)
	}
	if got := flags.Data["storage.tsdb.path"]; got != s.data {
		return fmt.Errorf("the server on %s keeps its data in %q, not %q: another Prometheus", s.URL, got, s.data)
	}
	return nil
}

// backfill writes series into blocks in data with promtool.
func backfill(ctx context.Context, text, dir, data string) error {
	promtool, err := toolchain.Path(toolchain.Promtool)
	if err != nil {
		return err
	}
	if !strings.HasSuffix(strings.TrimSpace(text), "# EOF") {
		text = strings.TrimRight(text, "\n") + "\n# EOF\n"
	}
	in := filepath.Join(dir, "series.om")
	if err := os.WriteFile(in, []byte(text), 0o644); err != nil {
		return err
	}
	out, err := exec.CommandContext(ctx, promtool, "tsdb", "create-blocks-from", "openmetrics", in, data).CombinedOutput()
	if err != nil {
		return fmt.Errorf("promtool tsdb create-blocks-from openmetrics: %w\n%s", err, out)
	}
	return nil
}

func scrapeConfig(targets, rules []string, every time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "global:\n  scrape_interval: %s\n  evaluation_interval: %s\n", every, every)
	if len(rules) > 0 {
		b.WriteString("rule_files:\n")
		for _, r := range rules {
			fmt.Fprintf(&b, "- %q\n", r)
		}
	}
	if len(targets) > 0 {
		// honor_labels: the controller's series carry namespace and name
		// labels of their own, as the chart's ServiceMonitor keeps them.
		b.WriteString("scrape_configs:\n- job_name: sandbox\n  honor_labels: true\n  static_configs:\n  - targets:\n")
		for _, t := range targets {
			fmt.Fprintf(&b, "    - %q\n", t)
		}
	}
	return b.String()
}
