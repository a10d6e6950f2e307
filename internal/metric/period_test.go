package metric

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// date returns a UTC time; the arguments after the hour are optional.
func date(year int, month time.Month, day, hour int, minSecNsec ...int) time.Time {
	rest := append(minSecNsec, 0, 0, 0)
	return time.Date(year, month, day, hour, rest[0], rest[1], rest[2], time.UTC)
}

func TestParsePeriod(t *testing.T) {
	tests := []struct {
		in   string
		want Period
	}{
		{"", Day},
		{"day", Day},
		{"24h", Day},
		{"hour", Hour},
		{"1h", Hour},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParsePeriod(tt.in)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got, "ParsePeriod(%q): got %v, want %v", tt.in, got, tt.want)
		})
	}
	for _, bad := range []string{"Day", "HOUR", "week", "60m", "1d", " day", "day\n"} {
		t.Run("reject "+bad, func(t *testing.T) {
			_, err := ParsePeriod(bad)
			require.ErrorIs(t, err, ErrBadPeriod, "ParsePeriod(%q)", bad)
			assert.Contains(t, err.Error(), quote(bad), "error should quote the input")
		})
	}
}

func TestPeriodStringAndText(t *testing.T) {
	var zero Period
	assert.Equal(t, Day, zero, "the zero Period: got %v, want Day", zero)
	for _, p := range []Period{Day, Hour} {
		t.Run(p.String(), func(t *testing.T) {
			back, err := ParsePeriod(p.String())
			require.NoError(t, err)
			assert.Equal(t, p, back, "ParsePeriod(String()): got %v, want %v", back, p)

			var cfg struct{ Period Period }
			cfg.Period = p
			text, err := json.Marshal(cfg)
			require.NoError(t, err)
			assert.JSONEq(t, `{"Period":"`+p.String()+`"}`, string(text))
			cfg.Period = Period{}
			require.NoError(t, json.Unmarshal(text, &cfg))
			assert.Equal(t, p, cfg.Period, "JSON round trip: got %v, want %v", cfg.Period, p)
		})
	}
	var p Period
	err := p.UnmarshalText([]byte("fortnight"))
	assert.ErrorIs(t, err, ErrBadPeriod)
}

func TestStartNext(t *testing.T) {
	plus5 := time.FixedZone("UTC+5", 5*3600)
	now := time.Now() // with a monotonic reading, which UTC() leaves out
	hour := now.UTC().Truncate(time.Hour)
	tests := []struct {
		name      string
		p         Period
		in        time.Time
		wantStart time.Time
		wantNext  time.Time
	}{
		{"day midday", Day, date(2026, 11, 25, 13, 45, 7, 123), date(2026, 11, 25, 0), date(2026, 11, 26, 0)},
		{"day at start", Day, date(2026, 11, 25, 0), date(2026, 11, 25, 0), date(2026, 11, 26, 0)},
		{"day last ns", Day, date(2026, 11, 25, 23, 59, 59, 999999999), date(2026, 11, 25, 0), date(2026, 11, 26, 0)},
		{"day year end", Day, date(2026, 12, 31, 23, 30), date(2026, 12, 31, 0), date(2027, 1, 1, 0)},
		{"day leap", Day, date(2028, 2, 28, 12), date(2028, 2, 28, 0), date(2028, 2, 29, 0)},
		{"day other zone", Day, time.Date(2026, 11, 26, 2, 0, 0, 0, plus5), date(2026, 11, 25, 0), date(2026, 11, 26, 0)},
		{"day epoch", Day, time.Unix(0, 0), date(1970, 1, 1, 0), date(1970, 1, 2, 0)},
		{"hour", Hour, date(2026, 11, 25, 13, 45, 7), date(2026, 11, 25, 13), date(2026, 11, 25, 14)},
		{"hour at start", Hour, date(2026, 11, 25, 13), date(2026, 11, 25, 13), date(2026, 11, 25, 14)},
		{"hour day end", Hour, date(2026, 11, 25, 23, 59), date(2026, 11, 25, 23), date(2026, 11, 26, 0)},
		{"hour other zone", Hour, time.Date(2026, 11, 26, 2, 30, 0, 0, plus5), date(2026, 11, 25, 21), date(2026, 11, 25, 22)},
		{"hour with monotonic", Hour, now, hour, hour.Add(time.Hour)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := tt.p.Start(tt.in)
			assert.Equal(t, tt.wantStart, start, "Start(%v): got %v, want %v", tt.in, start, tt.wantStart)
			assert.Equal(t, time.UTC, start.Location(), "Start should be in UTC")
			next := tt.p.Next(start)
			assert.Equal(t, tt.wantNext, next, "Next(%v): got %v, want %v", start, next, tt.wantNext)
			assert.Equal(t, tt.wantNext, tt.p.Next(tt.in), "Next of a time inside the period")
		})
	}
}

func TestFormatParseRoundTrip(t *testing.T) {
	tests := []struct {
		p    Period
		in   time.Time
		want string
	}{
		{Day, date(2026, 11, 25, 13, 5), "2026-11-25"},
		{Day, date(2026, 11, 25, 23, 59, 59, 999999999), "2026-11-25"},
		{Day, date(2026, 11, 26, 0), "2026-11-26"},
		{Day, date(2026, 12, 31, 23), "2026-12-31"},
		{Day, date(2027, 1, 1, 0), "2027-01-01"},
		{Day, date(2028, 2, 29, 0), "2028-02-29"},
		{Day, date(1970, 1, 1, 0), "1970-01-01"},
		{Day, date(9999, 12, 31, 23, 59, 59), "9999-12-31"},
		{Day, time.Date(2026, 11, 26, 1, 0, 0, 0, time.FixedZone("UTC+2", 7200)), "2026-11-25"},
		{Hour, date(2026, 11, 25, 13, 5), "2026-11-25T13"},
		{Hour, date(2026, 11, 25, 13, 59, 59, 999999999), "2026-11-25T13"},
		{Hour, date(2026, 11, 25, 14), "2026-11-25T14"},
		{Hour, date(2026, 11, 25, 0), "2026-11-25T00"},
		{Hour, date(2026, 11, 25, 23, 30), "2026-11-25T23"},
		{Hour, date(2026, 12, 31, 23, 30), "2026-12-31T23"},
		{Hour, date(2027, 1, 1, 0, 30), "2027-01-01T00"},
		{Hour, date(9999, 12, 31, 23, 59), "9999-12-31T23"},
	}
	for _, tt := range tests {
		t.Run(tt.p.String()+" "+tt.want, func(t *testing.T) {
			got := tt.p.Format(tt.in)
			assert.Equal(t, tt.want, got, "Format(%v): got %q, want %q", tt.in, got, tt.want)
			layout := map[Period]string{Day: dayLayout, Hour: hourLayout}[tt.p]
			assert.Equal(t, tt.in.UTC().Format(layout), got, "should match the time package's formatting in UTC")
			back, err := tt.p.Parse(got)
			require.NoError(t, err)
			want := tt.p.Start(tt.in)
			assert.Equal(t, want, back, "Parse(%q): got %v, want %v", got, back, want)
		})
	}
}

func TestFormatOutOfRangeYears(t *testing.T) {
	// AppendKey validates nothing, so Format must not panic or print
	// garbage for years a key may not have; Parse then refuses them.
	tests := []struct {
		in   time.Time
		want string
	}{
		{date(10000, 1, 1, 5), "10000-01-01"},
		{date(-1, 3, 4, 5), "-0001-03-04"},
		{date(1969, 12, 31, 5), "1969-12-31"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			got := Day.Format(tt.in)
			assert.Equal(t, tt.want, got, "Format: got %q, want %q", got, tt.want)
			_, err := Day.Parse(got)
			assert.ErrorIs(t, err, ErrBadPeriod, "Parse(%q) should fail", got)
		})
	}
}

func TestParseRejects(t *testing.T) {
	tests := []struct {
		p   Period
		in  string
		why string // a word the error must contain
	}{
		{Day, "", "like"},
		{Day, "2026-11-2", "like"},
		{Day, "2026-11-255", "like"},
		{Day, "2026-11-25T13", "like"},
		{Day, "2026/11/25", "like"},
		{Day, "2026-1-125", "like"},
		{Day, "+026-11-25", "like"},
		{Day, "2026-11-2a", "like"},
		{Day, "２０２６-11-25", "like"},
		{Day, " 2026-1-25", "like"},
		{Day, "2026-13-01", "month"},
		{Day, "2026-00-01", "month"},
		{Day, "2026-11-00", "day"},
		{Day, "2026-11-31", "day"},
		{Day, "2026-02-29", "day"},
		{Day, "2100-02-29", "day"},
		{Day, "1969-12-31", "1970"},
		{Day, "0000-01-01", "1970"},
		{Hour, "2026-11-25", "like"},
		{Hour, "2026-11-25 13", "like"},
		{Hour, "2026-11-25t13", "like"},
		{Hour, "2026-11-25T1", "like"},
		{Hour, "2026-11-25T24", "hour"},
		{Hour, "2026-11-25T99", "hour"},
		{Hour, "2026-02-30T00", "day"},
	}
	for _, tt := range tests {
		t.Run(tt.p.String()+" "+tt.in, func(t *testing.T) {
			got, err := tt.p.Parse(tt.in)
			require.ErrorIs(t, err, ErrBadPeriod, "Parse(%q): got %v, want an error", tt.in, got)
			assert.Contains(t, err.Error(), quote(tt.in), "error should quote the input")
			assert.Contains(t, err.Error(), tt.why, "error should say what is wrong")
		})
	}
}

func TestPeriods(t *testing.T) {
	tests := []struct {
		name     string
		p        Period
		from, to time.Time
		want     []time.Time
	}{
		{"three days", Day, date(2026, 11, 25, 22, 10), date(2026, 11, 27, 1, 5),
			[]time.Time{date(2026, 11, 25, 0), date(2026, 11, 26, 0), date(2026, 11, 27, 0)}},
		{"three days across a month", Day, date(2026, 11, 30, 23, 59), date(2026, 12, 2, 0),
			[]time.Time{date(2026, 11, 30, 0), date(2026, 12, 1, 0), date(2026, 12, 2, 0)}},
		{"inside one day", Day, date(2026, 11, 25, 1), date(2026, 11, 25, 23),
			[]time.Time{date(2026, 11, 25, 0)}},
		{"one instant", Day, date(2026, 11, 25, 1), date(2026, 11, 25, 1),
			[]time.Time{date(2026, 11, 25, 0)}},
		{"to on a boundary is included", Day, date(2026, 11, 25, 12), date(2026, 11, 26, 0),
			[]time.Time{date(2026, 11, 25, 0), date(2026, 11, 26, 0)}},
		{"to just before a boundary", Day, date(2026, 11, 25, 12), date(2026, 11, 25, 23, 59, 59, 999999999),
			[]time.Time{date(2026, 11, 25, 0)}},
		{"hours across midnight", Hour, date(2026, 11, 25, 22, 30), date(2026, 11, 26, 1, 0, 0, 1),
			[]time.Time{date(2026, 11, 25, 22), date(2026, 11, 25, 23), date(2026, 11, 26, 0), date(2026, 11, 26, 1)}},
		{"hours, ends on a boundary", Hour, date(2026, 11, 25, 12, 59), date(2026, 11, 25, 14),
			[]time.Time{date(2026, 11, 25, 12), date(2026, 11, 25, 13), date(2026, 11, 25, 14)}},
		{"inside one hour", Hour, date(2026, 11, 25, 12, 1), date(2026, 11, 25, 12, 59),
			[]time.Time{date(2026, 11, 25, 12)}},
		{"other zones", Hour, time.Date(2026, 11, 25, 14, 30, 0, 0, time.FixedZone("UTC+2", 7200)),
			time.Date(2026, 11, 25, 8, 30, 0, 0, time.FixedZone("UTC-5", -5*3600)),
			[]time.Time{date(2026, 11, 25, 12), date(2026, 11, 25, 13)}},
		{"to before from", Day, date(2026, 11, 26, 0), date(2026, 11, 25, 0), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.p.Periods(tt.from, tt.to)
			assert.Equal(t, tt.want, got, "Periods(%v, %v): got %v, want %v", tt.from, tt.to, got, tt.want)
			n := tt.p.Count(tt.from, tt.to)
			assert.Equal(t, int64(len(tt.want)), n, "Count(%v, %v): got %d, want %d", tt.from, tt.to, n, len(tt.want))
		})
	}
}

func TestPeriodsLongRange(t *testing.T) {
	from, to := date(2020, 1, 1, 0), date(2020, 12, 31, 23, 59)
	got := Hour.Periods(from, to)
	require.Len(t, got, 366*24, "hours in 2020: got %d, want %d", len(got), 366*24)
	for i := 1; i < len(got); i++ {
		if got[i].Sub(got[i-1]) != time.Hour {
			t.Fatalf("Periods()[%d] = %v after %v: want consecutive hours", i, got[i], got[i-1])
		}
	}
	days := Day.Periods(from, to)
	assert.Len(t, days, 366, "days in 2020: got %d, want 366", len(days))
	for _, d := range days {
		if !strings.HasPrefix(Day.Format(d), "2020-") {
			t.Fatalf("day %v outside 2020", d)
		}
	}
}

func TestParsePeriodErrorWraps(t *testing.T) {
	_, err := ParsePeriod("week")
	assert.True(t, errors.Is(err, ErrBadPeriod), "got %v, want an error wrapping ErrBadPeriod", err)
	assert.True(t, strings.HasPrefix(err.Error(), "federated: "), "got %q, want the federated: prefix", err)
}

func TestPeriodShaped(t *testing.T) {
	tests := []struct {
		s    string
		want bool
	}{
		{"2026-11-25", true},
		{"2026-11-25T13", true},
		{"2026-13-45", true}, // no real date, but retention's pattern takes it
		{"0000-00-00T99", true},
		{"2026-11-2", false},
		{"2026-11-25T1", false},
		{"2026-11-25T133", false},
		{"2026-11-25 13", false},
		{"2026/11/25", false},
		{"２０２６-11-25", false},
		{"journal", false},
		{"", false},
	}
	for _, tt := range tests {
		t.Run(tt.s, func(t *testing.T) {
			got := PeriodShaped(tt.s)
			assert.Equal(t, tt.want, got, "PeriodShaped(%q): got %v, want %v", tt.s, got, tt.want)
		})
	}
	// Everything a Period formats has the shape.
	for _, p := range []Period{Day, Hour} {
		s := p.Format(date(2026, 11, 25, 13))
		assert.True(t, PeriodShaped(s), "PeriodShaped(%q) of %v: got false, want true", s, p)
	}
}

// Count holds for ranges longer than a time.Duration, 292 years.
func TestCountOfEveryValidYear(t *testing.T) {
	from, to := date(1970, 1, 1, 0), date(9999, 12, 31, 23, 59, 59, 999_999_999)
	assert.Equal(t, int64(2_932_897), Day.Count(from, to), "days from 1970 to 9999")
	assert.Equal(t, int64(2_932_897*24), Hour.Count(from, to), "hours from 1970 to 9999")
}
