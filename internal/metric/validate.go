package metric

import (
	"fmt"
	"math"
	"time"
	"unicode/utf8"
)

// Limits on the parts of a metric key. A key is at most
// len("2006-01-02T15") + 2 + MaxHostLen + MaxMetricLen = 783 bytes, small
// enough to be cheap as a Redis key and as a member of the journal. The
// longest names seen in the Perl system are well under a hundred bytes.
const (
	MaxHostLen   = 256 // bytes; a DNS name is at most 253
	MaxMetricLen = 512 // bytes
)

// Timestamps are Unix seconds in [0, maxTimestamp): from the epoch up to,
// but not including, the first second of year 10000. Beyond that a period
// no longer formats as four digits of year and could not be parsed back.
const maxTimestamp = 253402300800 // 10000-01-01T00:00:00Z

var (
	minTime = time.Unix(0, 0).UTC()
	maxTime = time.Unix(maxTimestamp, 0).UTC()
)

// ValidateHost reports whether host can be the host part of a metric key.
// It must be 1 to MaxHostLen bytes of valid UTF-8 with no ':' and no control
// character (a byte below 0x20, or 0x7f). The error wraps ErrBadHost.
func ValidateHost(host string) error {
	return checkName(host, "host", ErrBadHost, MaxHostLen, false)
}

// ValidateMetric reports whether metric can be the metric part of a metric
// key. It must be 1 to MaxMetricLen bytes of valid UTF-8 with no control
// character; unlike a host it may contain ':'. The error wraps ErrBadMetric.
func ValidateMetric(metric string) error {
	return checkName(metric, "metric name", ErrBadMetric, MaxMetricLen, true)
}

// checkName does the work of ValidateHost and ValidateMetric. The loop looks
// at ASCII bytes only and decodes runes only past the first non-ASCII byte,
// because names are nearly always ASCII and are checked on the write path.
func checkName(name, what string, sentinel error, maxLen int, colonOK bool) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty %s", sentinel, what)
	case len(name) > maxLen:
		return fmt.Errorf("%w %s: %d bytes, longer than the limit of %d",
			sentinel, quote(name), len(name), maxLen)
	}
	for i := 0; i < len(name); {
		c := name[i]
		if c < utf8.RuneSelf {
			switch {
			case c < 0x20 || c == 0x7f:
				return fmt.Errorf("%w %s: control character 0x%02x at byte %d",
					sentinel, quote(name), c, i)
			case c == ':' && !colonOK:
				return fmt.Errorf("%w %s: contains ':' at byte %d", sentinel, quote(name), i)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(name[i:])
		if r == utf8.RuneError && size == 1 {
			return fmt.Errorf("%w %s: invalid UTF-8 at byte %d", sentinel, quote(name), i)
		}
		i += size
	}
	return nil
}

// ValidateValue reports whether v can be stored as a sample value: any
// float64 but NaN, +Inf and -Inf. The error wraps ErrBadValue.
func ValidateValue(v float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Errorf("%w %s: not a finite number", ErrBadValue, formatFloat(v))
	}
	return nil
}

// ValidateTimestamp reports whether ts, in Unix seconds, can be the time of
// a sample: finite, not negative (before 1970) and before year 10000. The
// error wraps ErrBadTimestamp.
func ValidateTimestamp(ts float64) error {
	if problem := timestampProblem(ts); problem != "" {
		return fmt.Errorf("%w %s: %s", ErrBadTimestamp, formatFloat(ts), problem)
	}
	return nil
}

// timestampProblem says what is wrong with ts, or returns "".
func timestampProblem(ts float64) string {
	switch {
	case math.IsNaN(ts) || math.IsInf(ts, 0):
		return "not a finite number"
	case ts < 0:
		return "negative, before 1970-01-01"
	case ts >= maxTimestamp:
		return "in year 10000 or later"
	}
	return ""
}

// validateTime is ValidateTimestamp for a time.Time.
func validateTime(t time.Time) error {
	if t.Before(minTime) || !t.Before(maxTime) {
		return fmt.Errorf("%w %s: outside 1970-01-01 to 9999-12-31",
			ErrBadTimestamp, t.UTC().Format(time.RFC3339Nano))
	}
	return nil
}
