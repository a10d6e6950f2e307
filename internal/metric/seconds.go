package metric

import (
	"math"
	"time"
)

// Seconds returns t as Unix seconds with a fraction, the unit of a member's
// timestamp and score. A float64 holds present-day times to a fraction of a
// microsecond. The rounding never carries into the next second (23:59:59.9999999
// stays before midnight), so a point's score and its key's period agree.
func Seconds(t time.Time) float64 {
	whole := float64(t.Unix())
	if sec := whole + float64(t.Nanosecond())/1e9; sec < whole+1 {
		return sec
	}
	return math.Nextafter(whole+1, whole)
}

// Time returns the UTC time of sec Unix seconds, rounded to the microsecond,
// the precision a float64 keeps for present-day times. The rounding never
// carries into the next second, so Time(ts) is always in the same period as
// the whole second floor(ts) and a point's period follows from its score
// alone. sec should be a valid timestamp (ValidateTimestamp); for NaN, or a
// value beyond ±2⁶² seconds, Time returns the zero Time.
func Time(sec float64) time.Time {
	if !(math.Abs(sec) < 1<<62) {
		return time.Time{}
	}
	whole := math.Floor(sec)
	micros := math.Round((sec - whole) * 1e6)
	if micros > 999_999 {
		micros = 999_999
	}
	return time.Unix(int64(whole), int64(micros)*1000).UTC()
}

// SecondsAtOrAfter returns the least timestamp ts for which Time(ts) is at
// or after t: the lowest score a point of a range that starts at t may
// have, since a point reads back at the time Time gives its score.
// Seconds(t) is no such bound: it is the float64 nearest to t, which in
// 2026 may lie 119 ns either side of it, and a score a little below t
// reads back as a time before t.
func SecondsAtOrAfter(t time.Time) float64 {
	first := t.Truncate(time.Microsecond)
	if first.Before(t) {
		first = first.Add(time.Microsecond)
	}
	whole := float64(first.Unix())
	if first.Nanosecond() == 0 {
		// Time never carries into the next second, so no score below
		// the second reads back as its start.
		return whole
	}
	_, at := boundary(whole, math.Nextafter(whole+1, whole), func(ts float64) bool {
		return !Time(ts).Before(first)
	})
	return at
}

// SecondsAtOrBefore returns the greatest timestamp ts for which Time(ts) is
// at or before t: the highest score a point of a range that ends at t may
// have.
func SecondsAtOrBefore(t time.Time) float64 {
	last := t.Truncate(time.Microsecond)
	whole := float64(last.Unix())
	end := math.Nextafter(whole+1, whole) // reads back as the second's last microsecond
	if last.Nanosecond() == 999_999_000 {
		return end
	}
	below, _ := boundary(whole, end, func(ts float64) bool { return Time(ts).After(last) })
	return below
}

// boundary returns the two adjacent float64s between lo and hi where above
// turns true, given that above is false at lo, true at hi, and never turns
// false again between them. Time rounds in two steps, a multiplication and
// math.Round, so its thresholds are found by bisection rather than
// computed: about 70 halvings at most, near 1970 where the float64s are
// densest.
func boundary(lo, hi float64, above func(ts float64) bool) (below, at float64) {
	for {
		mid := lo + (hi-lo)/2
		if mid <= lo || mid >= hi {
			mid = math.Nextafter(lo, hi)
		}
		if mid == hi {
			return lo, hi
		}
		if above(mid) {
			hi = mid
		} else {
			lo = mid
		}
	}
}
