package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/redistest"
	"github.com/redfed/federated/metrics"
)

// fillScript adds ARGV[2] members to KEYS[1], scored ARGV[1] + i * ARGV[3]
// for i from 0, with the member "$score:$i": a big series written by the
// server itself, in batches small enough to unpack.
var fillScript = redis.NewScript(`
local base, n, step = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
for first = 0, n - 1, 1000 do
  local args = {}
  for i = first, math.min(first + 999, n - 1) do
    local score = base + i * step
    args[#args + 1] = score
    args[#args + 1] = string.format('%.17g:%d', score, i)
  end
  redis.call('ZADD', KEYS[1], unpack(args))
end
return redis.call('ZCARD', KEYS[1])
`)

// fillSeries writes n points of a host's metric on every server of the
// key's group, from start, step apart, and returns the key.
func fillSeries(t *testing.T, c *federated.Client, host, metricName string, start time.Time, n int, step time.Duration) string {
	t.Helper()
	key := mustKey(t, c, start, host, metricName)
	addrs, err := c.AllServers(c.KeyToNode(key))
	require.NoError(t, err)
	for _, addr := range addrs {
		card, err := fillScript.Run(context.Background(), directClient(t, addr), []string{key},
			start.Unix(), n, step.Seconds()).Int64()
		require.NoError(t, err)
		require.Equal(t, int64(n), card, "members written to %s", addr)
	}
	return key
}

// A key is read in pages: many members of one score, more than a page,
// come back once each, as do those around them.
func TestRangeReadsManyMembersOfOneScore(t *testing.T) {
	servers := redistest.StartN(t, 1)
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
	ctx := context.Background()
	day := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	key := mustKey(t, c, day, "web1", "cpu")
	rc := directClient(t, servers[0].Addr())
	var want []metrics.Point
	add := func(sec float64, n int) {
		var zs []redis.Z
		for i := range n {
			v := float64(len(want))
			zs = append(zs, redis.Z{Score: float64(day.Unix()) + sec, Member: fmt.Sprintf("%g:%g", float64(day.Unix())+sec, v)})
			want = append(want, metrics.Point{Time: day.Add(time.Duration(sec * float64(time.Second))), Value: v})
			if len(zs) == 1000 || i == n-1 {
				require.NoError(t, rc.ZAdd(ctx, key, zs...).Err())
				zs = zs[:0]
			}
		}
	}
	add(1, 999)  // a page but one: the next page starts inside a score
	add(2, 2500) // two pages and a half at one score
	add(3, 1)
	add(4, 1000)

	got, err := rangeOf(ctx, newStore(t, c), "web1", "cpu", day, day.Add(time.Hour))
	require.NoError(t, err)
	require.Len(t, got, len(want))
	assert.Equal(t, want, got)

	// With other keys on the server, the first page is smaller (16,000
	// members a round trip, shared): the paging still finds everything.
	series := []metrics.Series{{Host: "web1", Metric: "cpu"}}
	for i := range 40 {
		series = append(series, metrics.Series{Host: fmt.Sprintf("db%d", i), Metric: "cpu"})
		require.NoError(t, c.Record(ctx, series[i+1].Host, "cpu", day.Add(time.Minute), 1))
	}
	multi, err := rangeBySeries(ctx, newStore(t, c), series, day, day.Add(time.Hour))
	require.NoError(t, err)
	assert.Equal(t, want, multi[series[0]].Points)
	for _, s := range series[1:] {
		assert.Len(t, multi[s].Points, 1, "series %v", s)
	}
}

// readSizes is a go-redis hook that keeps the most members any one range
// read command answered with, and counts them and the round trips.
type readSizes struct {
	mu         sync.Mutex
	most       int
	commands   int
	roundTrips int
}

func (h *readSizes) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *readSizes) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		h.note(cmd)
		return err
	}
}

func (h *readSizes) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		h.mu.Lock()
		h.roundTrips++
		h.mu.Unlock()
		for _, cmd := range cmds {
			h.note(cmd)
		}
		return err
	}
}

// reset forgets what was counted.
func (h *readSizes) reset() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.most, h.commands, h.roundTrips = 0, 0, 0
}

// measuredClient returns a client of one server whose reads a readSizes
// hook counts.
func measuredClient(t *testing.T) (*federated.Client, *readSizes) {
	t.Helper()
	sizes := &readSizes{}
	opts := testOptions()
	opts.Hooks = []redis.Hook{sizes}
	return newClient(t, federated.Config{Nodes: singleNodes(redistest.StartN(t, 1)), Options: opts}), sizes
}

func (h *readSizes) note(cmd redis.Cmder) {
	if !strings.HasSuffix(cmd.Name(), "rangebyscore") {
		return
	}
	n := 0
	switch cmd := cmd.(type) {
	case *redis.ZSliceCmd:
		n = len(cmd.Val())
	case *redis.StringSliceCmd:
		n = len(cmd.Val())
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.most, h.commands = max(h.most, n), h.commands+1
}

// afterFirstRead runs f once, after the first pipeline of ZRANGEBYSCOREs
// a client sends.
type afterFirstRead struct {
	once sync.Once
	f    func()
}

func (h *afterFirstRead) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h *afterFirstRead) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h *afterFirstRead) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		if len(cmds) > 0 && cmds[0].Name() == "zrangebyscore" {
			h.once.Do(h.f)
		}
		return err
	}
}

// A member added at the score a read's next page starts at, between two
// pages, moves the members after it: the next page begins with one read
// already, which the read leaves out, and goes on.
func TestRangeReadsOnAcrossAMemberAddedBetweenPages(t *testing.T) {
	servers := redistest.StartN(t, 1)
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
	ctx := context.Background()
	day := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	key := mustKey(t, c, day, "web1", "cpu")
	rc := directClient(t, servers[0].Addr())
	score := float64(day.Unix() + 2)
	var zs []redis.Z
	for i := range 1500 { // a page and a half at one score
		zs = append(zs, redis.Z{Score: score, Member: fmt.Sprintf("%g:%d", score, 1000+i)})
	}
	require.NoError(t, rc.ZAdd(ctx, key, zs...).Err())
	c.AddServerHook(func(string) redis.Hook {
		return &afterFirstRead{f: func() {
			// Sorts before every member of the score.
			require.NoError(t, rc.ZAdd(ctx, key, redis.Z{Score: score, Member: fmt.Sprintf("%g:0", score)}).Err())
		}}
	})
	got, err := rangeOf(ctx, newStore(t, c), "web1", "cpu", day, day.Add(time.Hour))
	require.NoError(t, err)
	assert.Len(t, got, 1500, "every member of the read's start, once")
}

// No command of a read holds a server for long: a series of 100,000
// points is read whole in commands of at most 1,000 members each (a page
// of 1,000 takes a server about 0.4 ms; one ZRANGEBYSCORE of 300,000,
// 35 ms, while every writer waits).
func TestRangeReadsInPages(t *testing.T) {
	c, sizes := measuredClient(t)
	ctx := context.Background()
	day := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	const n = 100_000
	fillSeries(t, c, "web1", "cpu", day, n, 250*time.Millisecond)

	end := day.Add((n - 1) * 250 * time.Millisecond)
	points, err := rangeOf(ctx, newStore(t, c), "web1", "cpu", day, end)
	require.NoError(t, err)
	assert.Equal(t, n, len(points), "points read")
	sum, err := newStore(t, c).Summarize(ctx, metrics.Series{Host: "web1", Metric: "cpu"}, day, end, 1000)
	require.NoError(t, err)
	assert.Equal(t, n, sum.Total)
	assert.Equal(t, 1000, len(sum.Points), "points of the summary")
	assert.LessOrEqual(t, sizes.most, 1000, "members of the biggest read command")
	assert.GreaterOrEqual(t, sizes.commands, 2*n/1000, "read commands")
}

// Many small keys on one server come in one round trip: their first pages
// share the round's budget of members.
func TestRangeMultiOfSmallKeysInOneRoundTrip(t *testing.T) {
	c, sizes := measuredClient(t)
	ctx := context.Background()
	at := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	var series []metrics.Series
	for i := range 150 {
		s := metrics.Series{Host: fmt.Sprintf("web%d", i), Metric: "cpu"}
		series = append(series, s)
		require.NoError(t, c.Record(ctx, s.Host, s.Metric, at, float64(i)))
	}
	sizes.reset() // the writes' are not counted
	got, err := rangeBySeries(ctx, newStore(t, c), series, at, at)
	require.NoError(t, err)
	for i, s := range series {
		assert.Equal(t, []metrics.Point{{Time: at, Value: float64(i)}}, got[s].Points, "series %v", s)
	}
	assert.Equal(t, 1, sizes.roundTrips, "round trips")
	assert.Equal(t, 150, sizes.commands, "read commands")
}

// A read that runs out of time is the reader's failure: it does not mark
// the server down, and writers go on using it.
func TestReadTimeoutLeavesServerUp(t *testing.T) {
	servers := redistest.StartN(t, 1)
	opts := testOptions()
	opts.CommandTimeout = 300 * time.Millisecond
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: opts})
	ctx := context.Background()
	at := time.Now().UTC().Add(-time.Minute).Truncate(time.Second)
	require.NoError(t, c.Record(ctx, "web1", "cpu", at, 1))

	require.NoError(t, servers[0].Pause())
	reads := []struct {
		name string
		read func() error
	}{
		{"Range", func() error { _, err := rangeOf(ctx, newStore(t, c), "web1", "cpu", at, at); return err }},
		{"RangeSummary", func() error {
			_, err := newStore(t, c).Summarize(ctx, metrics.Series{Host: "web1", Metric: "cpu"}, at, at, 100)
			return err
		}},
		{"Latest", func() error {
			_, err := newStore(t, c).Latest(ctx, metrics.Series{Host: "web1", Metric: "cpu"})
			return err
		}},
		{"Hosts", func() error { _, err := newStore(t, c).Hosts(ctx, time.Time{}); return err }},
	}
	for _, r := range reads {
		err := r.read()
		require.Error(t, err, r.name)
		var timeout interface{ Timeout() bool }
		assert.True(t, errors.As(err, &timeout) && timeout.Timeout(), "%s: a timeout: %v", r.name, err)
		assert.Contains(t, err.Error(), servers[0].Addr(), "%s: the error names the server", r.name)
		assert.False(t, c.IsServerDown(servers[0].Addr()), "%s marked the server down", r.name)
	}
	require.NoError(t, servers[0].Resume())
	require.NoError(t, c.Record(ctx, "web1", "cpu", at.Add(time.Second), 2))
	points, err := rangeOf(ctx, newStore(t, c), "web1", "cpu", at, at.Add(time.Second))
	require.NoError(t, err)
	assert.Len(t, points, 2)
}
