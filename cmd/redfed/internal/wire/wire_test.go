package wire

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated/metrics"
)

// TestSeriesJSON pins the documented shape: RFC 3339 times in UTC that
// keep their nanoseconds, and [] for no points.
func TestSeriesJSON(t *testing.T) {
	east := time.FixedZone("", 2*3600)
	from := time.Date(2026, 11, 25, 12, 0, 0, 0, east)
	p := metrics.Point{Time: time.Date(2026, 11, 25, 12, 0, 0, 123456789, east), Value: -2.5}
	s := NewSeries(metrics.Series{Host: "web1.sfo", Metric: "disk:sda:used"}, from, from.Add(time.Hour), []metrics.Point{p})

	b, err := json.Marshal(s)
	require.NoError(t, err)
	assert.JSONEq(t, `{"host": "web1.sfo", "metric": "disk:sda:used",
		"from": "2026-11-25T10:00:00Z", "to": "2026-11-25T11:00:00Z",
		"points": [{"time": "2026-11-25T10:00:00.123456789Z", "value": -2.5}]}`, string(b))

	var back Series
	require.NoError(t, json.Unmarshal(b, &back))
	require.Len(t, back.Points, 1)
	assert.True(t, p.Time.Equal(back.Points[0].Time), "got %v, want %v", back.Points[0].Time, p.Time)

	b, err = json.Marshal(NewSeries(metrics.Series{Host: "h", Metric: "m"}, from, from, nil))
	require.NoError(t, err)
	assert.Contains(t, string(b), `"points":[]`)
}
