package metric

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// The last nanosecond of a day stays in that day: its score's whole second
// is the day's last.
func TestSecondsNeverCarriesIntoTheNextSecond(t *testing.T) {
	for _, at := range []time.Time{
		time.Date(2026, 11, 25, 23, 59, 59, 999_999_999, time.UTC),
		time.Date(2026, 11, 25, 23, 59, 59, 999_999_900, time.UTC),
		time.Unix(-1, 999_999_999),
	} {
		sec := Seconds(at)
		assert.Equal(t, float64(at.Unix()), math.Floor(sec), "Seconds(%v) = %v", at, sec)
		assert.Equal(t, at.Truncate(time.Second).Unix(), Time(sec).Unix(), "Time(Seconds(%v))", at)
	}
}

func TestSecondsTime(t *testing.T) {
	tests := []struct {
		sec  float64
		want time.Time
	}{
		{0, date(1970, 1, 1, 0)},
		{1290000000, time.Unix(1290000000, 0).UTC()},
		{1290000000.25, time.Unix(1290000000, 250_000_000).UTC()},
		{1764075600.123456, time.Unix(1764075600, 123_456_000).UTC()},
		{1764075600.5, time.Unix(1764075600, 500_000_000).UTC()},
		{253402300799, date(9999, 12, 31, 23, 59, 59)},
	}
	for _, tt := range tests {
		t.Run(tt.want.Format(time.RFC3339Nano), func(t *testing.T) {
			got := Time(tt.sec)
			assert.Equal(t, tt.want, got, "Time(%v): got %v, want %v", tt.sec, got, tt.want)
			assert.Equal(t, tt.sec, Seconds(got), "Seconds(Time(%v))", tt.sec)
		})
	}
}

func TestTimeRoundTripsMicroseconds(t *testing.T) {
	base := time.Unix(1764075600, 0).UTC()
	for _, us := range []int64{0, 1, 7, 123456, 499999, 500000, 999998, 999999} {
		want := base.Add(time.Duration(us) * time.Microsecond)
		got := Time(Seconds(want))
		assert.Equal(t, want, got, "Time(Seconds(%v)): got %v", want, got)
	}
}

func TestTimeStaysInItsSecond(t *testing.T) {
	// The largest float64 below midnight rounds up to midnight at
	// microsecond precision; Time must keep it in the day it belongs to.
	midnight := float64(date(2026, 11, 26, 0).Unix())
	before := math.Nextafter(midnight, 0)
	got := Time(before)
	assert.Equal(t, date(2026, 11, 25, 23, 59, 59, 999_999_000), got, "Time(%v): got %v", before, got)
	assert.Equal(t, "2026-11-25", Day.Format(got))
}

func TestTimeOfNonsense(t *testing.T) {
	for _, sec := range []float64{math.NaN(), math.Inf(1), math.Inf(-1), 1e300, -1e300} {
		assert.True(t, Time(sec).IsZero(), "Time(%v): got %v, want the zero Time", sec, Time(sec))
	}
	assert.Equal(t, time.Unix(-2, 500_000_000).UTC(), Time(-1.5), "negative seconds")
}

// The bounds of a range are the scores at its ends: every score between
// them reads back inside the range, and the next one out reads back
// outside it.
func TestSecondsAtOrAfterAndBeforeAreTheRangesEnds(t *testing.T) {
	x := date(2026, 3, 1, 0)
	for _, at := range []time.Time{
		x,
		x.Add(100 * time.Nanosecond),
		x.Add(600 * time.Nanosecond),
		x.Add(time.Microsecond),
		x.Add(500*time.Millisecond - 100*time.Nanosecond),
		x.Add(500 * time.Millisecond),
		x.Add(500*time.Millisecond + 100*time.Nanosecond),
		x.Add(time.Second - time.Microsecond),
		x.Add(time.Second - time.Nanosecond),
		time.Unix(0, 0),
		time.Unix(0, 1),
		time.Unix(0, 999),
		time.Unix(0, 499_999),
		time.Unix(1, 500),
		date(9999, 12, 31, 23, 59, 59, 999_999_999),
	} {
		lo := SecondsAtOrAfter(at)
		assert.False(t, Time(lo).Before(at), "SecondsAtOrAfter(%v) = %v reads back as %v, before it", at, lo, Time(lo))
		if below := math.Nextafter(lo, math.Inf(-1)); below >= 0 {
			assert.True(t, Time(below).Before(at), "SecondsAtOrAfter(%v) = %v: %v below it reads back as %v, not before it",
				at, lo, below, Time(below))
		}
		hi := SecondsAtOrBefore(at)
		assert.False(t, Time(hi).After(at), "SecondsAtOrBefore(%v) = %v reads back as %v, after it", at, hi, Time(hi))
		above := math.Nextafter(hi, math.Inf(1))
		assert.True(t, Time(above).After(at), "SecondsAtOrBefore(%v) = %v: %v above it reads back as %v, not after it",
			at, hi, above, Time(above))
	}
}
