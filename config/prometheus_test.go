package config_test

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/tugboatdev/tugboat/sandbox/toolchain"
)

// TestAlertingRules checks config/prometheus/tugboat-rules.yaml with
// Prometheus's own promtool: the rules load, and each alert fires and stays
// quiet as tugboat-rules_test.yaml says.
func TestAlertingRules(t *testing.T) {
	promtool, err := toolchain.Path(toolchain.Promtool)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(toolchain.Root(), "config", "prometheus")
	for _, args := range [][]string{
		{"check", "rules", "tugboat-rules.yaml"},
		{"test", "rules", "tugboat-rules_test.yaml"},
	} {
		cmd := exec.CommandContext(t.Context(), promtool, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %v: %v\n%s", args, err, out)
		}
	}
}
