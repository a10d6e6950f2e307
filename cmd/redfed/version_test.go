package main

import (
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestVersion checks that the version command and the --version flag both
// print the build's version line and succeed.
func TestVersion(t *testing.T) {
	want := "redfed " + readBuildVersion().String() + "\n"
	for _, args := range [][]string{{"version"}, {"--version"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			code, out, errOut := runCLI(t, "", args...)
			require.Equal(t, 0, code, errOut)
			assert.Equal(t, want, out)
			assert.Contains(t, out, runtime.Version())
		})
	}
}

func TestVersionOf(t *testing.T) {
	setting := func(kv ...string) []debug.BuildSetting {
		var s []debug.BuildSetting
		for i := 0; i < len(kv); i += 2 {
			s = append(s, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return s
	}
	for _, tc := range []struct {
		name string
		info *debug.BuildInfo
		want string
	}{
		{"no build info", nil, "(devel) " + runtime.Version()},
		{"devel without vcs", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "(devel)"}}, "(devel) go1.26.0"},
		{"release", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v1.2.3"}}, "v1.2.3 go1.26.0"},
		{"checkout", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "(devel)"},
			Settings: setting("vcs", "git", "vcs.revision", "05f918b0c0ffee", "vcs.time", "2026-12-05T10:00:00Z", "vcs.modified", "false")},
			"(devel) (commit 05f918b0c0ffee, 2026-12-05T10:00:00Z) go1.26.0"},
		{"modified checkout", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v1.3.0-0.20261205100000-05f918b0c0ff+dirty"},
			Settings: setting("vcs.revision", "05f918b0c0ffee", "vcs.modified", "true")},
			"v1.3.0-0.20261205100000-05f918b0c0ff+dirty (commit 05f918b0c0ffee, modified) go1.26.0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, versionOf(tc.info).String())
		})
	}
}
