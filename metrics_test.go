package federated_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/redistest"
)

func TestRecordWritesMemberAndJournal(t *testing.T) {
	servers := redistest.StartN(t, 2)
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
	ctx := context.Background()
	at := time.Date(2026, 11, 25, 13, 45, 30, 0, time.UTC)

	require.NoError(t, c.Record(ctx, "web1.sfo", "cpu.user", at, 0.5))
	require.NoError(t, c.Record(ctx, "web1.sfo", "cpu.user", at.Add(time.Second), 12))
	key := "2026-11-25:web1.sfo:cpu.user"
	got, err := c.MetricKey(at, "web1.sfo", "cpu.user")
	require.NoError(t, err)
	require.Equal(t, key, got)

	direct := directClient(t, mustServer(t, c, key))
	members, err := direct.ZRangeWithScores(ctx, key, 0, -1).Result()
	require.NoError(t, err)
	ts := float64(at.Unix())
	assert.Equal(t, []redis.Z{
		{Score: ts, Member: fmt.Sprintf("%d:0.5", at.Unix())},
		{Score: ts + 1, Member: fmt.Sprintf("%d:12", at.Unix()+1)},
	}, members)

	journal, err := direct.ZRangeWithScores(ctx, "journal", 0, -1).Result()
	require.NoError(t, err)
	require.Len(t, journal, 1)
	assert.Equal(t, key, journal[0].Member)
	assert.InDelta(t, float64(serverTime(t, direct).UnixMicro())/1e6, journal[0].Score, 5, "journal scored with the server's clock")

	// Writing what is there already changes nothing, not even the journal.
	before := journal[0].Score
	time.Sleep(20 * time.Millisecond)
	require.NoError(t, c.Record(ctx, "web1.sfo", "cpu.user", at, 0.5))
	after, err := direct.ZScore(ctx, "journal", key).Result()
	require.NoError(t, err)
	assert.Equal(t, before, after)
}

func TestRecordRejectsBadInputAndWritesNothing(t *testing.T) {
	servers := redistest.StartN(t, 1)
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
	ctx := context.Background()
	at := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name         string
		host, metric string
		t            time.Time
		value        float64
		want         error
		mention      string
	}{
		{"empty host", "", "cpu", at, 1, federated.ErrBadHost, "host"},
		{"colon in host", "web1:6379", "cpu", at, 1, federated.ErrBadHost, `"web1:6379"`},
		{"control in host", "web\n1", "cpu", at, 1, federated.ErrBadHost, `web\n1`},
		{"empty metric", "web1", "", at, 1, federated.ErrBadMetric, "metric"},
		{"control in metric", "web1", "cpu\x00", at, 1, federated.ErrBadMetric, `cpu\x00`},
		{"NaN", "web1", "cpu", at, math.NaN(), federated.ErrBadValue, "NaN"},
		{"+Inf", "web1", "cpu", at, math.Inf(1), federated.ErrBadValue, "Inf"},
		{"before 1970", "web1", "cpu", time.Date(1969, 1, 1, 0, 0, 0, 0, time.UTC), 1, federated.ErrBadTimestamp, "-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := c.Record(ctx, tt.host, tt.metric, tt.t, tt.value)
			require.ErrorIs(t, err, tt.want)
			assert.Contains(t, err.Error(), tt.mention)
		})
	}
	keys, err := directClient(t, servers[0].Addr()).Keys(ctx, "*").Result()
	require.NoError(t, err)
	assert.Empty(t, keys, "bad input writes nothing")
}

func TestRecordOnWrongTypeKey(t *testing.T) {
	servers := redistest.StartN(t, 1)
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
	ctx := context.Background()
	at := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	require.NoError(t, c.Set(ctx, "2026-11-25:web1:cpu", "someone made this a string", 0).Err())
	err := c.Record(ctx, "web1", "cpu", at, 1)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "WRONGTYPE")
	assert.Contains(t, err.Error(), "2026-11-25:web1:cpu")
	assert.False(t, errors.Is(err, federated.ErrServerDown))
	n, err := directClient(t, servers[0].Addr()).Exists(ctx, "journal").Result()
	require.NoError(t, err)
	assert.Zero(t, n, "nothing journalled for a failed key")
}

func TestMetricKeyHelpers(t *testing.T) {
	at := time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)
	k, err := dayKey(at, "web1.sfo", "req:latency:p99")
	require.NoError(t, err)
	assert.Equal(t, "2026-11-25:web1.sfo:req:latency:p99", k)
	period, host, name, err := federated.ParseMetricKey(k)
	require.NoError(t, err)
	assert.Equal(t, time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC), period)
	assert.Equal(t, "web1.sfo", host)
	assert.Equal(t, "req:latency:p99", name)

	period, _, _, err = federated.ParseMetricKey("2026-11-25T13:web1:cpu")
	require.NoError(t, err)
	assert.Equal(t, at, period)
	_, _, _, err = federated.ParseMetricKey("journal")
	require.ErrorIs(t, err, federated.ErrBadKey)

	m, err := federated.FormatMember(time.Unix(1290000000, 0), 0.5)
	require.NoError(t, err)
	assert.Equal(t, "1290000000:0.5", m)
	ts, v, err := federated.ParseMember("1290000000.25:-3e-5")
	require.NoError(t, err)
	assert.Equal(t, int64(1290000000), ts.Unix())
	assert.Equal(t, -3e-5, v)
	_, _, err = federated.ParseMember("1290000000:nan")
	require.ErrorIs(t, err, federated.ErrBadMember)
	assert.True(t, strings.Contains(err.Error(), "nan"))
}
