package metrics_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated"
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
