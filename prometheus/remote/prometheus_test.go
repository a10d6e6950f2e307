package remote_test

import (
	"math"
	"net/url"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated/internal/promtest"
	"github.com/redfed/federated/prometheus/remote"
)

// Tests with the real Prometheus: one that scrapes itself every second and
// writes what it scrapes to the write handler, and one that reads it back
// through the read handler.

// stored returns the samples redfed holds of the series that ms select, in
// the minute up to at, read through the read handler, by promtest.Key.
func (e *endpoints) stored(t *testing.T, at time.Time, ms ...*prompb.LabelMatcher) map[string]promtest.Series {
	t.Helper()
	got := e.read(t, query(at.Add(-time.Minute).UnixMilli(), at.UnixMilli(), ms...))[0]
	out := make(map[string]promtest.Series, len(got))
	for _, ts := range got {
		s := make(promtest.Series, len(ts.Samples))
		for _, smp := range ts.Samples {
			s[smp.Timestamp] = smp.Value
		}
		ls := make(map[string]string, len(ts.Labels))
		for _, l := range ts.Labels {
			ls[l.Name] = l.Value
		}
		out[promtest.Key(ls)] = s
	}
	return out
}

// upKey is the key of the up series of a prometheus scraping itself.
func upKey(p *promtest.Server) string {
	return promtest.Key(map[string]string{"__name__": "up", "instance": p.Addr(), "job": "prometheus"})
}

// Prometheus writes what it scrapes to redfed; a second Prometheus that
// only reads from redfed answers a range query as the first one does.
func TestPrometheusWriteAndRead(t *testing.T) {
	e := startEndpoints(t, 3, remote.Options{})
	writer := promtest.Start(t, promtest.WriterConfig(e.url+"/write", ""))
	start := time.Now()

	self := matcher(prompb.LabelMatcher_EQ, "instance", writer.Addr())
	require.Eventually(t, func() bool {
		up := e.stored(t, time.Now(), matcher(prompb.LabelMatcher_EQ, "__name__", "up"), self)
		return len(up[upKey(writer)]) >= 12
	}, time.Minute, 200*time.Millisecond, "up of %s not in redfed:\n%s", writer.Addr(), writer.Output())
	end := time.Now().Add(-time.Second)

	// Everything the writer holds of the metric up to end reaches redfed.
	const name = "prometheus_http_requests_total"
	want := writer.Raw(t, name, end)
	require.NotEmpty(t, want)
	require.Empty(t, promtest.EventuallyMissing(t, want, func() map[string]promtest.Series {
		return e.stored(t, end, matcher(prompb.LabelMatcher_EQ, "__name__", name))
	}), "samples prometheus holds that redfed lacks")

	reader := promtest.Start(t, promtest.ReaderConfig(e.url+"/read", ""))
	params := url.Values{"query": {"rate(" + name + "[4s])"}, "start": {promtest.APITime(start.Add(5 * time.Second))},
		"end": {promtest.APITime(end)}, "step": {"1"}}
	wantRate := writer.Query(t, "/api/v1/query_range", params)
	gotRate := reader.Query(t, "/api/v1/query_range", params)
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
	writer := promtest.Start(t, promtest.WriterConfig(e.url+"/write", ""))
	self := matcher(prompb.LabelMatcher_EQ, "instance", writer.Addr())
	every := matcher(prompb.LabelMatcher_RE, "__name__", ".+")
	require.Eventually(t, func() bool { return len(e.stored(t, time.Now(), self)) > 0 },
		time.Minute, 200*time.Millisecond, "nothing of %s in redfed:\n%s", writer.Addr(), writer.Output())

	require.NoError(t, e.servers[0].Kill())
	killed := time.Now()
	require.Eventually(t, func() bool {
		scrapes := 0
		for ts := range writer.Raw(t, "up", time.Now())[upKey(writer)] {
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

	want := writer.Raw(t, `{__name__=~".+"}`, end)
	require.NotEmpty(t, want)
	assert.Empty(t, promtest.EventuallyMissing(t, want, func() map[string]promtest.Series { return e.stored(t, end, every) }),
		"samples prometheus holds that redfed lacks")
	t.Logf("%d series compared; %+v", len(want), e.write.Stats())
}
