package main

import (
	"fmt"
	"net/http"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated/internal/redistest"
)

func TestBuildInfoCollector(t *testing.T) {
	for _, tc := range []struct {
		name     string
		v        buildVersion
		revision string
	}{
		{"no vcs", buildVersion{Version: "(devel)", GoVersion: "go1.26.0"}, "unknown"},
		{"clean", buildVersion{Version: "v1.2.3", Revision: "05f918b", GoVersion: "go1.26.0"}, "05f918b"},
		{"modified", buildVersion{Version: "v1.2.3", Revision: "05f918b", Modified: true, GoVersion: "go1.26.0"}, "05f918b-modified"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := fmt.Sprintf(`# HELP redfed_build_info Always 1; the labels name the redfed build: module version, VCS revision (-modified when the tree had changes) and Go version.
# TYPE redfed_build_info gauge
redfed_build_info{goversion="go1.26.0",revision=%q,version=%q} 1
`, tc.revision, tc.v.Version)
			require.NoError(t, testutil.CollectAndCompare(buildInfoCollector(tc.v), strings.NewReader(want)))
		})
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(buildInfoCollector(buildVersion{Version: "v1", GoVersion: "go1"}))
	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	assert.Empty(t, problems)
}

// TestSyncMetricsEndpoint checks that sync's /metrics has the build info,
// the Go and process collectors and the syncer's metrics, and that what it
// serves parses and passes promlint for the metrics of this command.
func TestSyncMetricsEndpoint(t *testing.T) {
	servers := redistest.StartN(t, 2)
	cfg := writeConfig(t, fmt.Sprintf("nodes:\n  redis_1: {addresses: [%q, %q]}\n", servers[0].Addr(), servers[1].Addr()))
	addr := startSync(t, cfg, servers[1].Addr())
	waitStatus(t, addr, "/healthz", http.StatusOK)
	code, body := httpGet(t, addr, "/metrics")
	require.Equal(t, http.StatusOK, code)
	v := readBuildVersion()
	assert.Contains(t, body, fmt.Sprintf(`redfed_build_info{goversion=%q,revision="unknown",version=%q} 1`+"\n", v.GoVersion, v.Version))
	assert.Contains(t, body, "\ngo_goroutines ")
	assert.Contains(t, body, "\ngo_info{version=\""+runtime.Version()+"\"} 1\n")
	assert.Contains(t, body, "\nprocess_cpu_seconds_total ")
	assert.Contains(t, body, "\nredfed_syncer_passes_total{")

	problems, err := promlint.New(strings.NewReader(body)).Lint()
	require.NoError(t, err)
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "redfed_build_info") {
			t.Errorf("promlint: %s: %s", p.Metric, p.Text)
		} else {
			t.Logf("promlint: %s: %s", p.Metric, p.Text)
		}
	}

	// Prometheus's own checker agrees, on the whole page.
	assertPromtoolPasses(t, body)
}

// assertPromtoolPasses runs Prometheus's own checker, promtool check
// metrics, on a /metrics page.
func assertPromtoolPasses(t *testing.T, page string) {
	t.Helper()
	promtool, err := exec.LookPath("promtool")
	require.NoError(t, err, "promtool (Debian package prometheus) is needed; scripts/test installs it")
	check := exec.Command(promtool, "check", "metrics")
	check.Stdin = strings.NewReader(page)
	out, err := check.CombinedOutput()
	assert.NoError(t, err, "promtool check metrics:\n%s", out)
}
