package metrics_test

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/journal"
	"github.com/redfed/federated/internal/redistest"
	"github.com/redfed/federated/metrics"
)

func TestRangeSummary(t *testing.T) {
	servers := redistest.StartN(t, 2)
	c := groupClient(t, servers)
	ctx := context.Background()
	day := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	key := mustKey(t, c, day, "web1", "cpu")
	// 101 points a second apart, with a spike, split between the two
	// servers of the group (and some on both), as before the syncer ran.
	points := make([]metrics.Point, 101)
	copies := map[string][]string{}
	for i := range points {
		points[i] = metrics.Point{Time: day.Add(time.Duration(i) * time.Second), Value: float64(i % 10)}
		if i == 37 {
			points[i].Value = 1000
		}
		m := fmt.Sprintf("%d:%g", points[i].Time.Unix(), points[i].Value)
		switch i % 3 {
		case 0:
			copies[servers[0].Addr()] = append(copies[servers[0].Addr()], m)
		case 1:
			copies[servers[1].Addr()] = append(copies[servers[1].Addr()], m)
		default:
			copies[servers[0].Addr()] = append(copies[servers[0].Addr()], m)
			copies[servers[1].Addr()] = append(copies[servers[1].Addr()], m)
		}
	}
	for addr, members := range copies {
		_, err := merge(ctx, c, addr, []journal.KeyMembers{{Key: key, Members: members}})
		require.NoError(t, err)
	}
	from, to := points[0].Time, points[100].Time

	sum, err := newStore(t, c).Summarize(ctx, metrics.Series{Host: "web1", Metric: "cpu"}, from, to, 200)
	require.NoError(t, err)
	assert.Equal(t, metrics.Summary{Points: points, Total: 101}, sum, "few enough: every point of the union")
	assert.False(t, sum.Downsampled())

	sum, err = newStore(t, c).Summarize(ctx, metrics.Series{Host: "web1", Metric: "cpu"}, from, to, 10)
	require.NoError(t, err)
	assert.True(t, sum.Downsampled())
	assert.Equal(t, 101, sum.Total, "the points of the union: none was cut while reading")
	assert.LessOrEqual(t, len(sum.Points), 10)
	assert.Contains(t, sum.Points, points[37], "the spike survives")
	assert.Equal(t, points[0], sum.Points[0], "the lowest of the first span")
	for i := 1; i < len(sum.Points); i++ {
		assert.True(t, sum.Points[i-1].Time.Before(sum.Points[i].Time), "sorted at %d: %v", i, sum.Points)
	}

	sum, err = newStore(t, c).Summarize(ctx, metrics.Series{Host: "web1", Metric: "cpu"}, from, from.Add(2*time.Second), 2)
	require.NoError(t, err)
	assert.Equal(t, []metrics.Point{points[0], points[2]}, sum.Points, "one span: its lowest and highest")
	sum, err = newStore(t, c).Summarize(ctx, metrics.Series{Host: "web1", Metric: "cpu"}, from, from, 2)
	require.NoError(t, err)
	assert.Equal(t, points[:1], sum.Points, "one point")

	_, err = newStore(t, c).Summarize(ctx, metrics.Series{Host: "web1", Metric: "cpu"}, from, to, 1)
	assert.ErrorContains(t, err, "maxPoints 1: want at least 2")
	_, err = newStore(t, c).Summarize(ctx, metrics.Series{Host: "web:1", Metric: "cpu"}, from, to, 10)
	assert.ErrorIs(t, err, federated.ErrBadHost)
}

// When the copies hold more points than can be kept while reading, Total is
// counted on the copy of each key with the most.
func TestRangeSummaryOfABigRange(t *testing.T) {
	servers := redistest.StartN(t, 2)
	c := groupClient(t, servers)
	ctx := context.Background()
	day := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	const n = 15_000 // on both servers: 30,000 copies of points
	fillSeries(t, c, "web1", "cpu", day, n, time.Second)
	sum, err := newStore(t, c).Summarize(ctx, metrics.Series{Host: "web1", Metric: "cpu"}, day, day.Add(n*time.Second), 100)
	require.NoError(t, err)
	assert.Equal(t, n, sum.Total)
	assert.Equal(t, 100, len(sum.Points), "points of the summary")
	assert.Equal(t, float64(0), sum.Points[0].Value)
	assert.Equal(t, float64(n-1), sum.Points[len(sum.Points)-1].Value)
}

// What a summary holds grows with the points it reads, never with
// maxPoints alone: a maxPoints of 2⁴⁰ for ten points made 40 TB of buckets
// up front, and the process died; math.MaxInt panicked.
func TestSummaryOfAFewPointsWithAHugeMaxPoints(t *testing.T) {
	servers := redistest.StartN(t, 2)
	c := groupClient(t, servers)
	ctx := context.Background()
	day := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	key := mustKey(t, c, day, "web1", "cpu")
	for _, s := range servers {
		_, err := merge(ctx, c, s.Addr(), []journal.KeyMembers{{Key: key, Members: pointsFrom(day, 10)}})
		require.NoError(t, err)
	}
	series := metrics.Series{Host: "web1", Metric: "cpu"}
	for _, maxPoints := range []int{1 << 20, 1 << 40, math.MaxInt} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		sum, err := newStore(t, c).Summarize(ctx, series, day, day.Add(time.Minute), maxPoints)
		runtime.ReadMemStats(&after)
		require.NoError(t, err)
		assert.Len(t, sum.Points, 10, "maxPoints %d", maxPoints)
		assert.Equal(t, 10, sum.Total)
		assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(1<<20), "bytes allocated, maxPoints %d", maxPoints)
	}
}
