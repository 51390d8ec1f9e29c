// Package version says which build of Tugboat is running: the release
// version stamped at link time (make release sets it from the git tag), or
// else what the Go toolchain recorded (the module version of `go install
// ...@vX.Y.Z`, the VCS revision of a build in a checkout).
package version

import (
	"runtime/debug"
	"strings"
)

// version and revision are set with -ldflags "-X
// github.com/tugboatdev/tugboat/version.version=v0.1.0 -X
// github.com/tugboatdev/tugboat/version.revision=<commit>" (make release);
// the revision stands in for the toolchain's when a build recorded none
// (-buildvcs=false, or a build outside a checkout).
var version, revision string

// Info describes a build.
type Info struct {
	Version   string `json:"version"`
	Revision  string `json:"revision,omitempty"`
	Modified  bool   `json:"modified,omitempty"`
	GoVersion string `json:"goVersion"`
}

// Get returns this binary's build.
func Get() Info {
	bi, _ := debug.ReadBuildInfo()
	return from(version, revision, bi)
}

func from(stamped, stampedRevision string, bi *debug.BuildInfo) Info {
	info := Info{Version: stamped, Revision: stampedRevision}
	if bi == nil {
		if info.Version == "" {
			info.Version = "unknown"
		}
		return info
	}
	info.GoVersion = bi.GoVersion
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Revision = s.Value
		case "vcs.modified":
			info.Modified = s.Value == "true"
		}
	}
	if info.Version == "" {
		info.Version = strings.TrimPrefix(bi.Main.Version, "(devel)")
	}
	if info.Version == "" {
		info.Version = "devel"
	}
	return info
}

// String is the one-line form: v0.1.0 (revision 1d55869, go1.26.8).
func (i Info) String() string {
	s := i.Version
	var extra []string
	if i.Revision != "" {
		r := i.Revision
		if len(r) > 12 {
			r = r[:12]
		}
		if i.Modified {
			r += ", modified"
		}
		extra = append(extra, "revision "+r)
	}
	if i.GoVersion != "" {
		extra = append(extra, i.GoVersion)
	}
	if len(extra) > 0 {
		s += " (" + strings.Join(extra, ", ") + ")"
	}
	return s
}
