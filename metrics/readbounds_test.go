package metrics_test

import (
	"context"
	"errors"
	"fmt"
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

// A range holds the points whose time, as read back, lies in it. Its ends
// went to the servers as the float64s nearest to them, 119 ns either side
// in 2026, so a point half a second in came back from a range that ended
// 100 ns before it and from one that began 100 ns after it, and a point
// written 600 ns into a second came back, at 1 µs, from a range of its own
// time alone.
func TestRangeLeavesOutPointsJustPastItsEnds(t *testing.T) {
	servers := redistest.StartN(t, 1)
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
	st := newStore(t, c)
	ctx := context.Background()
	x := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	half, early := x.Add(500*time.Millisecond), x.Add(600*time.Nanosecond)
	require.NoError(t, c.Record(ctx, "web1", "cpu", half, 1))
	require.NoError(t, c.Record(ctx, "web1", "load", early, 2))
	cpu := metrics.Series{Host: "web1", Metric: "cpu"}

	tests := []struct {
		name     string
		metric   string
		from, to time.Time
		want     []metrics.Point
	}{
		{"ends 100 ns before", "cpu", x, half.Add(-100 * time.Nanosecond), nil},
		{"starts 100 ns after", "cpu", half.Add(100 * time.Nanosecond), x.Add(time.Second), nil},
		{"ends at it", "cpu", x, half, []metrics.Point{{Time: half, Value: 1}}},
		{"starts at it", "cpu", half, x.Add(time.Second), []metrics.Point{{Time: half, Value: 1}}},
		{"it alone", "cpu", half, half, []metrics.Point{{Time: half, Value: 1}}},
		{"its nanosecond alone", "load", early, early, nil},
		{"its microsecond", "load", x.Add(time.Microsecond), x.Add(time.Microsecond),
			[]metrics.Point{{Time: x.Add(time.Microsecond), Value: 2}}},
		{"ends within its microsecond", "load", x, x.Add(999 * time.Nanosecond), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := rangeOf(ctx, st, "web1", tt.metric, tt.from, tt.to)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got, "Range %v to %v", tt.from, tt.to)
			for _, p := range got {
				assert.False(t, p.Time.Before(tt.from) || p.Time.After(tt.to),
					"point at %v outside the range %v to %v", p.Time, tt.from, tt.to)
			}
		})
	}

	// Summarize reads the same ends.
	sum, err := st.Summarize(ctx, cpu, x, half.Add(-100*time.Nanosecond), 10)
	require.NoError(t, err)
	assert.Zero(t, sum.Total, "Summarize of a range that ends 100 ns before the point: got %v", sum.Points)
	sum, err = st.Summarize(ctx, cpu, half.Add(100*time.Nanosecond), x.Add(time.Second), 10)
	require.NoError(t, err)
	assert.Zero(t, sum.Total, "Summarize of a range that starts 100 ns after the point: got %v", sum.Points)
}

// A read may touch fewer than MaxRangePeriods periods, counted as the
// period keys it would read. The limit divided the range's length by the
// period's, which leaves out the partial periods at its ends: an hourly
// range that touched 100,000 periods, or 100,001, was not refused.
func TestRangeOfMaxRangePeriodsIsRefused(t *testing.T) {
	servers := redistest.StartN(t, 1)
	counter := &commandCounter{}
	opts := testOptions()
	opts.Metrics.Period = "hour"
	opts.Hooks = []redis.Hook{counter}
	st := newStore(t, newClient(t, federated.Config{Nodes: singleNodes(servers), Options: opts}))
	series := metrics.Series{Host: "web1", Metric: "cpu"}
	from := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	late := from.Add(30 * time.Minute)
	hours := func(n int) time.Duration { return time.Duration(n) * time.Hour }

	for _, tt := range []struct {
		name     string
		from, to time.Time
		periods  int
	}{
		{"whole hours", from, from.Add(hours(metrics.MaxRangePeriods - 1)), metrics.MaxRangePeriods},
		{"a part of an hour at each end", late, late.Add(hours(metrics.MaxRangePeriods-1) + 59*time.Minute), metrics.MaxRangePeriods + 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := st.Range(context.Background(), tt.from, tt.to, series)
			require.ErrorIs(t, err, metrics.ErrRangeTooWide)
			assert.ErrorContains(t, err, fmt.Sprintf("touches %d hour periods, at most %d may be read at once",
				tt.periods, metrics.MaxRangePeriods-1))
			_, err = st.Summarize(context.Background(), series, tt.from, tt.to, 10)
			require.ErrorIs(t, err, metrics.ErrRangeTooWide, "Summarize")
		})
	}
	assert.Zero(t, counter.Count(), "commands sent for ranges refused: got %d, want 0", counter.Count())

	// One period fewer is read. The context is done, so that the read
	// stops at its first command rather than ask for 99,999 keys.
	done, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := st.Range(done, late, from.Add(hours(metrics.MaxRangePeriods-2)+59*time.Minute), series)
	assert.NotErrorIs(t, err, metrics.ErrRangeTooWide, "a range of %d periods", metrics.MaxRangePeriods-1)
	assert.ErrorIs(t, err, context.Canceled, "a range of %d periods", metrics.MaxRangePeriods-1)
}

// A journal that an operator made a string fails Hosts and Metrics on its
// server with an error that names the key, as Range's errors name theirs:
// it said "WRONGTYPE Operation against a key holding the wrong kind of
// value" and no more. The other server's hosts still come back.
func TestListingNamesAJournalOfAnotherType(t *testing.T) {
	servers := redistest.StartN(t, 2)
	c := groupClient(t, servers)
	st := newStore(t, c)
	ctx := context.Background()
	at := time.Now().UTC().Add(-time.Minute).Truncate(time.Second)
	_, err := merge(ctx, c, servers[0].Addr(), []journal.KeyMembers{
		{Key: mustKey(t, c, at, "web1", "cpu"), Members: []string{fmt.Sprintf("%d:1", at.Unix())}},
	})
	require.NoError(t, err)
	bad := servers[1].Addr()
	require.NoError(t, directClient(t, bad).Set(ctx, "journal", "an operator's string", 0).Err())

	for _, since := range []time.Time{{}, at.Add(-time.Hour)} {
		hosts, err := st.Hosts(ctx, since)
		assert.Equal(t, []string{"web1"}, hosts, "Hosts since %v: the other server's", since)
		assertJournalError(t, err, bad)
		names, err := st.Metrics(ctx, "web1", since)
		assert.Equal(t, []string{"cpu"}, names, "Metrics since %v: the other server's", since)
		assertJournalError(t, err, bad)
	}
}

// assertJournalError checks that err is a WRONGTYPE reply of the journal
// on server addr, and says so.
func assertJournalError(t *testing.T, err error, addr string) {
	t.Helper()
	require.Error(t, err)
	assert.ErrorContains(t, err, "server "+addr+": reading the journal journal: WRONGTYPE")
	var se *federated.ServerError
	if assert.True(t, errors.As(err, &se), "got %v, want a *federated.ServerError", err) {
		assert.Equal(t, addr, se.Server)
	}
	var reply redis.Error
	assert.True(t, errors.As(err, &reply), "got %v, want the server's reply in the chain", err)
}

// A server stopped while DropBefore ran keeps the dropped period's keys
// and journal entries, and its old horizon. Hosts and Metrics go by the
// latest horizon of the servers, and leave the period out: they listed
// the host and the metric that only the dropped period held.
func TestListingLeavesOutAPeriodOneServerMissedTheDropOf(t *testing.T) {
	servers := redistest.StartN(t, 2)
	c := groupClient(t, servers)
	st := newStore(t, c)
	ctx := context.Background()
	old := time.Now().UTC().Add(-72 * time.Hour).Truncate(time.Second)
	kept := time.Now().UTC().Add(-time.Minute).Truncate(time.Second)
	for _, srv := range servers {
		_, err := merge(ctx, c, srv.Addr(), []journal.KeyMembers{
			{Key: mustKey(t, c, old, "web1", "cpu"), Members: []string{fmt.Sprintf("%d:1", old.Unix())}},
			{Key: mustKey(t, c, old, "web1", "mem"), Members: []string{fmt.Sprintf("%d:2", old.Unix())}},
			{Key: mustKey(t, c, kept, "web1", "cpu"), Members: []string{fmt.Sprintf("%d:3", kept.Unix())}},
			{Key: mustKey(t, c, old, "web2", "cpu"), Members: []string{fmt.Sprintf("%d:4", old.Unix())}},
		})
		require.NoError(t, err)
	}

	dropWithServerStopped(t, c, servers[1], time.Now().Add(-24*time.Hour))
	stale, err := directClient(t, servers[1].Addr()).ZRange(ctx, "journal", 0, -1).Result()
	require.NoError(t, err)
	require.Contains(t, stale, mustKey(t, c, old, "web2", "cpu"), "the server that missed the drop still journals the period")

	for _, since := range []time.Time{{}, old.Add(-time.Hour)} {
		hosts, err := st.Hosts(ctx, since)
		require.NoError(t, err)
		assert.Equal(t, []string{"web1"}, hosts, "Hosts since %v", since)
		names, err := st.Metrics(ctx, "web1", since)
		require.NoError(t, err)
		assert.Equal(t, []string{"cpu"}, names, "Metrics of web1 since %v", since)
		names, err = st.Metrics(ctx, "web2", since)
		require.NoError(t, err)
		assert.Empty(t, names, "Metrics of web2 since %v", since)
	}
}

// dropWithServerStopped runs DropBefore(before) with srv stopped (SIGSTOP),
// so that it misses the drop, and starts it again.
func dropWithServerStopped(t *testing.T, c *federated.Client, srv *redistest.Server, before time.Time) {
	t.Helper()
	require.NoError(t, srv.Pause())
	_, err := newStore(t, c).DropBefore(context.Background(), before)
	require.ErrorContains(t, err, srv.Addr(), "the stopped server missed the drop")
	require.NoError(t, srv.Resume())
	c.MarkServerUp(srv.Addr())
}
