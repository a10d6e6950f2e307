package main

import (
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// buildVersion is what the binary knows of the build that made it.
// Its JSON is version --json's output.
type buildVersion struct {
	Version   string `json:"version"`  // the module version, "(devel)" for a build from a checkout
	Revision  string `json:"revision"` // the VCS commit, "" when the build did not record it
	Time      string `json:"time"`     // the commit's time, RFC 3339, or ""
	Modified  bool   `json:"modified"` // the working tree had changes the commit does not hold
	GoVersion string `json:"go"`       // the Go toolchain that built it
}

// readBuildVersion reads the binary's build information.
func readBuildVersion() buildVersion {
	info, _ := debug.ReadBuildInfo()
	return versionOf(info)
}

// versionOf extracts a buildVersion from info, which may be nil (a binary
// built without module support).
func versionOf(info *debug.BuildInfo) buildVersion {
	v := buildVersion{Version: "(devel)", GoVersion: runtime.Version()}
	if info == nil {
		return v
	}
	if info.Main.Version != "" {
		v.Version = info.Main.Version
	}
	if info.GoVersion != "" {
		v.GoVersion = info.GoVersion
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.time":
			v.Time = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

// String returns one line: "v1.2.3 (commit abc123, 2026-11-25T10:00:00Z,
// modified) go1.26.0", leaving out what the build did not record.
func (v buildVersion) String() string {
	var vcs []string
	if v.Revision != "" {
		vcs = append(vcs, "commit "+v.Revision)
	}
	if v.Time != "" {
		vcs = append(vcs, v.Time)
	}
	if v.Modified {
		vcs = append(vcs, "modified")
	}
	s := v.Version
	if len(vcs) > 0 {
		s += " (" + strings.Join(vcs, ", ") + ")"
	}
	return s + " " + v.GoVersion
}

func newVersionCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version of redfed",
		Long: `Print the module version of redfed, the commit it was built from with
the commit's time and whether the tree had changes (when the build
recorded them: go build in a checkout does, go install of a module
version does not), and the Go version that built it. redfed --version
prints the same. With --json, one object:

  {"version": "v1.2.3", "revision": "abc123...", "time": "2026-11-25T10:00:00Z",
   "modified": false, "go": "go1.26.0"}

with "" for what the build did not record.`,
		Example: "  redfed version\n  redfed --version\n  redfed version --json | jq -r .revision",
		Args:    usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(readBuildVersion())
			}
			_, err := fmt.Fprintln(cmd.OutOrStdout(), "redfed", readBuildVersion())
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the build's fields as one JSON object")
	return cmd
}
