package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated"
	"github.com/redfed/federated/cmd/redfed/internal/graphite"
	"github.com/redfed/federated/internal/fedtest"
	"github.com/redfed/federated/internal/redistest"
	"github.com/redfed/federated/prometheus/remote"
)

// While the servers are down, eight Graphite senders' failed writes make
// one warning, the listener's, which names the sender: the shared
// Recorder logs nothing of its own (it logged a line per failed flush and
// node, thousands in seconds, none saying where the points came from).
func TestIngestWarningsAreRateLimited(t *testing.T) {
	servers := redistest.StartN(t, 1)
	client := fedtest.NewClient(t, federated.Config{Nodes: fedtest.SingleNodes(servers), Options: fedtest.Options()})
	logs := &fedtest.Logs{}
	ir := &ingestRecorder{client: client, logger: slog.New(logs)}
	rec, err := ir.get()
	require.NoError(t, err)
	t.Cleanup(ir.close)
	srv, err := graphite.Listen("127.0.0.1:0", graphite.Options{Writer: rec, Logger: slog.New(logs), RetryFor: time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	require.NoError(t, servers[0].Kill())

	const senders, rounds = 8, 5
	var wg sync.WaitGroup
	for s := range senders {
		wg.Go(func() {
			for i := range rounds {
				c, err := net.Dial("tcp", srv.TCPAddr().String())
				if !assert.NoError(t, err) {
					return
				}
				_, err = fmt.Fprintf(c, "collectd.web%d.load %d %d\n", s, i, time.Now().Unix())
				assert.NoError(t, err)
				_ = c.Close()
			}
		})
	}
	wg.Wait()
	require.Eventually(t, func() bool { return srv.Stats().Failed == senders*rounds }, 10*time.Second, 10*time.Millisecond,
		"stats %+v", srv.Stats())
	assert.Zero(t, len(logs.Values("ingest: write failed", "error")), "the Recorder's own warnings")
	peers := logs.Values("graphite: write failed", "peer")
	require.Len(t, peers, 1, "one warning in the interval")
	assert.Contains(t, peers[0], "127.0.0.1:")
}

// serve's /metrics exports the samples of dropped periods that remote
// write skipped, and the samples it wrote of a request it refused in part.
func TestServeMetricsCountDroppedAndPartlyWrittenSamples(t *testing.T) {
	servers := redistest.StartN(t, 1)
	client := fedtest.NewClient(t, federated.Config{Nodes: fedtest.SingleNodes(servers), Options: fedtest.Options()})
	ir := &ingestRecorder{client: client, logger: slog.New(slog.DiscardHandler)}
	rec, err := ir.get()
	require.NoError(t, err)
	t.Cleanup(ir.close)
	wh, err := remote.NewWriteHandler(rec, remote.Options{Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	hs := httptest.NewServer(wh)
	t.Cleanup(hs.Close)

	fedtest.SameDay(t, time.Minute)
	now := time.Now().UTC()
	_, err = storeOf(client).DropBefore(context.Background(), now.AddDate(0, 0, -1))
	require.NoError(t, err)
	bad := fedtest.MustKey(t, client, now, "bad", "up")
	require.NoError(t, fedtest.DirectClient(t, servers[0].Addr()).Set(context.Background(), bad, "by hand", 0).Err())
	ts := func(host string, at time.Time) prompb.TimeSeries {
		return prompb.TimeSeries{
			Labels:  []prompb.Label{{Name: "__name__", Value: "up"}, {Name: "instance", Value: host}},
			Samples: []prompb.Sample{{Timestamp: at.UnixMilli(), Value: 1}},
		}
	}
	post := func(series ...prompb.TimeSeries) int {
		body, err := (&prompb.WriteRequest{Timeseries: series}).Marshal()
		require.NoError(t, err)
		req, err := http.NewRequest(http.MethodPost, hs.URL, strings.NewReader(string(snappy.Encode(nil, body))))
		require.NoError(t, err)
		req.Header.Set("Content-Encoding", "snappy")
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_ = res.Body.Close()
		return res.StatusCode
	}
	assert.Equal(t, http.StatusNoContent, post(ts("a", now), ts("a", now.AddDate(0, 0, -3))))
	assert.Equal(t, http.StatusBadRequest, post(ts("b", now), ts("bad", now)))

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(remoteWriteCollector{wh})
	families, err := reg.Gather()
	require.NoError(t, err)
	value := func(name, label string) float64 {
		for _, f := range families {
			if f.GetName() != name {
				continue
			}
			for _, m := range f.GetMetric() {
				if label == "" || len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == label {
					return m.GetCounter().GetValue()
				}
			}
		}
		t.Fatalf("no %s{%s}", name, label)
		return 0
	}
	assert.Equal(t, float64(2), value("redfed_remote_write_samples_total", ""), "samples written, in the 204 and the 400")
	assert.Equal(t, float64(1), value("redfed_remote_write_skipped_total", "dropped_period"), "samples of dropped periods skipped")
	assert.NotContains(t, descRemoteRequests.String(), "nothing written)", "refused requests may have written samples")
}
