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
