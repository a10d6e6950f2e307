package remote_test

import (
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated/prometheus/remote"
)

// Tests with the real Prometheus: one that scrapes itself every second and
// writes what it scrapes to the write handler, and one that reads it back
// through the read handler.

// promServer is a prometheus process started by a test.
type promServer struct {
	addr string // its web address, host:port
	log  string // the path of its output
}

// startPrometheus starts prometheus with the configuration that config
// returns for its own address, storage in a temporary directory, and waits
// until it is ready. It is stopped when the test ends. A missing
// prometheus fails the test.
func startPrometheus(t *testing.T, config func(addr string) string) *promServer {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatalf("prometheus is not installed (%v): install the Debian package with \"apt-get install -y prometheus\"; scripts/test does", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "prometheus.yml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(config(addr)), 0o600))
	p := &promServer{addr: addr, log: filepath.Join(dir, "prometheus.log")}
	out, err := os.Create(p.log)
	require.NoError(t, err)
	cmd := exec.Command(bin, "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		_ = out.Close()
		close(done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get("http://" + addr + "/-/ready")
		if err == nil {
			_ = res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case <-done:
			t.Fatalf("prometheus exited before it was ready:\n%s", p.output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus at %s not ready after 30s:\n%s", addr, p.output())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// output returns what prometheus logged.
func (p *promServer) output() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

// promSeries is a series of a query's result, its samples by time in
// milliseconds.
type promSeries map[int64]float64

// query runs a PromQL query through the HTTP API (path /api/v1/query or
// /api/v1/query_range) and returns its matrix, by series.
func (p *promServer) query(t *testing.T, path string, params url.Values) map[string]promSeries {
	t.Helper()
	res, err := http.Get("http://" + p.addr + path + "?" + params.Encode())
	require.NoError(t, err)
	defer res.Body.Close()
	var reply struct {
		Status string
		Error  string
		Data   struct {
			ResultType string
			Result     []struct {
				Metric map[string]string
				Values [][2]any
			}
		}
	}
	require.NoError(t, json.NewDecoder(res.Body).Decode(&reply))
	require.Equal(t, "success", reply.Status, "%s %v: %s", path, params, reply.Error)
	require.Equal(t, "matrix", reply.Data.ResultType)
	out := make(map[string]promSeries, len(reply.Data.Result))
	for _, r := range reply.Data.Result {
		s := make(promSeries, len(r.Values))
		for _, v := range r.Values {
			ts, ok := v[0].(float64)
			require.True(t, ok, "timestamp %v", v[0])
			value, err := strconv.ParseFloat(v[1].(string), 64)
			require.NoError(t, err)
			s[int64(math.Round(ts*1000))] = value
		}
		out[labels.FromMap(r.Metric).String()] = s
	}
	return out
}

// raw returns the samples prometheus holds of the series that selector
// selects, in the minute up to at.
func (p *promServer) raw(t *testing.T, selector string, at time.Time) map[string]promSeries {
	t.Helper()
	return p.query(t, "/api/v1/query", url.Values{"query": {selector + "[1m]"}, "time": {apiTime(at)}})
}

func apiTime(t time.Time) string { return fmt.Sprintf("%.3f", float64(t.UnixMilli())/1000) }

// stored returns the samples redfed holds of the series that ms select,
// up to at, read through the read handler.
func (e *endpoints) stored(t *testing.T, at time.Time, ms ...*prompb.LabelMatcher) map[string]promSeries {
	t.Helper()
	got := e.read(t, query(at.Add(-time.Minute).UnixMilli(), at.UnixMilli(), ms...))[0]
	out := make(map[string]promSeries, len(got))
	for _, ts := range got {
		s := make(promSeries, len(ts.Samples))
		for _, smp := range ts.Samples {
			s[smp.Timestamp] = smp.Value
		}
		var b labels.ScratchBuilder
		out[ts.ToLabels(&b, nil).String()] = s
	}
	return out
}

// missing lists the samples of want that got lacks or holds with another
// value, at most a few. NaN and ±Inf, which redfed does not store, are not
// looked for.
func missing(want, got map[string]promSeries) []string {
	var out []string
	for series, samples := range want {
		for ts, v := range samples {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				continue
			}
			if g, ok := got[series][ts]; !ok || g != v {
				out = append(out, fmt.Sprintf("%s @%d = %v (redfed: %v, %v)", series, ts, v, g, ok))
				if len(out) == 5 {
					return out
				}
			}
		}
	}
	return out
}

// eventuallyMissing polls stored for a minute until it holds every sample
// of want, and returns what it still lacks then.
func eventuallyMissing(t *testing.T, want map[string]promSeries, stored func() map[string]promSeries) []string {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		lacking := missing(want, stored())
		if len(lacking) == 0 || time.Now().After(deadline) {
			return lacking
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// writerConfig is the configuration of a prometheus that scrapes itself
// every second and writes to url, retrying quickly.
func writerConfig(url string) func(addr string) string {
	return func(addr string) string {
		return fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: [%q]
remote_write:
  - url: %q
    remote_timeout: 10s
    queue_config:
      batch_send_deadline: 500ms
      min_backoff: 50ms
      max_backoff: 500ms
    metadata_config:
      send: false
`, addr, url)
	}
}

// Prometheus writes what it scrapes to redfed; a second Prometheus that
// only reads from redfed answers a range query as the first one does.
func TestPrometheusWriteAndRead(t *testing.T) {
	e := startEndpoints(t, 3, remote.Options{})
	writer := startPrometheus(t, writerConfig(e.url+"/write"))
	start := time.Now()

	self := matcher(prompb.LabelMatcher_EQ, "instance", writer.addr)
	require.Eventually(t, func() bool {
		up := e.stored(t, time.Now(), matcher(prompb.LabelMatcher_EQ, "__name__", "up"), self)
		return len(up[labels.FromStrings("__name__", "up", "instance", writer.addr, "job", "prometheus").String()]) >= 12
	}, time.Minute, 200*time.Millisecond, "up of %s not in redfed:\n%s", writer.addr, writer.output())
	end := time.Now().Add(-time.Second)

	// Everything the writer holds of the metric up to end reaches redfed.
	const name = "prometheus_http_requests_total"
	want := writer.raw(t, name, end)
	require.NotEmpty(t, want)
	require.Empty(t, eventuallyMissing(t, want, func() map[string]promSeries {
		return e.stored(t, end, matcher(prompb.LabelMatcher_EQ, "__name__", name))
	}), "samples prometheus holds that redfed lacks")

	reader := startPrometheus(t, func(string) string {
		return fmt.Sprintf("remote_read:\n  - url: %q\n    read_recent: true\n", e.url+"/read")
	})
	params := url.Values{"query": {"rate(" + name + "[4s])"}, "start": {apiTime(start.Add(5 * time.Second))},
		"end": {apiTime(end)}, "step": {"1"}}
	wantRate := writer.query(t, "/api/v1/query_range", params)
	gotRate := reader.query(t, "/api/v1/query_range", params)
	require.NotEmpty(t, wantRate)
	assert.Len(t, gotRate, len(wantRate))
	steps := 0
	for series, samples := range wantRate {
		require.Contains(t, gotRate, series)
		assert.Len(t, gotRate[series], len(samples), series)
		for ts, v := range samples {
			assert.InDelta(t, v, gotRate[series][ts], 1e-9*math.Max(1, math.Abs(v)), "%s @%d", series, ts)
			steps++
		}
	}
	assert.Greater(t, steps, 10, "steps compared")
}

// A redis-server that restarts while Prometheus writes loses nothing that
// was acknowledged: the writes it missed got 503, and Prometheus sent them
// again once it was back. Its data survive in its append-only file, as
// they would on a real server with persistence.
func TestPrometheusWriteAcrossRestart(t *testing.T) {
	e := startEndpoints(t, 2, remote.Options{}, "--appendonly", "yes", "--appendfsync", "always")
	writer := startPrometheus(t, writerConfig(e.url+"/write"))
	self := matcher(prompb.LabelMatcher_EQ, "instance", writer.addr)
	every := matcher(prompb.LabelMatcher_RE, "__name__", ".+")
	require.Eventually(t, func() bool { return len(e.stored(t, time.Now(), self)) > 0 },
		time.Minute, 200*time.Millisecond, "nothing of %s in redfed:\n%s", writer.addr, writer.output())

	require.NoError(t, e.servers[0].Kill())
	killed := time.Now()
	up := labels.FromStrings("__name__", "up", "instance", writer.addr, "job", "prometheus").String()
	require.Eventually(t, func() bool {
		scrapes := 0
		for ts := range writer.raw(t, "up", time.Now())[up] {
			if ts > killed.UnixMilli() {
				scrapes++
			}
		}
		return scrapes >= 3 && e.write.Stats().Failed >= 3
	}, 30*time.Second, 100*time.Millisecond, "3 scrapes and 3 failed writes while %s was down", e.servers[0].Addr())
	require.NoError(t, e.servers[0].Restart())
	after := e.write.Stats().Samples
	require.Eventually(t, func() bool { return e.write.Stats().Samples > after+1000 }, 30*time.Second, 50*time.Millisecond,
		"writes did not resume after the restart of %s", e.servers[0].Addr())
	end := time.Now()

	want := writer.raw(t, `{__name__=~".+"}`, end)
	require.NotEmpty(t, want)
	assert.Empty(t, eventuallyMissing(t, want, func() map[string]promSeries { return e.stored(t, end, every) }),
		"samples prometheus holds that redfed lacks")
	t.Logf("%d series compared; %+v", len(want), e.write.Stats())
}
