package main

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// serve's /metrics counts what Graphite and remote write took in and
// refused, says which servers are up, and passes promtool.
func TestServeMetricsEndpoint(t *testing.T) {
	cfgPath, _ := startFederation(t, 2)
	graphiteAddr := freeAddr(t)
	d := startServe(t, "--config", cfgPath, "--graphite-listen", graphiteAddr)

	conn, err := net.Dial("tcp", graphiteAddr)
	require.NoError(t, err)
	_, err = fmt.Fprintf(conn, "collectd.web1_sfo.load.shortterm 0.5 %d\nnot a line\n", time.Now().Unix())
	require.NoError(t, err)
	require.NoError(t, conn.Close())
	assert.Equal(t, http.StatusBadRequest, d.post(t, remoteWritePath, ""), "an empty remote write")

	var body string
	require.Eventually(t, func() bool {
		var code int
		code, body = httpGet(t, d.addr, "/metrics")
		return code == http.StatusOK && strings.Contains(body, "\nredfed_graphite_points_written_total 1\n")
	}, 10*time.Second, 50*time.Millisecond, "the Graphite point is counted")
	for _, want := range []string{
		"\nredfed_graphite_lines_total 2\n",
		"\nredfed_graphite_bad_lines_total{reason=\"malformed\"} 1\n",
		"\nredfed_remote_write_requests_total{outcome=\"refused\"} 1\n",
		"\nredfed_client_server_up{",
		"\nredfed_build_info{",
		"\nprocess_cpu_seconds_total ",
	} {
		assert.Contains(t, body, want)
	}

	assertPromtoolPasses(t, body)

	// As it stops, serve says the totals once more: what /metrics counted
	// goes with the process.
	d.cancel()
	d.wg.Wait()
	assert.Contains(t, d.errOut.String(), `msg="graphite: stopped" lines=2 written=1 failed=0 bad=1 retried=0`)
}
