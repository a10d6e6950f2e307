package dashboard

import (
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redfed/federated/internal/metric"
)

// paramError is a bad query parameter.
type paramError struct {
	Param   string // the parameter's name
	Problem string // what is wrong with it
}

func (e *paramError) Error() string { return e.Param + ": " + e.Problem }

// checkQuery refuses a query that url.ParseQuery cannot read whole, naming
// the parameter of the first pair it cannot read when that pair's name can
// be read, else "query".
func checkQuery(raw string) *paramError {
	if _, err := url.ParseQuery(raw); err == nil {
		return nil
	}
	for _, pair := range strings.Split(raw, "&") {
		_, err := url.ParseQuery(pair)
		if err == nil {
			continue
		}
		param := "query"
		name, _, _ := strings.Cut(pair, "=")
		if key, kerr := url.QueryUnescape(name); kerr == nil && key != "" && !strings.Contains(key, ";") {
			param = key
		}
		return &paramError{Param: param, Problem: fmt.Sprintf("%.100q cannot be read: %v (escape '%%' as %%25 and ';' as %%3B)", pair, err)}
	}
	return nil // not reached: some pair failed
}

// once refuses a parameter given more than once. r.URL.Query().Get
// returns the first, and the others were dropped without a word.
func once(q url.Values, names ...string) *paramError {
	for _, name := range names {
		if n := len(q[name]); n > 1 {
			return &paramError{Param: name, Problem: fmt.Sprintf("given %d times: give it once", n)}
		}
	}
	return nil
}

// seriesQuery is a parsed /api/series query.
type seriesQuery struct {
	Host, Metric string
	From, To     time.Time
	MaxPoints    int // at least 2, at most MaxPoints
}

// rangePresets are the ranges the pages offer, in order.
var rangePresets = []string{"15m", "1h", "6h", "24h", "7d"}

// defaultPreset is the preset the pages start with; it is DefaultRange.
const defaultPreset = "1h"

// latestTime is the first instant a metric timestamp cannot have: year
// 10000.
var latestTime = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)

// parseSeriesQuery reads host, metric, from, to, range and max_points. The
// range ends at to, or now; it starts at from, or range before its end, or
// DefaultRange before it. max_points defaults to DefaultMaxPoints.
func parseSeriesQuery(q url.Values, now time.Time) (seriesQuery, *paramError) {
	if e := once(q, "host"); e != nil {
		return seriesQuery{}, e
	}
	if q.Get("host") == "" {
		return seriesQuery{}, &paramError{Param: "host", Problem: "missing"}
	}
	if err := metric.ValidateHost(q.Get("host")); err != nil {
		return seriesQuery{}, &paramError{Param: "host", Problem: err.Error()}
	}
	s, err := parseMetricQuery(q, now)
	s.Host = q.Get("host")
	return s, err
}

// parseMetricQuery is parseSeriesQuery without the host: metric, from, to,
// range and max_points.
func parseMetricQuery(q url.Values, now time.Time) (seriesQuery, *paramError) {
	s := seriesQuery{Metric: q.Get("metric"), To: now, MaxPoints: DefaultMaxPoints}
	if e := once(q, "metric", "from", "to", "range", "max_points"); e != nil {
		return s, e
	}
	if s.Metric == "" {
		return s, &paramError{Param: "metric", Problem: "missing"}
	}
	// Before any read: an overview reads the metric of every host, and
	// each read would refuse it again.
	if err := metric.ValidateMetric(s.Metric); err != nil {
		return s, &paramError{Param: "metric", Problem: err.Error()}
	}
	if v := q.Get("to"); v != "" {
		t, err := parseTime(v)
		if err != nil {
			return s, &paramError{Param: "to", Problem: err.Error()}
		}
		s.To = t
	}
	length := DefaultRange
	if v := q.Get("range"); v != "" {
		if q.Get("from") != "" {
			return s, &paramError{Param: "range", Problem: "give from or range, not both"}
		}
		d, err := parseRange(v)
		if err != nil {
			return s, &paramError{Param: "range", Problem: err.Error()}
		}
		length = d
	}
	s.From = s.To.Add(-length)
	if v := q.Get("from"); v != "" {
		t, err := parseTime(v)
		if err != nil {
			return s, &paramError{Param: "from", Problem: err.Error()}
		}
		s.From = t
	}
	switch {
	case s.From.Before(time.Unix(0, 0)) && q.Get("from") == "":
		// The range was counted back from to.
		return s, &paramError{Param: "to", Problem: fmt.Sprintf("the range of %s before it starts before 1970", s.To.Sub(s.From))}
	case s.From.Before(time.Unix(0, 0)):
		return s, &paramError{Param: "from", Problem: "before 1970"}
	case s.From.After(s.To):
		return s, &paramError{Param: "from", Problem: "after to"}
	case s.To.Sub(s.From) > MaxRange:
		return s, &paramError{Param: "from", Problem: fmt.Sprintf("range of %s is longer than the limit of %s", s.To.Sub(s.From), MaxRange)}
	}
	if v := q.Get("max_points"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 2 || n > MaxPoints {
			return s, &paramError{Param: "max_points", Problem: fmt.Sprintf("%q is not a whole number from 2 to %d", v, MaxPoints)}
		}
		s.MaxPoints = n
	}
	return s, nil
}

// parseTime reads Unix seconds (with a fraction, if any) or an RFC 3339
// time, between 1970 and 9999. A '+' of a zone offset that arrived as a
// space, because the query was not escaped, is taken as '+'.
func parseTime(v string) (time.Time, error) {
	var t time.Time
	if strings.Trim(v, "0123456789.") == "" {
		sec, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsInf(sec, 0) || sec >= float64(latestTime.Unix()) {
			return t, fmt.Errorf("%q is not Unix seconds before year 10000", v)
		}
		whole, frac := math.Modf(sec)
		t = time.Unix(int64(whole), int64(math.Round(frac*1e9))).UTC()
	} else {
		var err error
		t, err = time.Parse(time.RFC3339Nano, strings.ReplaceAll(v, " ", "+"))
		if err != nil {
			return t, fmt.Errorf("%q is neither RFC 3339 nor Unix seconds", v)
		}
	}
	if t.Before(time.Unix(0, 0)) || !t.Before(latestTime) {
		return t, fmt.Errorf("%q is outside 1970 to 9999", v)
	}
	return t, nil
}

// parseRange reads a positive length of at most MaxRange: a Go duration
// ("15m", "6h") or a number of days ("7d").
func parseRange(v string) (time.Duration, error) {
	var d time.Duration
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil {
			return 0, fmt.Errorf("%q is not a duration like 15m, 6h or 7d", v)
		}
		switch {
		case n <= 0: // before multiplying, which could wrap a large negative
			d = 0
		case n > int(MaxRange/(24*time.Hour)):
			d = MaxRange + 1
		default:
			d = time.Duration(n) * 24 * time.Hour
		}
	} else {
		var err error
		if d, err = time.ParseDuration(v); err != nil {
			return 0, fmt.Errorf("%q is not a duration like 15m, 6h or 7d", v)
		}
	}
	switch {
	case d <= 0:
		return 0, fmt.Errorf("%q is not positive", v)
	case d > MaxRange:
		return 0, fmt.Errorf("%q is longer than the limit of %s", v, MaxRange)
	}
	return d, nil
}
