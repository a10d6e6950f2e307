// Package wire defines the JSON shape of a time series that the command
// line's --json output (redfed query) and the dashboard's data API
// (GET /api/series) share, so that a script written against one reads the
// other:
//
//	{"host": "web1.sfo", "metric": "cpu.user",
//	 "from": "2026-11-25T10:00:00Z", "to": "2026-11-25T11:00:00Z",
//	 "points": [{"time": "2026-11-25T10:00:00.25Z", "value": 42}, ...]}
//
// Every time is RFC 3339 in UTC with as many fraction digits as it has, so
// that a point's time reads back exactly (a float of Unix seconds does not
// hold nanoseconds); points are sorted by time, and an empty list is [],
// never null. A reply adds its own fields beside these.
package wire

import (
	"time"

	"github.com/redfed/federated/metrics"
)

// Point is one point of a series.
type Point struct {
	Time  time.Time `json:"time"`  // UTC
	Value float64   `json:"value"` // never NaN or ±Inf: the store refuses them
}

// Series is a series' points in the range [From, To].
type Series struct {
	Host   string    `json:"host"`
	Metric string    `json:"metric"`
	From   time.Time `json:"from"` // UTC
	To     time.Time `json:"to"`   // UTC
	Points []Point   `json:"points"`
}

// NewSeries returns the wire form of the points of s in [from, to].
func NewSeries(s metrics.Series, from, to time.Time, points []metrics.Point) Series {
	return Series{Host: s.Host, Metric: s.Metric, From: from.UTC(), To: to.UTC(), Points: Points(points)}
}

// Points returns the wire form of points, in UTC; an empty list for none.
func Points(points []metrics.Point) []Point {
	out := make([]Point, len(points))
	for i, p := range points {
		out[i] = Point{Time: p.Time.UTC(), Value: p.Value}
	}
	return out
}
