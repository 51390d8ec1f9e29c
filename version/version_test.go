package version

import (
	"runtime/debug"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFrom(t *testing.T) {
	checkout := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "1d55869aaaabbbbcccc"}, {Key: "vcs.modified", Value: "true"}}}
	tests := []struct {
		name     string
		stamped  string
		revision string
		bi       *debug.BuildInfo
		want     Info
		wantLine string
	}{
		{"a release build", "v0.1.0", "", checkout, Info{Version: "v0.1.0", Revision: "1d55869aaaabbbbcccc", Modified: true, GoVersion: "go1.26.8"}, "v0.1.0 (revision 1d55869aaaab, modified, go1.26.8)"},
		{"a build in a checkout", "", "", checkout, Info{Version: "devel", Revision: "1d55869aaaabbbbcccc", Modified: true, GoVersion: "go1.26.8"}, "devel (revision 1d55869aaaab, modified, go1.26.8)"},
		{"a release build that recorded no VCS state", "v0.1.0", "9f8e7d6c5b4a3210", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}}, Info{Version: "v0.1.0", Revision: "9f8e7d6c5b4a3210", GoVersion: "go1.26.8"}, "v0.1.0 (revision 9f8e7d6c5b4a, go1.26.8)"},
		{"go install at a version", "", "", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.2.0"}}, Info{Version: "v0.2.0", GoVersion: "go1.26.8"}, "v0.2.0 (go1.26.8)"},
		{"no build info", "", "", nil, Info{Version: "unknown"}, "unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := from(tt.stamped, tt.revision, tt.bi)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if got.String() != tt.wantLine {
				t.Errorf("String() = %q, want %q", got.String(), tt.wantLine)
			}
		})
	}
}
