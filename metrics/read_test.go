package metrics_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/journal"
	"github.com/redfed/federated/internal/redistest"
	"github.com/redfed/federated/metrics"
)

// recordAll writes points with Client.Record, one by one.
func recordAll(t testing.TB, c *federated.Client, host, metricName string, points []metrics.Point) {
	t.Helper()
	for _, p := range points {
		require.NoError(t, c.Record(context.Background(), host, metricName, p.Time, p.Value))
	}
}

// zaddOnOwner writes raw members into a key on the server that owns it,
// bypassing the write script.
func zaddOnOwner(t testing.TB, c *federated.Client, key string, members ...redis.Z) {
	t.Helper()
	require.NoError(t, directClient(t, mustServer(t, c, key)).ZAdd(context.Background(), key, members...).Err())
}

func TestRangeAcrossPeriods(t *testing.T) {
	servers := redistest.StartN(t, 3)
	const frac = 250 * time.Millisecond
	tests := []struct {
		name     string
		period   string
		base     time.Time     // the first point, less frac
		step     time.Duration // between points
		count    int           // points written
		from, to time.Duration // the range, from base; both fall on a point
		keys     int           // period keys the range touches
	}{
		{
			name: "three days", period: "day",
			base: time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC), step: 5 * time.Hour, count: 24,
			from: 25 * time.Hour, to: 90 * time.Hour, keys: 3, // 24th 01:00 to 26th 18:00
		},
		{
			name: "several hours", period: "hour",
			base: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC), step: 7 * time.Minute, count: 60,
			from: 70 * time.Minute, to: 301 * time.Minute, keys: 5, // 11:10 to 15:01
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := testOptions()
			opts.Metrics.Period = tt.period
			c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: opts})
			host := "web1." + tt.period
			var all, want []metrics.Point
			for i := range tt.count {
				at := tt.base.Add(time.Duration(i)*tt.step + frac)
				all = append(all, metrics.Point{Time: at, Value: float64(i) + 0.5})
				if d := at.Sub(tt.base) - frac; d >= tt.from && d <= tt.to {
					want = append(want, all[i])
				}
			}
			// Written newest first: the order of the answer is the reader's.
			for i := len(all) - 1; i >= 0; i-- {
				recordAll(t, c, host, "cpu.user", all[i:i+1])
			}

			from, to := tt.base.Add(tt.from+frac), tt.base.Add(tt.to+frac)
			got, err := rangeOf(context.Background(), newStore(t, c), host, "cpu.user", from, to)
			require.NoError(t, err)
			assert.Equal(t, want, got, "points in [%v, %v]", from, to)
			require.NotEmpty(t, got)
			assert.Equal(t, from, got[0].Time, "a point exactly at from is in")
			assert.Equal(t, to, got[len(got)-1].Time, "a point exactly at to is in")

			keys := map[string]bool{}
			for _, p := range want {
				key, err := c.MetricKey(p.Time, host, "cpu.user")
				require.NoError(t, err)
				keys[key] = true
			}
			assert.Len(t, keys, tt.keys, "period keys the points in the range come from")

			got, err = rangeOf(context.Background(), newStore(t, c), host, "cpu.user", to, from)
			require.NoError(t, err)
			assert.Empty(t, got, "a range that ends before it starts")
			got, err = rangeOf(context.Background(), newStore(t, c), "nobody", "cpu.user", from, to)
			require.NoError(t, err)
			assert.Empty(t, got, "missing keys are no points")
		})
	}
}

func TestRangeSkipsMalformedMembers(t *testing.T) {
	servers := redistest.StartN(t, 2)
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
	ctx := context.Background()
	day := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	good := []metrics.Point{
		{Time: day.Add(time.Hour), Value: 1},
		{Time: day.Add(3 * time.Hour), Value: 3},
	}
	recordAll(t, c, "web1", "cpu", good)
	key, err := c.MetricKey(day, "web1", "cpu")
	require.NoError(t, err)
	ts := float64(day.Add(2 * time.Hour).Unix())
	zaddOnOwner(t, c, key,
		redis.Z{Score: ts, Member: "abc"},
		redis.Z{Score: ts + 1, Member: "123:nan"},
		redis.Z{Score: ts + 2, Member: "1:2:3"},
		redis.Z{Score: ts + 86400*2, Member: "outside:the range"},
	)

	res, err := rangeBySeries(ctx, newStore(t, c), []metrics.Series{{Host: "web1", Metric: "cpu"}}, day, day.Add(24*time.Hour-time.Second))
	require.NoError(t, err)
	got := res[metrics.Series{Host: "web1", Metric: "cpu"}]
	assert.Equal(t, good, got.Points)
	assert.Equal(t, 3, got.Malformed, "malformed members in the range: got %d, want 3", got.Malformed)

	points, err := rangeOf(ctx, newStore(t, c), "web1", "cpu", day, day.Add(24*time.Hour))
	require.NoError(t, err)
	assert.Equal(t, good, points)
}

func TestRangeRejectsBadInputAndReadsNothing(t *testing.T) {
	servers := redistest.StartN(t, 1)
	counter := &commandCounter{}
	opts := testOptions()
	opts.Hooks = []redis.Hook{counter}
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: opts})
	ctx := context.Background()
	from := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	to := from.Add(time.Hour)
	tests := []struct {
		name         string
		host, metric string
		from, to     time.Time
		want         error
	}{
		{"empty host", "", "cpu", from, to, federated.ErrBadHost},
		{"colon in host", "web1:6379", "cpu", from, to, federated.ErrBadHost},
		{"empty metric", "web1", "", from, to, federated.ErrBadMetric},
		{"control in metric", "web1", "cpu\n", from, to, federated.ErrBadMetric},
		{"before 1970", "web1", "cpu", time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC), to, federated.ErrBadTimestamp},
		{"zero to", "web1", "cpu", from, time.Time{}, federated.ErrBadTimestamp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := rangeOf(ctx, newStore(t, c), tt.host, tt.metric, tt.from, tt.to)
			require.ErrorIs(t, err, tt.want)
			series := []metrics.Series{{Host: "web1", Metric: "cpu"}, {Host: tt.host, Metric: tt.metric}}
			_, err = rangeBySeries(ctx, newStore(t, c), series, tt.from, tt.to)
			require.ErrorIs(t, err, tt.want)
			if tt.want != federated.ErrBadTimestamp {
				_, err = newStore(t, c).Latest(ctx, metrics.Series{Host: tt.host, Metric: tt.metric})
				require.ErrorIs(t, err, tt.want)
			}
		})
	}
	_, err := rangeOf(ctx, newStore(t, c), "web1", "cpu", time.Unix(0, 0), time.Date(9000, 1, 1, 0, 0, 0, 0, time.UTC))
	require.Error(t, err, "a range of more than MaxRangePeriods periods")
	assert.Contains(t, err.Error(), "periods")
	assert.ErrorIs(t, err, metrics.ErrRangeTooWide)
	_, err = newStore(t, c).Metrics(ctx, "web:1", time.Time{})
	require.ErrorIs(t, err, federated.ErrBadHost)
	assert.Zero(t, counter.Count(), "commands sent for bad input: got %d, want 0", counter.Count())
}

func TestRangeMultiAcrossNodes(t *testing.T) {
	servers := redistest.StartN(t, 4)
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
	ctx := context.Background()
	from := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	to := from.Add(36 * time.Hour)

	var series []metrics.Series
	want := map[metrics.Series][]metrics.Point{}
	nodes := map[string]bool{}
	for i := range 8 {
		s := metrics.Series{Host: fmt.Sprintf("web%d.sfo", i), Metric: "req:latency:p99"}
		series = append(series, s)
		for j := range 3 {
			p := metrics.Point{Time: from.Add(time.Duration(j*12+i) * time.Hour), Value: float64(10*i + j)}
			want[s] = append(want[s], p)
			key, err := c.MetricKey(p.Time, s.Host, s.Metric)
			require.NoError(t, err)
			nodes[c.KeyToNode(key)] = true
		}
		recordAll(t, c, s.Host, s.Metric, want[s])
	}
	require.Greater(t, len(nodes), 1, "the series should land on several nodes")
	empty := metrics.Series{Host: "idle", Metric: "cpu"}
	want[empty] = nil

	got, err := rangeBySeries(ctx, newStore(t, c), append(series, empty, series[0]), from, to)
	require.NoError(t, err)
	require.Len(t, got, len(want), "series in the answer")
	for s, w := range want {
		assert.Equal(t, w, got[s].Points, "series %v", s)
	}
}

// A write is acknowledged by one server of its group, whichever the writer
// is on, and reaches the others only when the syncer copies it. A read
// right after it, by a client on another server of the group, must see it:
// reads ask every up server of the group and merge their copies.
func TestRangeReadsEveryServerOfTheGroup(t *testing.T) {
	servers := redistest.StartN(t, 2)
	c := groupClient(t, servers) // not QueryAll: this is every read
	ctx := context.Background()
	current, err := c.NodeToServer("group")
	require.NoError(t, err)
	other := servers[0].Addr()
	if other == current {
		other = servers[1].Addr()
	}
	day := time.Now().UTC().Truncate(24 * time.Hour)
	key := mustKey(t, c, day, "web1", "cpu")
	point := func(sec int, v float64) metrics.Point {
		return metrics.Point{Time: day.Add(time.Duration(sec) * time.Second), Value: v}
	}
	member := func(p metrics.Point) string { return fmt.Sprintf("%d:%g", p.Time.Unix(), p.Value) }
	both, onCurrent, onOther := point(10, 1), point(20, 2), point(5, 0.5)
	newest := point(30, 3) // acknowledged by the other server only
	for addr, points := range map[string][]metrics.Point{current: {both, onCurrent}, other: {both, onOther, newest}} {
		var members []string
		for _, p := range points {
			members = append(members, member(p))
		}
		_, err := merge(ctx, c, addr, []journal.KeyMembers{{Key: key, Members: members}})
		require.NoError(t, err)
	}
	malformed := redis.Z{Score: float64(day.Unix() + 15), Member: "not a point"}
	for _, addr := range []string{current, other} {
		require.NoError(t, directClient(t, addr).ZAdd(ctx, key, malformed).Err())
	}

	want := []metrics.Point{onOther, both, onCurrent, newest}
	got, err := rangeOf(ctx, newStore(t, c), "web1", "cpu", day, day.Add(time.Hour))
	require.NoError(t, err)
	assert.Equal(t, want, got, "the union of the replicas, each point once")
	res, err := rangeBySeries(ctx, newStore(t, c), []metrics.Series{{Host: "web1", Metric: "cpu"}}, day, day.Add(time.Hour))
	require.NoError(t, err)
	assert.Equal(t, 1, res[metrics.Series{Host: "web1", Metric: "cpu"}].Malformed,
		"a malformed member on both copies is one member")
	latest, err := newStore(t, c).Latest(ctx, metrics.Series{Host: "web1", Metric: "cpu"})
	require.NoError(t, err)
	assert.Equal(t, newest, latest, "the newest point of any server")

	// A server marked down cannot be read: what it alone acknowledged may
	// be missing, and the read says so, with what the others hold.
	for _, s := range servers {
		if s.Addr() == other {
			require.NoError(t, s.Kill()) // so that no re-check marks it up
		}
	}
	require.NoError(t, c.MarkServerDown(other))
	got, err = rangeOf(ctx, newStore(t, c), "web1", "cpu", day, day.Add(time.Hour))
	require.ErrorIs(t, err, federated.ErrServerDown)
	assert.Contains(t, err.Error(), other, "the error names the server")
	assert.Equal(t, []metrics.Point{both, onCurrent}, got)
	latest, err = newStore(t, c).Latest(ctx, metrics.Series{Host: "web1", Metric: "cpu"})
	require.ErrorIs(t, err, federated.ErrServerDown)
	assert.Equal(t, onCurrent, latest)
}

func TestLatest(t *testing.T) {
	sameDay(t, 30*time.Second) // Latest reads back from its own today
	servers := redistest.StartN(t, 3)
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
	ctx := context.Background()
	today := time.Now().UTC().Truncate(24 * time.Hour)
	yesterday := today.Add(-24 * time.Hour)

	// The newest point is in yesterday's key, under malformed members that
	// score higher; today's key does not exist.
	newest := metrics.Point{Time: yesterday.Add(20*time.Hour + 500*time.Millisecond), Value: 42}
	recordAll(t, c, "web1", "cpu", []metrics.Point{
		{Time: yesterday.Add(-time.Hour), Value: 1},
		{Time: yesterday.Add(time.Hour), Value: 2},
		newest,
	})
	key, err := c.MetricKey(yesterday, "web1", "cpu")
	require.NoError(t, err)
	late := float64(yesterday.Add(23 * time.Hour).Unix())
	zaddOnOwner(t, c, key,
		redis.Z{Score: late, Member: "abc"},
		redis.Z{Score: late + 1, Member: "123:nan"},
		redis.Z{Score: late + 2, Member: "1:2:3"},
	)

	got, err := newStore(t, c).Latest(ctx, metrics.Series{Host: "web1", Metric: "cpu"})
	require.NoError(t, err)
	assert.Equal(t, newest, got)

	_, err = newStore(t, c).Latest(ctx, metrics.Series{Host: "web1", Metric: "never-written"})
	require.ErrorIs(t, err, metrics.ErrNoData)

	// The look-back is bounded: 7 days by default, Retention when set.
	old := metrics.Point{Time: today.Add(-9 * 24 * time.Hour), Value: 9}
	recordAll(t, c, "web2", "cpu", []metrics.Point{old})
	_, err = newStore(t, c).Latest(ctx, metrics.Series{Host: "web2", Metric: "cpu"})
	require.ErrorIs(t, err, metrics.ErrNoData, "a point 9 days old, with a 7-day look-back")

	opts := testOptions()
	opts.Metrics.Retention = 10
	c10 := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: opts})
	got, err = newStore(t, c10).Latest(ctx, metrics.Series{Host: "web2", Metric: "cpu"})
	require.NoError(t, err)
	assert.Equal(t, old, got)
}

// A server that refuses reads for a reason that passes (a long script:
// BUSY) fails a read once, naming it, not once for each key read there:
// Latest reads a key of each of the last 7 days.
func TestReadOfARefusingServerFailsOnce(t *testing.T) {
	servers := redistest.StartN(t, 1)
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
	ctx := context.Background()
	rc := directClient(t, servers[0].Addr())
	require.NoError(t, rc.ConfigSet(ctx, "busy-reply-threshold", "20").Err())
	busy := redis.NewClient(&redis.Options{Addr: servers[0].Addr(), DisableIdentity: true, ReadTimeout: -1})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = busy.Eval(context.Background(), "while true do end", nil).Err() // until killed
	}()
	t.Cleanup(func() {
		_ = rc.ScriptKill(ctx).Err()
		<-done
		_ = busy.Close()
	})
	require.Eventually(t, func() bool {
		err := rc.Ping(ctx).Err()
		return err != nil && strings.HasPrefix(err.Error(), "BUSY")
	}, 5*time.Second, 5*time.Millisecond)

	_, err := newStore(t, c).Latest(ctx, metrics.Series{Host: "web1", Metric: "cpu"})
	require.ErrorIs(t, err, federated.ErrTemporary)
	var se *federated.ServerError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, servers[0].Addr(), se.Server)
	assert.Equal(t, 1, strings.Count(err.Error(), "BUSY"), "one failure: %v", err)
}

func TestHostsAndMetrics(t *testing.T) {
	servers := redistest.StartN(t, 5)
	nodes := singleNodes(servers[:3])
	nodes["group"] = federated.Node{Addresses: redistest.Addrs(servers[3:])}
	c := newClient(t, federated.Config{Nodes: nodes, Options: testOptions()})
	ctx := context.Background()
	at := time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)

	for _, host := range []string{"web1", "web2", "db1"} {
		for _, name := range []string{"cpu", "mem", "disk:/var:used"} {
			require.NoError(t, c.Record(ctx, host, name, at, 1))
		}
	}
	// A host whose key lives on the replica group, journalled on one of its
	// servers only.
	var grouped string
	for i := 0; grouped == ""; i++ {
		host := fmt.Sprintf("rg%d", i)
		key, err := c.MetricKey(at, host, "load")
		require.NoError(t, err)
		if c.KeyToNode(key) == "group" {
			grouped = host
			require.NoError(t, c.Record(ctx, host, "load", at, 1))
		}
	}
	// A key journalled on the group's other server only, as after a write
	// that went there; and entries that are not metric keys.
	current, err := c.NodeToServer("group")
	require.NoError(t, err)
	other := servers[3].Addr()
	if other == current {
		other = servers[4].Addr()
	}
	require.NoError(t, directClient(t, other).ZAdd(ctx, "journal",
		redis.Z{Score: 1, Member: "2026-11-25:replica-only:uptime"},
		redis.Z{Score: 1, Member: "garbage"},
		redis.Z{Score: 1, Member: "2026-13-45:bad:date"},
	).Err())

	hosts, err := newStore(t, c).Hosts(ctx, time.Time{})
	require.NoError(t, err)
	assert.Equal(t, []string{"db1", "replica-only", grouped, "web1", "web2"}, hosts)

	names, err := newStore(t, c).Metrics(ctx, "web2", time.Time{})
	require.NoError(t, err)
	assert.Equal(t, []string{"cpu", "disk:/var:used", "mem"}, names)
	names, err = newStore(t, c).Metrics(ctx, grouped, time.Time{})
	require.NoError(t, err)
	assert.Equal(t, []string{"load"}, names)
	names, err = newStore(t, c).Metrics(ctx, "nobody", time.Time{})
	require.NoError(t, err)
	assert.Empty(t, names)
	// Every series in one read, by host then metric: "web1.x" after "web1"
	// although "web1.x:cpu" sorts before "web1:cpu".
	require.NoError(t, c.Record(ctx, "web1.x", "cpu", at, 1))
	series, err := newStore(t, c).Series(ctx, time.Time{})
	require.NoError(t, err)
	var want []metrics.Series
	for _, host := range []string{"db1", "web1", "web2"} {
		for _, name := range []string{"cpu", "disk:/var:used", "mem"} {
			want = append(want, metrics.Series{Host: host, Metric: name})
		}
	}
	want = slices.Insert(want, 3, metrics.Series{Host: "replica-only", Metric: "uptime"}, metrics.Series{Host: grouped, Metric: "load"})
	want = append(want, metrics.Series{Host: "web1.x", Metric: "cpu"})
	slices.SortStableFunc(want, func(a, b metrics.Series) int { return strings.Compare(a.Host, b.Host) })
	assert.Equal(t, want, series)

	// since filters by the journal's scores, the servers' clocks.
	since := serverTime(t, directClient(t, servers[0].Addr()))
	require.NoError(t, c.Record(ctx, "late1", "cpu", at, 2))
	require.NoError(t, c.Record(ctx, "web1", "swap", at, 2))
	hosts, err = newStore(t, c).Hosts(ctx, since)
	require.NoError(t, err)
	assert.Equal(t, []string{"late1", "web1"}, hosts, "hosts changed since %v", since)
	names, err = newStore(t, c).Metrics(ctx, "web1", since)
	require.NoError(t, err)
	assert.Equal(t, []string{"swap"}, names)

	// A server that is down: its error, with what the others listed.
	require.NoError(t, servers[1].Kill())
	hosts, err = newStore(t, c).Hosts(ctx, time.Time{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), servers[1].Addr(), "the error names the server")
	assert.Contains(t, hosts, "replica-only", "the other servers are still listed")
	_, err = newStore(t, c).Hosts(ctx, time.Time{})
	require.ErrorIs(t, err, federated.ErrServerDown, "once marked down")
}

func TestHostsBigJournal(t *testing.T) {
	servers := redistest.StartN(t, 1)
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
	ctx := context.Background()
	rc := directClient(t, servers[0].Addr())
	const recent, old = 12_000, 3_000 // more than a page of recent entries
	var members []redis.Z
	for i := range recent + old {
		score := 2e9
		if i >= recent {
			score = 1e9
		}
		members = append(members, redis.Z{Score: score, Member: fmt.Sprintf("2026-11-25:h%05d:cpu", i)})
		if len(members) == 1000 {
			require.NoError(t, rc.ZAdd(ctx, "journal", members...).Err())
			members = members[:0]
		}
	}
	tests := []struct {
		name  string
		since time.Time
		want  int
	}{
		{"everything", time.Time{}, recent + old},
		{"since", time.Unix(1.5e9, 0), recent},
		{"none", time.Unix(2e9+1, 0), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hosts, err := newStore(t, c).Hosts(ctx, tt.since)
			require.NoError(t, err)
			assert.Equal(t, tt.want, len(hosts), "hosts: got %d, want %d", len(hosts), tt.want)
		})
	}
}

// Two values of one series at one time (two writers, or a value sent again
// changed) are both kept: a read returns both, the smaller first, and
// Latest one of them, by the members' byte order, not the last written.
func TestOneTimeTwoValues(t *testing.T) {
	sameDay(t, 30*time.Second) // Latest reads back from its own today
	servers := redistest.StartN(t, 1)
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
	ctx := context.Background()
	at := time.Now().UTC().Truncate(time.Second)
	recordAll(t, c, "web1", "cpu", []metrics.Point{{Time: at, Value: 9}})
	recordAll(t, c, "web1", "cpu", []metrics.Point{{Time: at, Value: 10}})
	st := newStore(t, c)
	res, err := st.Range(ctx, at.Add(-time.Second), at.Add(time.Second), metrics.Series{Host: "web1", Metric: "cpu"})
	require.NoError(t, err)
	assert.Equal(t, []metrics.Point{{Time: at, Value: 9}, {Time: at, Value: 10}}, res[0].Points)
	got, err := st.Latest(ctx, metrics.Series{Host: "web1", Metric: "cpu"})
	require.NoError(t, err)
	assert.Equal(t, metrics.Point{Time: at, Value: 9}, got, `"9" sorts after "10"`)
}

// The first read after a server of the group was killed, whose refused
// connection marks it down, says so as every later one does: it matches
// ErrServerDown, names the server, and comes with the others' answer.
func TestFirstReadAfterAKillSaysTheServerIsDown(t *testing.T) {
	servers, c, st, key, at := seriesGroup(t)
	ctx := context.Background()
	series := metrics.Series{Host: "web1", Metric: "cpu"}
	victim := servers[0]
	for _, tc := range []struct {
		name string
		read func() (found bool, err error)
	}{
		{"Range", func() (bool, error) {
			res, err := st.Range(ctx, at.Add(-time.Hour), at, series)
			return len(res) == 1 && len(res[0].Points) == 1, err
		}},
		{"Summarize", func() (bool, error) {
			sum, err := st.Summarize(ctx, series, at.Add(-time.Hour), at, 10)
			return len(sum.Points) == 1, err
		}},
		{"Latest", func() (bool, error) {
			p, err := st.Latest(ctx, series)
			return p.Value == 1, err
		}},
		{"Hosts", func() (bool, error) {
			hosts, err := st.Hosts(ctx, time.Time{})
			return slices.Equal(hosts, []string{"web1"}), err
		}},
		{"Metrics", func() (bool, error) {
			names, err := st.Metrics(ctx, "web1", time.Time{})
			return slices.Equal(names, []string{"cpu"}), err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !victim.Running() {
				require.NoError(t, victim.Restart())
			}
			require.Eventually(t, func() bool { return c.IsServerUp(victim.Addr()) }, 5*time.Second, 10*time.Millisecond)
			for _, s := range servers {
				_, err := merge(ctx, c, s.Addr(), []journal.KeyMembers{{Key: key, Members: []string{fmt.Sprintf("%d:1", at.Unix())}}})
				require.NoError(t, err)
			}
			found, err := tc.read() // the connections in the pools
			require.NoError(t, err)
			require.True(t, found)

			require.NoError(t, victim.Kill())
			found, err = tc.read()
			require.ErrorIs(t, err, federated.ErrServerDown)
			assert.Contains(t, err.Error(), victim.Addr())
			assert.True(t, found, "the other server's answer")
		})
	}
}

// Two servers of a group that hold two values at one time (two writers of
// one series) give Latest the same answer whichever answers first: the
// larger value, as Range orders them. It flipped from call to call, and a
// dashboard ranked by it flickered.
func TestLatestOfTwoValuesAtOneTimeIsTheSameEveryCall(t *testing.T) {
	servers, c, st, key, at := seriesGroup(t)
	ctx := context.Background()
	for i, s := range servers {
		_, err := merge(ctx, c, s.Addr(), []journal.KeyMembers{{Key: key, Members: []string{fmt.Sprintf("%d:%d", at.Unix(), 9+i)}}})
		require.NoError(t, err)
	}
	for range 30 {
		p, err := st.Latest(ctx, metrics.Series{Host: "web1", Metric: "cpu"})
		require.NoError(t, err)
		require.Equal(t, metrics.Point{Time: at, Value: 10}, p)
	}
}

// seriesGroup starts a group of two servers, and returns its client and
// store, and the key of web1's cpu a minute ago, at, in whole seconds.
func seriesGroup(t *testing.T) (servers []*redistest.Server, c *federated.Client, st *metrics.Store, key string, at time.Time) {
	t.Helper()
	servers = redistest.StartN(t, 2)
	c = groupClient(t, servers)
	at = time.Now().UTC().Add(-time.Minute).Truncate(time.Second)
	return servers, c, newStore(t, c), mustKey(t, c, at, "web1", "cpu"), at
}

// A writer whose clock runs ahead of the reader's, past the start of the
// next period, writes to that period's key: Latest reads it, so the point
// is not hidden until the reader's clock gets there. A point two periods
// ahead is past the promise, and one more than 10 minutes ahead of the
// reader's clock is left out wherever it is: it would pass for the newest
// until the reader's clock got there. (The test takes tomorrow for
// minutes ahead.)
func TestLatestSeesAWriterAheadAcrossAPeriod(t *testing.T) {
	sameDay(t, 30*time.Second)
	servers := redistest.StartN(t, 2)
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
	ctx := context.Background()
	tomorrow := time.Now().UTC().Truncate(24 * time.Hour).Add(24 * time.Hour)
	recordAll(t, c, "web1", "cpu", []metrics.Point{
		{Time: tomorrow.Add(-time.Hour), Value: 1},
		{Time: tomorrow.Add(2 * time.Second), Value: 2},
	})
	recordAll(t, c, "web2", "cpu", []metrics.Point{{Time: tomorrow.Add(24*time.Hour + time.Second), Value: 3}})
	st := newStore(t, c)
	series := metrics.Series{Host: "web1", Metric: "cpu"}

	metrics.SetLatestAhead(t, 72*time.Hour)
	got, err := st.Latest(ctx, series)
	require.NoError(t, err)
	assert.Equal(t, metrics.Point{Time: tomorrow.Add(2 * time.Second), Value: 2}, got)
	_, err = st.Latest(ctx, metrics.Series{Host: "web2", Metric: "cpu"})
	require.ErrorIs(t, err, metrics.ErrNoData)

	metrics.SetLatestAhead(t, time.Until(tomorrow.Add(time.Second)))
	got, err = st.Latest(ctx, series)
	require.NoError(t, err)
	assert.Equal(t, metrics.Point{Time: tomorrow.Add(-time.Hour), Value: 1}, got, "the point ahead of the bound is left out")
}

// A member whose timestamp is not its score (a foreign writer's) is no
// point: Range returned such members' times outside the range read, and
// Latest took the highest scored for the newest, a point of 1970 before a
// real one.
func TestMembersNotScoredByTheirTimeAreSkipped(t *testing.T) {
	servers := redistest.StartN(t, 1)
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	if now.Truncate(24*time.Hour) != now.Add(-time.Minute).Truncate(24*time.Hour) {
		now = now.Add(time.Minute) // all in today's key
	}
	real := metrics.Point{Time: now.Add(-20 * time.Second), Value: 1}
	recordAll(t, c, "web1", "cpu", []metrics.Point{real})
	key, err := c.MetricKey(now, "web1", "cpu")
	require.NoError(t, err)
	at := func(d time.Duration) float64 { return float64(now.Add(d).Unix()) }
	zaddOnOwner(t, c, key,
		redis.Z{Score: at(-10 * time.Second), Member: "5:666"},
		redis.Z{Score: at(-5 * time.Second), Member: fmt.Sprintf("%d:777", now.Add(240*time.Hour).Unix())},
	)
	st := newStore(t, c)
	series := metrics.Series{Host: "web1", Metric: "cpu"}

	got, err := st.Range(ctx, now.Add(-time.Minute), now, series)
	require.NoError(t, err)
	assert.Equal(t, []metrics.Point{real}, got[0].Points)
	assert.Equal(t, 2, got[0].Malformed)
	p, err := st.Latest(ctx, series)
	require.NoError(t, err)
	assert.Equal(t, real, p)
}
