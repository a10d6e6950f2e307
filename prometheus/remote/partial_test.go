package remote_test

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/fedtest"
	"github.com/redfed/federated/prometheus/remote"
)

// A sample of a period that retention dropped can never be stored: it is
// skipped and counted, the request's other samples are written, and the
// request is answered 204, every time it comes. A 503 had Prometheus send
// it again for ever, and its shard stalled. The warning says how many
// were skipped, of which period, from whom, once for many requests.
func TestWriteSkipsDroppedPeriods(t *testing.T) {
	var logs fedtest.Logs
	e := startEndpoints(t, 1, remote.Options{Logger: slog.New(&logs)})
	fedtest.SameDay(t, time.Minute)
	now := time.Now().UTC().Truncate(time.Millisecond)
	old := now.AddDate(0, 0, -3)
	_, err := e.store.DropBefore(context.Background(), now.AddDate(0, 0, -1))
	require.NoError(t, err)

	ls := []string{"__name__", "up", "instance", "a:1"}
	for i := range 3 {
		code, reply := e.writeSeries(t, series(ls,
			prompb.Sample{Timestamp: old.UnixMilli(), Value: 1},
			prompb.Sample{Timestamp: now.UnixMilli() + int64(i), Value: 2}))
		require.Equal(t, http.StatusNoContent, code, "try %d: %s", i+1, reply)
	}
	st := e.write.Stats()
	assert.Equal(t, remote.WriteStats{Requests: 3, Stored: 3, Samples: 3, Dropped: 3}, st)
	got := e.read(t, query(old.UnixMilli(), now.UnixMilli()+10, matcher(prompb.LabelMatcher_EQ, "__name__", "up")))[0]
	require.Len(t, got, 1)
	assert.Len(t, got[0].Samples, 3, "the current samples are written")

	const msg = "remote: samples of dropped periods skipped"
	assert.Equal(t, []any{int64(1)}, logs.Values(msg, "samples"), "one line for three requests")
	assert.Equal(t, []any{old.Format("2006-01-02")}, logs.Values(msg, "periods"))
	peers := logs.Values(msg, "peer")
	require.Len(t, peers, 1)
	assert.Contains(t, peers[0], "127.0.0.1:")
}

// A sample stamped more than 50 minutes ahead of the handler's clock,
// which no read near its time would find, is skipped, counted and logged
// with its sender, and the rest of its request written: answered 204, it
// was stored where no query near its time looked, and refusing the
// request would have lost the sender's other samples with it.
func TestWriteSkipsSamplesFarAhead(t *testing.T) {
	var logs fedtest.Logs
	e := startEndpoints(t, 1, remote.Options{Logger: slog.New(&logs)})
	now := time.Now().UTC().Truncate(time.Millisecond)
	ahead := now.Add(2 * time.Hour)
	code, reply := e.writeSeries(t,
		series([]string{"__name__", "up", "instance", "a:1"}, prompb.Sample{Timestamp: now.UnixMilli(), Value: 1}),
		series([]string{"__name__", "skewed", "instance", "b:1"}, prompb.Sample{Timestamp: ahead.UnixMilli(), Value: 2}, prompb.Sample{Timestamp: now.UnixMilli(), Value: 3}))
	require.Equal(t, http.StatusNoContent, code, reply)
	assert.Equal(t, remote.WriteStats{Requests: 1, Stored: 1, Samples: 2, Ahead: 1}, e.write.Stats())
	got := e.read(t, query(now.UnixMilli()-1000, ahead.UnixMilli(), matcher(prompb.LabelMatcher_NEQ, "__name__", "")))[0]
	require.Len(t, got, 2)
	for _, s := range got {
		assert.Equal(t, []prompb.Sample{{Timestamp: now.UnixMilli(), Value: s.Samples[0].Value}}, s.Samples, "%v", s.Labels)
	}
	const msg = "remote: samples stamped more than 50 minutes ahead of this host's clock skipped: no read near their time would find them (is the sender's clock right?)"
	assert.Equal(t, []any{int64(1)}, logs.Values(msg, "samples"))
	assert.Equal(t, []any{int64(3)}, logs.Values(msg, "of"))
	peers := logs.Values(msg, "peer")
	require.Len(t, peers, 1)
	assert.Contains(t, peers[0], "127.0.0.1:", "the sender named")
}

// A sample of year 10000 or later, which redfed cannot store, is as far
// ahead as any: skipped and counted, and the rest of its request written.
// (Such a sample had the whole request refused with 400, which Prometheus
// drops.)
func TestWriteSkipsSamplesBeyondYear9999(t *testing.T) {
	e := startEndpoints(t, 1, remote.Options{})
	now := time.Now().UTC().Truncate(time.Millisecond)
	y10k := time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	code, reply := e.writeSeries(t,
		series([]string{"__name__", "up", "instance", "a:1"}, prompb.Sample{Timestamp: now.UnixMilli(), Value: 1}),
		series([]string{"__name__", "odd", "instance", "b:1"}, prompb.Sample{Timestamp: y10k, Value: 2}, prompb.Sample{Timestamp: math.MaxInt64, Value: 3}))
	require.Equal(t, http.StatusNoContent, code, reply)
	assert.Equal(t, remote.WriteStats{Requests: 1, Stored: 1, Samples: 1, Ahead: 2}, e.write.Stats())
	got := e.read(t, query(now.UnixMilli()-1000, now.UnixMilli()+1000, matcher(prompb.LabelMatcher_NEQ, "__name__", "")))[0]
	require.Len(t, got, 1)
	assert.Equal(t, []prompb.Sample{{Timestamp: now.UnixMilli(), Value: 1}}, got[0].Samples)
}

// A request that fails after part of it was written counts the samples
// written: a series whose key holds another type is refused (400), and
// the samples of the other series, written, are counted, and so is one
// it skipped, since Prometheus does not send a 400 again.
func TestWriteCountsSamplesOfARequestRefusedInPart(t *testing.T) {
	e := startEndpoints(t, 1, remote.Options{})
	ls := []string{"__name__", "up", "instance", "a:1"}
	c := fedtest.NewClient(t, federated.Config{Nodes: fedtest.SingleNodes(e.servers), Options: fedtest.Options()})
	setByHand(t, c, ls)

	code, reply := e.writeSeries(t, series(ls, prompb.Sample{Timestamp: t0, Value: 1}),
		series([]string{"__name__", "fine"}, prompb.Sample{Timestamp: t0, Value: 2}, prompb.Sample{Timestamp: t0 + 1, Value: 3},
			prompb.Sample{Timestamp: time.Now().Add(2 * time.Hour).UnixMilli(), Value: 4}))
	require.Equal(t, http.StatusBadRequest, code, reply)
	st := e.write.Stats()
	assert.Equal(t, int64(2), st.Samples, "samples written: got %d, want 2", st.Samples)
	assert.Equal(t, int64(1), st.Refused)
	assert.Equal(t, int64(1), st.Ahead, "a sample skipped, of a request not sent again")
}

// A request with a series of a key of another type and a series of a
// server that is down is a 503, not a 400: Prometheus drops a 4xx, and the
// samples of the server that was down would be lost with it.
func TestWriteRefusedInPartWithAServerDownIsSentAgain(t *testing.T) {
	e := startEndpoints(t, 2, remote.Options{})
	c := fedtest.NewClient(t, federated.Config{Nodes: fedtest.SingleNodes(e.servers), Options: fedtest.Options()})
	onNode := func(node string) []string {
		for i := range 1000 {
			ls := []string{"__name__", "up", "instance", fmt.Sprintf("h%d", i)}
			s, err := remote.SeriesOf(labels.FromStrings(ls...), remote.DefaultHostLabel)
			require.NoError(t, err)
			if c.KeyToNode(fedtest.MustKey(t, c, time.UnixMilli(t0), s.Host, s.Metric)) == node {
				return ls
			}
		}
		t.Fatalf("no series on %s", node)
		return nil
	}
	wrongType, down := onNode(fedtest.NodeName(1)), onNode(fedtest.NodeName(2))
	setByHand(t, c, wrongType)
	require.NoError(t, e.servers[1].Kill())

	code, reply := e.writeSeries(t, series(wrongType, prompb.Sample{Timestamp: t0, Value: 1}),
		series(down, prompb.Sample{Timestamp: t0, Value: 2}))
	assert.Equal(t, http.StatusServiceUnavailable, code, reply)
	assert.Contains(t, reply, e.servers[1].Addr())
}

// The warning of a failed request names its sender.
func TestWriteFailureLogNamesTheSender(t *testing.T) {
	var logs fedtest.Logs
	e := startEndpoints(t, 1, remote.Options{Logger: slog.New(&logs)})
	require.NoError(t, e.servers[0].Kill())
	code, _ := e.writeSeries(t, series([]string{"__name__", "up"}, prompb.Sample{Timestamp: t0, Value: 1}))
	require.Equal(t, http.StatusServiceUnavailable, code)
	peers := logs.Values("remote: request failed", "peer")
	require.Len(t, peers, 1)
	assert.Contains(t, peers[0], "127.0.0.1:")
}

// setByHand makes the key of a series' sample at t0 a string, as a writer
// other than redfed might.
func setByHand(t *testing.T, c *federated.Client, ls []string) {
	t.Helper()
	s, err := remote.SeriesOf(labels.FromStrings(ls...), remote.DefaultHostLabel)
	require.NoError(t, err)
	key := fedtest.MustKey(t, c, time.UnixMilli(t0), s.Host, s.Metric)
	rc := fedtest.DirectClient(t, fedtest.MustServer(t, c, key))
	require.NoError(t, rc.Set(context.Background(), key, "by hand", 0).Err())
}

// A server that refuses writes (out of memory) fails the request with a
// 503 that Prometheus sends again, also beside a sample of a dropped
// period, which alone would be skipped: the refusal may pass.
func TestWriteRefusedByAFullServerIsSentAgain(t *testing.T) {
	e := startEndpoints(t, 1, remote.Options{})
	fedtest.SameDay(t, time.Minute)
	now := time.Now().UTC().Truncate(time.Millisecond)
	old := now.AddDate(0, 0, -3)
	_, err := e.store.DropBefore(context.Background(), now.AddDate(0, 0, -1))
	require.NoError(t, err)
	rc := redis.NewClient(&redis.Options{Addr: e.servers[0].Addr(), DisableIdentity: true})
	t.Cleanup(func() { _ = rc.Close() })
	require.NoError(t, rc.ConfigSet(context.Background(), "maxmemory", "1").Err())
	code, reply := e.writeSeries(t, series([]string{"__name__", "up", "instance", "a:1"},
		prompb.Sample{Timestamp: old.UnixMilli(), Value: 1},
		prompb.Sample{Timestamp: now.UnixMilli(), Value: 2}))
	assert.Equal(t, http.StatusServiceUnavailable, code, "%s", reply)
	assert.Contains(t, string(reply), "OOM")
	st := e.write.Stats()
	assert.Zero(t, st.Samples)
	assert.Zero(t, st.Dropped, "counted when the request is answered, not while it is sent again")
}
