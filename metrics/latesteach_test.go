package metrics_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/redistest"
	"github.com/redfed/federated/metrics"
)

// newestReads counts the pipelines that read a key's newest members, and
// their commands.
type newestReads struct{ n, keys atomic.Int64 }

func (h *newestReads) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h *newestReads) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h *newestReads) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) > 0 && cmds[0].Name() == "zrevrangebyscore" {
			h.n.Add(1)
			h.keys.Add(int64(len(cmds) - 1)) // less the horizon's GET
		}
		return next(ctx, cmds)
	}
}

// The newest points of 200 series come in a round trip to each server,
// each the point Latest finds, from the last periods' keys; a series with
// none there is read further back, and not found. A dashboard that ranked
// 300 hosts by their newest point made 300 reads, each of a round trip
// and of 8 keys a host (169 with hourly periods).
func TestLatestEachReadsEverySeriesInOneRoundTrip(t *testing.T) {
	servers := redistest.StartN(t, 3)
	reads := &newestReads{}
	opts := testOptions()
	opts.Hooks = []redis.Hook{reads}
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: opts})
	st := newStore(t, c)
	ctx := context.Background()
	at := time.Now().UTC().Add(-time.Minute).Truncate(time.Second)
	rec := newRecorder(t, c, metrics.RecorderOptions{})
	var series []metrics.Series
	for i := range 200 {
		s := metrics.Series{Host: fmt.Sprintf("h%03d", i), Metric: "cpu"}
		series = append(series, s)
		require.NoError(t, rec.Add(ctx, s.Host, s.Metric, at.Add(-time.Hour), -1))
		require.NoError(t, rec.Add(ctx, s.Host, s.Metric, at, float64(i)))
	}
	require.NoError(t, rec.Flush(ctx))
	series = append(series, metrics.Series{Host: "quiet", Metric: "cpu"})

	before, keys := reads.n.Load(), reads.keys.Load()
	got, err := st.LatestEach(ctx, series...)
	require.NoError(t, err)
	assert.LessOrEqual(t, reads.n.Load()-before, int64(2*len(servers)), "round trips")
	assert.Equal(t, int64(3*201+5), reads.keys.Load()-keys,
		"keys read: the next period, the present one and the one before of each; the 5 before those of the quiet one")
	require.Len(t, got, len(series))
	for i, r := range got[:200] {
		assert.Equal(t, metrics.LatestResult{Series: series[i], Point: metrics.Point{Time: at, Value: float64(i)}, Found: true}, r)
		p, err := st.Latest(ctx, series[i])
		require.NoError(t, err)
		assert.Equal(t, r.Point, p, "%s: as Latest finds it", series[i].Host)
	}
	assert.Equal(t, metrics.LatestResult{Series: series[200]}, got[200], "a series with no point")
	_, err = st.LatestEach(ctx, metrics.Series{Host: "bad:host", Metric: "cpu"})
	assert.ErrorIs(t, err, federated.ErrBadHost)
}
