package main

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/metric"
)

func TestParseRecordLine(t *testing.T) {
	tenAM := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	good := []struct {
		line         string
		host, metric string
		time         time.Time
		value        float64
	}{
		{"web1.sfo cpu.user 1795600800 42", "web1.sfo", "cpu.user", tenAM, 42},
		{"  web1.sfo\tcpu.user   1795600800.25\t-0.5  ", "web1.sfo", "cpu.user", tenAM.Add(250 * time.Millisecond), -0.5},
		{"web1 disk:sda:used 2026-11-25T10:00:00Z 1e6", "web1", "disk:sda:used", tenAM, 1e6},
		{"web1 m 2026-11-25T11:00:00.5+01:00 +3", "web1", "m", tenAM.Add(500 * time.Millisecond), 3},
		{"web1 m 1.7956008e9 .5", "web1", "m", tenAM, 0.5},
		{"web1 m 0 0", "web1", "m", time.Unix(0, 0).UTC(), 0},
		{"héte ünïcode 1795600800 1", "héte", "ünïcode", tenAM, 1},
		{"web1 m 1795600800 1\r", "web1", "m", tenAM, 1},
	}
	for _, tt := range good {
		t.Run(tt.line, func(t *testing.T) {
			host, metricName, ts, v, err := parseRecordLine(tt.line)
			require.NoError(t, err)
			assert.Equal(t, tt.host, host)
			assert.Equal(t, tt.metric, metricName)
			assert.True(t, tt.time.Equal(ts), "time: got %v, want %v", ts, tt.time)
			assert.Equal(t, tt.value, v)
		})
	}

	for _, line := range []string{"", "   \t ", "# a comment", "  #web1 m 1 1", "#"} {
		_, _, _, _, err := parseRecordLine(line)
		assert.ErrorIs(t, err, errNoPoint, "line %q", line)
	}

	bad := []struct {
		line string
		is   error  // a sentinel the error wraps, if any
		want string // what the message must say
	}{
		{"web1 m 1795600800", nil, "3 fields, want 4: HOST METRIC TIMESTAMP VALUE"},
		{"web1 m 1795600800 1 2", nil, "5 fields, want 4"},
		{"web1", nil, "1 fields, want 4"},
		{"web:1 m 1795600800 1", federated.ErrBadHost, `bad host "web:1": contains ':' at byte 3`},
		{"web\x01 m 1795600800 1", federated.ErrBadHost, "control character U+0001 at byte 3"},
		{"web1 m\xff 1795600800 1", federated.ErrBadMetric, "invalid UTF-8"},
		{"web1 m 1795600800 abc", nil, `value "abc" is not a number`},
		{"web1 m 1795600800 NaN", federated.ErrBadValue, "bad value NaN: not a finite number"},
		{"web1 m 1795600800 -Inf", federated.ErrBadValue, "bad value -Inf"},
		{"web1 m 1795600800 1e400", nil, `value "1e400" is out of the range of a float64`},
		{"web1 m 1795600800 1e-400", nil, `value "1e-400" is out of the range of a float64: too small, it is not 0 but would be read as 0`},
		{"web1 m 1795600800 -1e-400", nil, `value "-1e-400" is out of the range of a float64: too small`},
		{"web1 m 1e-400 1", nil, `timestamp "1e-400" is out of the range of a float64: too small`},
		{"web1 m 0." + strings.Repeat("0", 400) + "1 1", nil, "is out of the range of a float64: too small"},
		{"web\u200b1 m 1795600800 1", federated.ErrBadHost, `bad host "web\u200b1": invisible format character U+200B at byte 3`},
		{"web1 cpu\u202eresu 1795600800 1", federated.ErrBadMetric, "invisible format character U+202E at byte 3"},
		{"web1 \u2066m 1795600800 1", federated.ErrBadMetric, "invisible format character U+2066 at byte 0"},
		{"web1 m 1795600800 0x1p4", nil, `value "0x1p4" is not a decimal number`},
		{"web1 m 1795600800 1_000", nil, `value "1_000" is not a decimal number`},
		{"web1 m -1 1", federated.ErrBadTimestamp, "bad timestamp -1: negative, before 1970-01-01"},
		{"web1 m 253402300800 1", federated.ErrBadTimestamp, "in year 10000 or later"},
		{"web1 m nan 1", federated.ErrBadTimestamp, "bad timestamp NaN"},
		{"web1 m 1.2.3 1", nil, `timestamp "1.2.3" is not a number`},
		{"web1 m yesterday 1", nil, `timestamp "yesterday": want Unix seconds or an RFC 3339 time`},
		{"web1 m 2026-11-25 1", nil, `timestamp "2026-11-25": want Unix seconds or an RFC 3339 time`},
		{"web1 m 2026-13-01T00:00:00Z 1", nil, `timestamp "2026-13-01T00:00:00Z": want`},
		{"web1 m 1960-01-01T00:00:00Z 1", federated.ErrBadTimestamp, "before 1970"},
		// An RFC 3339 time out of range is named as written, not in
		// seconds ("bad timestamp 2.53402304399e+11").
		{"web1 m 9999-12-31T23:59:59-01:00 1", federated.ErrBadTimestamp,
			`bad timestamp "9999-12-31T23:59:59-01:00": in year 10000 or later`},
		{"web1 m 1969-12-31T23:59:59Z 1", federated.ErrBadTimestamp, `bad timestamp "1969-12-31T23:59:59Z": before 1970-01-01`},
		// Only spaces and tabs separate fields: another space stays in its
		// field, which the name checks refuse (strings.Fields split there).
		{"web1\u00a0m cpu 1795600800 1", federated.ErrBadHost, "non-ASCII space U+00A0 at byte 4"},
		{"web1 cpu\u3000user 1795600800 1", federated.ErrBadMetric, "non-ASCII space U+3000 at byte 3"},
		{"web1\v m 1795600800 1", federated.ErrBadHost, "control character U+000B at byte 4"},
		{"web1 m\f 1795600800 1", federated.ErrBadMetric, "control character U+000C at byte 1"},
		{"web1 m 1795600800 1\u00a0", nil, `value "1\u00a0" is not a number`},
	}
	for _, tt := range bad {
		t.Run(tt.line, func(t *testing.T) {
			_, _, _, _, err := parseRecordLine(tt.line)
			require.Error(t, err)
			assert.NotErrorIs(t, err, errNoPoint)
			if tt.is != nil {
				assert.ErrorIs(t, err, tt.is)
			}
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

// FuzzParseRecordLine checks that any line either fails or gives a point
// that the library accepts and that parses back the same from its own line.
func FuzzParseRecordLine(f *testing.F) {
	for _, seed := range []string{
		"web1.sfo cpu.user 1795600800 42",
		"web1 disk:sda:used 2026-11-25T11:00:00.5+01:00 -1e-9",
		"# comment", "", "web1 m 1795600800.123456 NaN", "a b 0x1p4 1_0",
		"web1 m 1e-400 -1e-400", "web\u200b1 cpu\u202e 1795600800 1",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, line string) {
		host, metricName, ts, v, err := parseRecordLine(line)
		if err != nil {
			return
		}
		if _, err := federated.FormatMember(ts, v); err != nil {
			t.Fatalf("parseRecordLine(%q) gave a point the library refuses: %v", line, err)
		}
		require.NoError(t, metric.ValidateHost(host))
		require.NoError(t, metric.ValidateMetric(metricName))
		again := host + " " + metricName + " " + ts.UTC().Format(time.RFC3339Nano) + " " + strconv.FormatFloat(v, 'g', -1, 64)
		h2, m2, ts2, v2, err := parseRecordLine(again)
		if err != nil || h2 != host || m2 != metricName || !ts2.Equal(ts) || v2 != v {
			t.Fatalf("%q parsed to %q %q %v %v, and its own line %q to %q %q %v %v (%v)",
				line, host, metricName, ts, v, again, h2, m2, ts2, v2, err)
		}
	})
}

func TestParseTimeArg(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		arg  string
		want time.Time
	}{
		{"now", now},
		{"2026-11-25T10:00:00Z", now.Add(-2 * time.Hour)},
		{"2026-11-25T10:00:00+01:00", now.Add(-3 * time.Hour)},
		{"1795600800", now.Add(-2 * time.Hour)},
		{"1795600800.5", now.Add(-2*time.Hour + 500*time.Millisecond)},
		{"2h", now.Add(-2 * time.Hour)},
		{"-2h", now.Add(-2 * time.Hour)},
		{"90m", now.Add(-90 * time.Minute)},
		{"1h30m", now.Add(-90 * time.Minute)},
		{"7d", now.Add(-7 * 24 * time.Hour)},
		{"-1d", now.Add(-24 * time.Hour)},
		{"0s", now},
		{"0e-400", time.Unix(0, 0)}, // zero, written small: not an underflow
	}
	for _, tt := range tests {
		got, err := parseTimeArg(tt.arg, now)
		if assert.NoError(t, err, tt.arg) {
			assert.True(t, tt.want.Equal(got), "%s: got %v, want %v", tt.arg, got, tt.want)
		}
	}

	for _, tt := range []struct{ arg, want string }{
		{"", "want"},
		{"yesterday", `"yesterday": want "now", RFC 3339`},
		{"+2h", "want"},
		{"--2h", "want"},
		{"2x", "want"},
		{"d", "want"},
		{"1.5d", "want"},
		{"1.2.3", `"1.2.3" is not a number`},
		{"1e-400", `"1e-400" is out of the range of a float64: too small`},
		{"-1e-400", `"-1e-400" is out of the range of a float64: too small`},
		{"0." + strings.Repeat("0", 400) + "1", "is out of the range of a float64: too small"},
		{"-5", "bad timestamp -5"},
		{"1000000h", "bad timestamp"}, // before 1970
	} {
		_, err := parseTimeArg(tt.arg, now)
		if assert.Error(t, err, tt.arg) {
			assert.Contains(t, err.Error(), tt.want, tt.arg)
		}
	}
	_, err := parseTimeArg("-5", now)
	assert.True(t, errors.Is(err, federated.ErrBadTimestamp), "got %v, want ErrBadTimestamp", err)
}

func TestFormatValue(t *testing.T) {
	for v, want := range map[float64]string{
		0: "0", 42: "42", -0.5: "-0.5", 1234567: "1234567", 0.000001: "0.000001",
		1e-7: "1e-07", 1e15: "1e+15", 123456789012345: "123456789012345", 1.0 / 3: "0.3333333333333333",
	} {
		assert.Equal(t, want, formatValue(v), "formatValue(%v)", v)
	}
}

// record reports a line with another space than ' ' or '\t' in a name, or
// an RFC 3339 time out of range, by its line number, in the words the
// user wrote, and writes the other lines.
func TestRecordReportsOddSpacesAndTimesByLine(t *testing.T) {
	cfg, _ := startFederation(t, 1)
	in := "web1 m 1795600800 1\n" +
		"web1\u00a0m cpu 1795600800 2\n" +
		"web1 m 9999-12-31T23:59:59-01:00 3\n" +
		"web1 m\u3000x 1795600800 4\n"
	code, _, errOut := runCLI(t, in, "record", "--config", cfg)
	assert.Equal(t, 1, code, errOut)
	assert.Contains(t, errOut, `line 2: federated: bad host "web1\u00a0m": non-ASCII space U+00A0 at byte 4`)
	assert.Contains(t, errOut, `line 3: federated: bad timestamp "9999-12-31T23:59:59-01:00": in year 10000 or later`)
	assert.Contains(t, errOut, "line 4: federated: bad metric")
	assert.NotContains(t, errOut, "e+11")
}
