package graphite

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// lineNow is the time a line of timestamp -1 is read at in the tests.
var lineNow = time.Date(2026, 12, 5, 13, 0, 0, 0, time.UTC)

func TestParseLine(t *testing.T) {
	for _, tc := range []struct {
		line  string
		path  string
		value float64
		time  time.Time
	}{
		{"collectd.web1.load.load.shortterm 1.69 1796470439", "collectd.web1.load.load.shortterm", 1.69, time.Unix(1796470439, 0)},
		{"a.b -3 0", "a.b", -3, time.Unix(0, 0)},
		{"  a.b\t1e3   1796470439.25 ", "a.b", 1000, time.Unix(1796470439, 250e6)},
		{"a.b +0.5 1796470439", "a.b", 0.5, time.Unix(1796470439, 0)},
		{"a.b 0e-999 1", "a.b", 0, time.Unix(1, 0)},
		{"a.b 2 -1", "a.b", 2, lineNow},
		{"a.b 2 -1.0", "a.b", 2, lineNow},
	} {
		t.Run(tc.line, func(t *testing.T) {
			path, value, at, err := ParseLine(tc.line, lineNow)
			require.NoError(t, err)
			assert.Equal(t, tc.path, path)
			assert.Equal(t, tc.value, value)
			assert.True(t, tc.time.Equal(at), "time %v, want %v", at, tc.time)
		})
	}
}

func TestParseLineRejects(t *testing.T) {
	for _, tc := range []struct {
		line string
		want error
		text string
	}{
		{"a.b 1", ErrMalformed, "2 fields, want 3"},
		{"a.b 1 2 3", ErrMalformed, "4 fields"},
		{"", ErrMalformed, "0 fields"},
		{"a.b one 1796470439", ErrMalformed, `value "one" is not a number`},
		{"a.b 0x10 1796470439", ErrMalformed, `value "0x10" is not a decimal number`},
		{"a.b 1_000 1796470439", ErrMalformed, "not a decimal number"},
		{"a.b 1e400 1796470439", ErrMalformed, "out of the range of a float64"},
		{"a.b 1e-400 1796470439", ErrMalformed, "out of the range of a float64"},
		{"a.b nan 1796470439", ErrNotFinite, "graphite: value not finite: nan"},
		{"a.b -Inf 1796470439", ErrNotFinite, "-Inf"},
		{"a.b infinity 1796470439", ErrNotFinite, ""},
		{"a.b 1 now", ErrMalformed, `timestamp "now" is not a number`},
		{"a.b 1 N", ErrMalformed, "timestamp"},
		{"a.b 1 -2", ErrBadTimestamp, "federated: bad timestamp -2: negative, before 1970-01-01"},
		{"a.b 1 253402300800", ErrBadTimestamp, "year 10000"},
		{"a.b 1 nan", ErrBadTimestamp, "not a finite number"},
		{"a.b 1 " + strings.Repeat("9", 500), ErrMalformed, "timestamp"},
	} {
		t.Run(tc.line, func(t *testing.T) {
			_, _, _, err := ParseLine(tc.line, lineNow)
			require.ErrorIs(t, err, tc.want)
			assert.Contains(t, err.Error(), tc.text)
		})
	}
}

// FuzzParseLine checks that a line either parses to a point redfed can
// store, which prints back to an equal point, or is refused with one of
// the package's reasons.
func FuzzParseLine(f *testing.F) {
	for _, seed := range []string{
		"collectd.web1.cpu-0.cpu-user 12.5 1796470439",
		"a.b nan 1", "a 1 1.5", "a.b 1e-400 0", "a b c d", "\t a.b  -0 253402300799.999",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, line string) {
		path, value, at, err := ParseLine(line, lineNow)
		if err != nil {
			assert.True(t, errors.Is(err, ErrMalformed) || errors.Is(err, ErrNotFinite) || errors.Is(err, ErrBadTimestamp),
				"error %v wraps none of the reasons", err)
			return
		}
		require.False(t, math.IsNaN(value) || math.IsInf(value, 0), "value %v", value)
		require.NotEmpty(t, path)
		require.NotContains(t, path, " ")
		require.False(t, at.Before(time.Unix(0, 0)), "time %v", at)
		again := path + " " + strconv.FormatFloat(value, 'g', -1, 64) + " " + strconv.FormatInt(at.Unix(), 10)
		path2, value2, at2, err := ParseLine(again, lineNow)
		require.NoError(t, err, again)
		assert.Equal(t, path, path2)
		assert.Equal(t, value, value2)
		assert.Equal(t, at.Unix(), at2.Unix())
	})
}

// Only spaces and tabs separate a line's fields, as the package doc says:
// another space (no-break, ideographic, vertical tab, form feed) stays in
// its field, whose check refuses it, naming it. strings.Fields split there,
// so that "collectd.web\u00a01.load 1 T" was read as four fields.
func TestOnlySpacesAndTabsSeparate(t *testing.T) {
	tmpl, err := Parse(DefaultTemplate)
	require.NoError(t, err)
	for _, tc := range []struct {
		line string
		want error
		text string
	}{
		{"collectd.web\u00a01.load 1 1796470439", ErrUnmapped, "U+00A0"},
		{"collectd.web1.load\u3000x 1 1796470439", ErrUnmapped, "U+3000"},
		{"collectd.web1\v.load 1 1796470439", ErrUnmapped, "U+000B"},
		{"collectd.web1.load 1\f 1796470439", ErrMalformed, `value "1\f" is not a number`},
		{"collectd.web1.load\u00a01 1796470439", ErrMalformed, "2 fields, want 3"},
	} {
		t.Run(tc.line, func(t *testing.T) {
			path, _, _, err := ParseLine(tc.line, lineNow)
			if err == nil {
				_, _, err = tmpl.Map(path)
			}
			require.ErrorIs(t, err, tc.want)
			assert.Contains(t, err.Error(), tc.text)
		})
	}
}
