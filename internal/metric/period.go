package metric

import (
	"fmt"
	"time"
)

// Period is the length of the time periods that metric keys are cut into:
// Day, the default and the zero value, or Hour. Keys of one period share its
// first component, so retention can drop a period key by key.
type Period struct {
	hourly bool
}

// The two periods. Day formats as "2006-01-02", Hour as "2006-01-02T15".
var (
	Day  = Period{}
	Hour = Period{hourly: true}
)

// Layouts of a period start, in time package form. The lengths of the
// formatted strings are fixed for years 1970 to 9999.
const (
	dayLayout  = "2006-01-02"
	hourLayout = "2006-01-02T15"
)

// ParsePeriod returns the period named s: "day" or "24h" for Day, "hour" or
// "1h" for Hour. The empty string means the default, Day, so a zero
// configuration field needs no special case. Anything else is an error
// wrapping ErrBadPeriod.
func ParsePeriod(s string) (Period, error) {
	switch s {
	case "", "day", "24h":
		return Day, nil
	case "hour", "1h":
		return Hour, nil
	}
	return Day, fmt.Errorf(`%w %s: want "day" or "hour"`, ErrBadPeriod, quote(s))
}

// String returns "day" or "hour", names that ParsePeriod accepts.
func (p Period) String() string {
	if p.hourly {
		return "hour"
	}
	return "day"
}

// MarshalText returns p.String(), so a Period can be a field of a YAML or
// JSON configuration.
func (p Period) MarshalText() ([]byte, error) {
	return []byte(p.String()), nil
}

// UnmarshalText sets p to ParsePeriod(text).
func (p *Period) UnmarshalText(text []byte) error {
	parsed, err := ParsePeriod(string(text))
	if err != nil {
		return err
	}
	*p = parsed
	return nil
}

// Duration returns the length of the period: 24h or 1h. A UTC day is always
// 24 hours long; Go's time has no leap seconds.
func (p Period) Duration() time.Duration {
	if p.hourly {
		return time.Hour
	}
	return 24 * time.Hour
}

// Start returns the UTC start of the period that contains t.
func (p Period) Start(t time.Time) time.Time {
	// Truncate counts from the zero Time, 0001-01-01T00:00:00 UTC, which
	// is the start of a day and of an hour, so this lands on UTC midnight
	// or the UTC hour whatever t's location. It also drops any monotonic
	// clock reading.
	return t.UTC().Truncate(p.Duration())
}

// Next returns the start of the period after the one that contains start.
func (p Period) Next(start time.Time) time.Time {
	return p.Start(start).Add(p.Duration())
}

// Format returns the period that contains start as it appears in a metric
// key: "2026-11-25" for a Day, "2026-11-25T13" for an Hour.
func (p Period) Format(start time.Time) string {
	var buf [len(hourLayout)]byte
	return string(p.AppendFormat(buf[:0], start))
}

// AppendFormat appends p.Format(start) to dst. It does not allocate when dst
// has room.
func (p Period) AppendFormat(dst []byte, start time.Time) []byte {
	t := start.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		// Out of the range a key may have; print what time would, so
		// AppendKey never fails, and leave the rejection to Parse.
		if p.hourly {
			return t.AppendFormat(dst, hourLayout)
		}
		return t.AppendFormat(dst, dayLayout)
	}
	dst = append(dst,
		byte('0'+year/1000), byte('0'+year/100%10), byte('0'+year/10%10), byte('0'+year%10), '-',
		byte('0'+month/10), byte('0'+month%10), '-',
		byte('0'+day/10), byte('0'+day%10))
	if p.hourly {
		hour := t.Hour()
		dst = append(dst, 'T', byte('0'+hour/10), byte('0'+hour%10))
	}
	return dst
}

// Parse is the reverse of Format: it returns the UTC start of the period
// that s names. It is strict, so that Format(Parse(s)) == s: exactly
// "YYYY-MM-DD" for a Day, "YYYY-MM-DDTHH" for an Hour, ASCII digits, a real
// date, and a year from 1970 to 9999 (the years a valid timestamp can be
// in). The error wraps ErrBadPeriod.
func (p Period) Parse(s string) (time.Time, error) {
	layout := dayLayout
	if p.hourly {
		layout = hourLayout
	}
	fail := func(problem string) (time.Time, error) {
		return time.Time{}, fmt.Errorf("%w %s: %s", ErrBadPeriod, quote(s), problem)
	}
	if len(s) != len(layout) {
		return fail(fmt.Sprintf("want a %s like %q", p, layout))
	}
	for i := 0; i < len(s); i++ {
		switch layout[i] {
		case '-', 'T':
			if s[i] != layout[i] {
				return fail(fmt.Sprintf("want a %s like %q", p, layout))
			}
		default:
			if s[i] < '0' || s[i] > '9' {
				return fail(fmt.Sprintf("want a %s like %q", p, layout))
			}
		}
	}
	year := digits(s[0:4])
	month := digits(s[5:7])
	day := digits(s[8:10])
	hour := 0
	if p.hourly {
		hour = digits(s[11:13])
	}
	switch {
	case year < 1970:
		return fail("year before 1970")
	case month < 1 || month > 12:
		return fail("month out of range")
	case day < 1 || day > daysIn(time.Month(month), year):
		return fail("day out of range")
	case hour > 23:
		return fail("hour out of range")
	}
	return time.Date(year, time.Month(month), day, hour, 0, 0, 0, time.UTC), nil
}

// PeriodShaped reports whether s has the shape of a period string of
// either length, whether or not it names a real date: four ASCII digits,
// '-', two, '-', two, and for an hour 'T' and two more ("2026-11-25",
// "2026-11-25T13", "2026-13-45"). Retention takes a key whose text before
// its first ':' has this shape for metric data, so no other key the system
// keeps may begin that way.
func PeriodShaped(s string) bool {
	if len(s) != len(dayLayout) && len(s) != len(hourLayout) {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch hourLayout[i] {
		case '-', 'T':
			if s[i] != hourLayout[i] {
				return false
			}
		default:
			if s[i] < '0' || s[i] > '9' {
				return false
			}
		}
	}
	return true
}

// digits returns the value of s, which holds only ASCII digits.
func digits(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n
}

// daysIn returns the number of days in month of year.
func daysIn(month time.Month, year int) int {
	// Day 0 of the next month is the last day of this one.
	return time.Date(year, month+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// Periods returns the start of every period that the closed interval
// [from, to] touches, in ascending order: the period of from, the period of
// to, and every one between. It returns nil when to is before from. The
// slice has one entry per period, so an hourly range of years is long.
func (p Period) Periods(from, to time.Time) []time.Time {
	if to.Before(from) {
		return nil
	}
	first, last := p.Start(from), p.Start(to)
	// Sub saturates after 292 years; the capacity is then only a hint.
	starts := make([]time.Time, 0, int(last.Sub(first)/p.Duration())+1)
	for s := first; !s.After(last); s = s.Add(p.Duration()) {
		starts = append(starts, s)
	}
	return starts
}

// Count returns the number of periods that the closed interval [from, to]
// touches, len(p.Periods(from, to)), without building the list: 0 when to
// is before from. It counts in Unix seconds, which hold any two valid
// timestamps apart, where a time.Duration stops at 292 years.
func (p Period) Count(from, to time.Time) int64 {
	if to.Before(from) {
		return 0
	}
	length := int64(p.Duration() / time.Second)
	return (p.Start(to).Unix()-p.Start(from).Unix())/length + 1
}
