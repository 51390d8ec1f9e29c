package analysis_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/tugboatdev/tugboat/analysis"
	"github.com/tugboatdev/tugboat/analysis/prometheus"
)

func TestScrub(t *testing.T) {
	a := analysis.Args{Values: map[string]string{"token": `s3c"r(et`, "w": "good"}, Secret: map[string]bool{"token": true}}
	for _, tt := range []struct {
		name string
		err  error
		want string
	}{
		{"a refusal, quoting the query escaped", &analysis.QueryRefused{Reason: "execution", Err: fmt.Errorf("invalid regexp %q", `"s3c\"r(et"`)},
			"the server refused the query (execution); its message is not shown"},
		{"a network failure keeps its message", fmt.Errorf("query: %w", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}),
			"dial tcp: connection refused"},
		{"a timeout keeps its message", fmt.Errorf("query: %w", context.DeadlineExceeded), "context deadline exceeded"},
		{"anything else may quote the query", errors.New(`bad response for up{token="s3c\"r(et"}`), "the error is not shown"},
		{"a refusal by policy keeps its message, which quotes nothing", fmt.Errorf("query: %w", &prometheus.Refused{Reason: "never sent by GET"}), "refused by policy: never sent by GET"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := a.Scrub(tt.err).Error()
			if !strings.Contains(got, tt.want) || strings.Contains(got, "s3c") {
				t.Errorf("scrub = %q, want %q and no trace of the Secret", got, tt.want)
			}
		})
	}
}
