package remote_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated/internal/fedtest"
	"github.com/redfed/federated/internal/redistest"
	"github.com/redfed/federated/prometheus/remote"
)

// journalReads returns how many times the servers have read a journal in
// all, a ZRANGEBYSCORE or a ZSCAN a listing (a read of series is a
// ZRANGEBYSCORE too: call it before and after listings only).
func journalReads(t *testing.T, e *endpoints) int64 {
	t.Helper()
	n := int64(0)
	for _, s := range e.servers {
		info, err := fedtest.DirectClient(t, s.Addr()).Info(context.Background(), "commandstats").Result()
		require.NoError(t, err)
		stats := redistest.ParseCommandStats(info)
		n += stats["zscan"].Completed() + stats["zrangebyscore"].Completed()
	}
	return n
}

// A query of one metric across every host lists the series in one read of
// each journal: it listed the hosts, then the metrics of each, a read of
// every journal each (31 reads of each journal here, 301 across 300 hosts).
func TestReadOfAMetricAcrossHostsListsTheJournalsOnce(t *testing.T) {
	e := startEndpoints(t, 3, remote.Options{})
	var all []prompb.TimeSeries
	for i := range 30 {
		all = append(all, series([]string{"__name__", "up", "instance", fmt.Sprintf("web%02d:9100", i), "job", "node"},
			prompb.Sample{Timestamp: t0, Value: float64(i)}))
	}
	code, reply := e.writeSeries(t, all...)
	require.Equal(t, 204, code, reply)

	// A query of a metric no host has: its series are listed, none read.
	before := journalReads(t, e)
	got := e.read(t, query(t0, t0+1000, matcher(prompb.LabelMatcher_EQ, "__name__", "down")))
	assert.Empty(t, got[0], "no series of that metric")
	assert.Equal(t, int64(len(e.servers)), journalReads(t, e)-before, "journal reads")

	got = e.read(t, query(t0, t0+1000, matcher(prompb.LabelMatcher_EQ, "__name__", "up"),
		matcher(prompb.LabelMatcher_RE, "instance", "web0[0-4]:9100")))
	require.Len(t, got[0], 5, "the hosts that match")
	for i, ts := range got[0] {
		assert.Contains(t, labelsOf(ts), fmt.Sprintf("instance=web%02d:9100", i))
		assert.Equal(t, float64(i), ts.Samples[0].Value)
	}
}
