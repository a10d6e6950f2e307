package metrics_test

import (
	"context"
	"errors"
	"fmt"
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

// A server stopped while DropBefore ran keeps the dropped period and its
// old horizon, and with no syncer running it keeps them until the next
// drop: reads go by the latest horizon of the servers they ask, and leave
// the period out. They returned its point before, as if it had never been
// dropped.
func TestReadsLeaveOutAPeriodOneServerMissedTheDropOf(t *testing.T) {
	servers := redistest.StartN(t, 2)
	c := groupClient(t, servers)
	st := newStore(t, c)
	ctx := context.Background()
	old := time.Now().UTC().Add(-72 * time.Hour).Truncate(time.Second)
	kept := time.Now().UTC().Add(-time.Minute).Truncate(time.Second)
	oldKey := mustKey(t, c, old, "web1", "cpu")
	keptKey := mustKey(t, c, kept, "web1", "cpu")
	onlyOld := mustKey(t, c, old, "web2", "cpu")
	for _, srv := range servers {
		_, err := merge(ctx, c, srv.Addr(), []journal.KeyMembers{
			{Key: oldKey, Members: []string{fmt.Sprintf("%d:1", old.Unix())}},
			{Key: keptKey, Members: []string{fmt.Sprintf("%d:2", kept.Unix())}},
			{Key: onlyOld, Members: []string{fmt.Sprintf("%d:3", old.Unix())}},
		})
		require.NoError(t, err)
	}

	dropWithServerStopped(t, c, servers[1], time.Now().Add(-24*time.Hour))
	require.Equal(t, int64(1), directClient(t, servers[1].Addr()).Exists(ctx, oldKey).Val(),
		"the server that missed the drop still holds the period")

	web1 := metrics.Series{Host: "web1", Metric: "cpu"}
	web2 := metrics.Series{Host: "web2", Metric: "cpu"}
	points, err := rangeOf(ctx, st, "web1", "cpu", old.Add(-time.Hour), kept.Add(time.Hour))
	require.NoError(t, err)
	assert.Equal(t, []metrics.Point{{Time: kept, Value: 2}}, points, "Range: the kept period alone")
	sum, err := st.Summarize(ctx, web1, old.Add(-time.Hour), kept.Add(time.Hour), 100)
	require.NoError(t, err)
	assert.Equal(t, []metrics.Point{{Time: kept, Value: 2}}, sum.Points, "Summarize")
	assert.Equal(t, 1, sum.Total, "Summarize")
	_, err = st.Latest(ctx, web2)
	assert.ErrorIs(t, err, metrics.ErrNoData, "Latest of a series only the dropped period held")
	latest, err := st.Latest(ctx, web1)
	require.NoError(t, err)
	assert.Equal(t, metrics.Point{Time: kept, Value: 2}, latest, "Latest")
}

// dropAfterFirstPage runs DropBefore once, on the second server's client,
// after the first page of a key that a client reads.
type dropAfterFirstPage struct {
	drop func()
	done bool
}

func (h *dropAfterFirstPage) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h *dropAfterFirstPage) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h *dropAfterFirstPage) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		if len(cmds) > 0 && cmds[0].Name() == "zrangebyscore" && !h.done {
			h.done = true
			h.drop()
		}
		return err
	}
}

// dropAfterTheFirstPage makes c drop every period before yesterday after
// the first page of a key it reads, and returns where the drop's error
// goes. The drop goes through a client of its own: c's is busy with its
// read.
func dropAfterTheFirstPage(t *testing.T, c *federated.Client, servers []*redistest.Server) *error {
	dropper := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
	var dropErr error
	c.AddServerHook(func(string) redis.Hook {
		return &dropAfterFirstPage{drop: func() {
			_, dropErr = newStore(t, dropper).DropBefore(context.Background(), time.Now().Add(-24*time.Hour))
		}}
	})
	return &dropErr
}

// A read that DropBefore overtakes has read part of a period and then
// found it gone: it says so. It returned the first 1,000 of 5,000 points
// with no error, a range that looked whole.
func TestReadOfAPeriodDroppedMeanwhileSaysSo(t *testing.T) {
	servers := redistest.StartN(t, 1)
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
	st := newStore(t, c)
	ctx := context.Background()
	day := time.Now().UTC().Add(-72 * time.Hour).Truncate(24 * time.Hour)
	key := mustKey(t, c, day, "web1", "cpu")
	_, err := merge(ctx, c, servers[0].Addr(), []journal.KeyMembers{{Key: key, Members: pointsFrom(day, 5000)}})
	require.NoError(t, err)

	dropErr := dropAfterTheFirstPage(t, c, servers)
	points, err := rangeOf(ctx, st, "web1", "cpu", day, day.Add(24*time.Hour))
	require.NoError(t, *dropErr)
	require.Error(t, err, "a read that lost its period part way (%d points)", len(points))
	assert.True(t, errors.Is(err, federated.ErrPeriodDropped), "errors.Is ErrPeriodDropped: %v", err)
	assert.ErrorContains(t, err, key)
	assert.ErrorContains(t, err, servers[0].Addr())
	assert.Less(t, len(points), 5000)
}

// A horizon that is no period string, or that lies after the next period
// (an operator's mistake, a hostile server), is not gone by: it would have
// hidden every period of every server from every read, with no error.
func TestReadsIgnoreAHorizonThatCannotBeOne(t *testing.T) {
	for _, bad := range []string{"x", "9999-12-31", "2999-01-01T00"} {
		t.Run(bad, func(t *testing.T) {
			servers := redistest.StartN(t, 2)
			c := groupClient(t, servers)
			st := newStore(t, c)
			ctx := context.Background()
			at := time.Now().UTC().Add(-time.Minute).Truncate(time.Second)
			key := mustKey(t, c, at, "web1", "cpu")
			for _, srv := range servers {
				_, err := merge(ctx, c, srv.Addr(), []journal.KeyMembers{{Key: key, Members: []string{fmt.Sprintf("%d:1", at.Unix())}}})
				require.NoError(t, err)
			}
			require.NoError(t, directClient(t, servers[1].Addr()).Set(ctx, "journal:horizon", bad, 0).Err())

			points, err := rangeOf(ctx, st, "web1", "cpu", at, at)
			require.NoError(t, err)
			assert.Equal(t, []metrics.Point{{Time: at, Value: 1}}, points, "Range")
			hosts, err := st.Hosts(ctx, time.Time{})
			require.NoError(t, err)
			assert.Equal(t, []string{"web1"}, hosts, "Hosts")
			report, err := st.Check(ctx, metrics.CheckOptions{})
			require.NoError(t, err)
			assert.Equal(t, 1, report.Keys, "keys Check compares")
			assert.True(t, report.OK(), "%+v", report.Groups)
		})
	}
}

// A key that a DropBefore removed before the read came to it is left out
// whole, as if the read had begun after the drop: only a key that the read
// had handed pages of says it may be partial. The keys of a long range
// come in several round trips.
func TestKeyDroppedBeforeItsFirstPageIsLeftOutQuietly(t *testing.T) {
	servers := redistest.StartN(t, 1)
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
	st := newStore(t, c)
	ctx := context.Background()
	first := time.Now().UTC().Add(-300 * 24 * time.Hour).Truncate(24 * time.Hour)
	key := mustKey(t, c, first, "web1", "cpu")
	_, err := merge(ctx, c, servers[0].Addr(), []journal.KeyMembers{{Key: key, Members: pointsFrom(first, 5000)}})
	require.NoError(t, err)
	dropErr := dropAfterTheFirstPage(t, c, servers)
	// 200 daily keys: more than a round trip's first pages.
	_, err = rangeOf(ctx, st, "web1", "cpu", first, first.Add(199*24*time.Hour))
	require.NoError(t, *dropErr)
	require.Error(t, err, "the key read in part")
	assert.True(t, errors.Is(err, federated.ErrPeriodDropped), "errors.Is ErrPeriodDropped: %v", err)
	assert.Equal(t, 1, strings.Count(err.Error(), "while it was read"), "keys said to be partial: %v", err)
	assert.ErrorContains(t, err, key)
}

// Check says which server missed a drop, and Repair raises it to its
// group's horizon, removing the periods dropped: Check said OK while the
// server held them, and nothing but a syncer or the next drop removed
// them.
func TestCheckFindsAServerBehindItsGroupsHorizon(t *testing.T) {
	servers := redistest.StartN(t, 2)
	c := groupClient(t, servers)
	st := newStore(t, c)
	ctx := context.Background()
	old := time.Now().UTC().Add(-72 * time.Hour).Truncate(time.Second)
	key := mustKey(t, c, old, "web1", "cpu")
	for _, srv := range servers {
		_, err := merge(ctx, c, srv.Addr(), []journal.KeyMembers{{Key: key, Members: []string{fmt.Sprintf("%d:1", old.Unix())}}})
		require.NoError(t, err)
	}
	dropWithServerStopped(t, c, servers[1], time.Now().Add(-24*time.Hour))
	horizon := directClient(t, servers[0].Addr()).Get(ctx, "journal:horizon").Val()

	report, err := st.Check(ctx, metrics.CheckOptions{})
	require.NoError(t, err)
	assert.False(t, report.OK(), "a server holds a dropped period")
	require.Len(t, report.Groups, 1)
	assert.Equal(t, map[string]string{servers[1].Addr(): ""}, report.Groups[0].Behind)
	assert.Equal(t, int64(1), directClient(t, servers[1].Addr()).Exists(ctx, key).Val(), "Check writes nothing")

	report, err = st.Repair(ctx, metrics.CheckOptions{})
	require.NoError(t, err)
	assert.Equal(t, int64(1), report.Groups[0].Dropped, "keys removed")
	assert.Equal(t, horizon, directClient(t, servers[1].Addr()).Get(ctx, "journal:horizon").Val(), "raised")
	assert.Zero(t, directClient(t, servers[1].Addr()).Exists(ctx, key).Val(), "the dropped period is gone")
	report, err = st.Check(ctx, metrics.CheckOptions{})
	require.NoError(t, err)
	assert.True(t, report.OK(), "%+v", report.Groups)
}
