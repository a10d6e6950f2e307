package main

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/redistest"
)

// A series that comes in through Graphite or Prometheus remote write is a
// series like any other: redfed query and the dashboard read it, check
// compares it across the group, and the syncer copies it to the other
// server of the group, where the writers did not send it.
func TestIngestedSeriesAreSeriesEverywhere(t *testing.T) {
	servers := redistest.StartN(t, 2)
	a, b := servers[0].Addr(), servers[1].Addr()
	cfg := writeConfig(t, fmt.Sprintf("nodes:\n  redis_1: {addresses: [%q, %q]}\noptions: {command_timeout: 2s}\n", a, b))
	graphiteAddr := freeAddr(t)
	d := startServe(t, "--config", cfg, "--graphite-listen", graphiteAddr)

	at := time.Now().Add(-10 * time.Second).Truncate(time.Second)
	conn, err := net.Dial("tcp", graphiteAddr)
	require.NoError(t, err)
	_, err = fmt.Fprintf(conn, "collectd.web1_sfo.cpu-0.cpu-user 42.5 %d\n", at.Unix())
	require.NoError(t, err)
	require.NoError(t, conn.Close())

	body, err := (&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels:  []prompb.Label{{Name: "__name__", Value: "up"}, {Name: "instance", Value: "web2.sfo"}, {Name: "job", Value: "node"}},
		Samples: []prompb.Sample{{Timestamp: at.UnixMilli(), Value: 1}},
	}}}).Marshal()
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, "http://"+d.addr+remoteWritePath, bytes.NewReader(snappy.Encode(nil, body)))
	require.NoError(t, err)
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("Content-Type", "application/x-protobuf")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = res.Body.Close()
	require.Equal(t, http.StatusNoContent, res.StatusCode, "remote write acknowledged")

	series := []struct{ host, metric, value string }{
		{"web1_sfo", "cpu-0.cpu-user", "42.5"},
		{"web2.sfo", `up{job="node"}`, "1"},
	}
	stamp := at.UTC().Format(time.RFC3339)
	for _, s := range series {
		require.Eventually(t, func() bool {
			code, stdout, _ := runCLI(t, "", "query", "--config", cfg, s.host, s.metric, "--from", "-1m")
			return code == 0 && strings.HasSuffix(stdout, "\n"+stamp+"  "+s.value+"\n")
		}, 10*time.Second, 100*time.Millisecond, "redfed query %s %s", s.host, s.metric)

		code, reply := httpGet(t, d.addr, "/api/series?"+url.Values{"host": {s.host}, "metric": {s.metric}, "range": {"1h"}}.Encode())
		require.Equal(t, http.StatusOK, code, reply)
		assert.Contains(t, reply, `"points":[{"time":"`+stamp+`","value":`+s.value+`}]`, "the dashboard's /api/series")
	}

	// Written to the group's current server only, so the replicas differ
	// until a syncer copies the series; then check finds them equal, and
	// the other server holds both.
	code, stdout, _ := runCLI(t, "", "check", "--config", cfg)
	assert.Equal(t, 1, code, "check before the syncer:\n%s", stdout)
	startSync(t, cfg, a+","+b)
	require.Eventually(t, func() bool {
		code, _, _ := runCLI(t, "", "check", "--config", cfg)
		return code == 0
	}, 20*time.Second, 200*time.Millisecond, "check after the syncer")
	loaded, err := federated.LoadConfig(cfg)
	require.NoError(t, err)
	c, err := federated.New(loaded)
	require.NoError(t, err)
	defer c.Close()
	for _, addr := range []string{a, b} {
		rc := redis.NewClient(&redis.Options{Addr: addr, DisableIdentity: true})
		defer rc.Close()
		for _, s := range series {
			key, err := c.MetricKey(at, s.host, s.metric)
			require.NoError(t, err)
			members, err := rc.ZRange(t.Context(), key, 0, -1).Result()
			require.NoError(t, err)
			assert.Equal(t, []string{strconv.FormatInt(at.Unix(), 10) + ":" + s.value}, members, "%s on %s", key, addr)
		}
	}
}
