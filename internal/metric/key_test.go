package metric

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestKeyRoundTrip(t *testing.T) {
	tests := []struct {
		p      Period
		t      time.Time
		host   string
		metric string
		want   string
	}{
		{Day, date(2026, 11, 25, 13, 5), "web1.sfo", "cpu.user", "2026-11-25:web1.sfo:cpu.user"},
		{Day, date(2026, 11, 25, 23, 59, 59, 999999999), "web1.sfo", "cpu.user", "2026-11-25:web1.sfo:cpu.user"},
		{Day, date(2026, 11, 26, 0), "web1.sfo", "cpu.user", "2026-11-26:web1.sfo:cpu.user"},
		{Day, date(2026, 12, 31, 23, 59), "db1", "disk:/var:used", "2026-12-31:db1:disk:/var:used"},
		{Day, date(2027, 1, 1, 0), "db1", "disk:/var:used", "2027-01-01:db1:disk:/var:used"},
		{Day, date(1970, 1, 1, 0), "h", "m", "1970-01-01:h:m"},
		{Day, date(9999, 12, 31, 23, 59, 59), "h", "m", "9999-12-31:h:m"},
		{Hour, date(2026, 11, 25, 13, 5), "web1.sfo", "cpu.user", "2026-11-25T13:web1.sfo:cpu.user"},
		{Hour, date(2026, 11, 25, 13, 59, 59, 999999999), "web1.sfo", "cpu.user", "2026-11-25T13:web1.sfo:cpu.user"},
		{Hour, date(2026, 11, 25, 14), "web1.sfo", "cpu.user", "2026-11-25T14:web1.sfo:cpu.user"},
		{Hour, date(2026, 11, 25, 23, 30), "web1", "a:b:", "2026-11-25T23:web1:a:b:"},
		{Hour, date(2026, 11, 26, 0, 30), "web1", ":", "2026-11-26T00:web1::"},
		{Hour, time.Date(2026, 11, 26, 0, 30, 0, 0, time.FixedZone("UTC+1", 3600)), "hôte", "température", "2026-11-25T23:hôte:température"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			got, err := Key(tt.p, tt.t, tt.host, tt.metric)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got, "Key: got %q, want %q", got, tt.want)

			appended := AppendKey([]byte("prefix"), tt.p, tt.p.Start(tt.t), tt.host, tt.metric)
			assert.Equal(t, "prefix"+tt.want, string(appended), "AppendKey")
			assert.Equal(t, tt.want, string(AppendKey(nil, tt.p, tt.t, tt.host, tt.metric)),
				"AppendKey of a time inside the period")

			start, host, metric, err := ParseKey(tt.p, got)
			require.NoError(t, err)
			assert.Equal(t, tt.p.Start(tt.t), start, "ParseKey start: got %v, want %v", start, tt.p.Start(tt.t))
			assert.Equal(t, tt.host, host, "ParseKey host: got %q, want %q", host, tt.host)
			assert.Equal(t, tt.metric, metric, "ParseKey metric: got %q, want %q", metric, tt.metric)
		})
	}
}

func TestKeyRejects(t *testing.T) {
	now := date(2026, 11, 25, 13)
	tests := []struct {
		name   string
		t      time.Time
		host   string
		metric string
		want   error
		quoted string
	}{
		{"empty host", now, "", "cpu", ErrBadHost, "empty host"},
		{"colon in host", now, "web1:6379", "cpu", ErrBadHost, `"web1:6379"`},
		{"newline in host", now, "web1\n", "cpu", ErrBadHost, `"web1\n"`},
		{"empty metric", now, "web1", "", ErrBadMetric, "empty metric"},
		{"NUL in metric", now, "web1", "cpu\x00", ErrBadMetric, `"cpu\x00"`},
		{"long metric", now, "web1", strings.Repeat("m", 600), ErrBadMetric, "600 bytes"},
		{"before 1970", date(1969, 12, 31, 23), "web1", "cpu", ErrBadTimestamp, "1969-12-31T23:00:00Z"},
		{"year 10000", date(10000, 1, 1, 0), "web1", "cpu", ErrBadTimestamp, "10000-01-01T00:00:00Z"},
		{"zero time", time.Time{}, "web1", "cpu", ErrBadTimestamp, "0001-01-01T00:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Key(Day, tt.t, tt.host, tt.metric)
			require.ErrorIs(t, err, tt.want, "Key(%v, %q, %q): got %q, %v", tt.t, tt.host, tt.metric, got, err)
			assert.Empty(t, got)
			assert.Contains(t, err.Error(), tt.quoted, "error should name the value")
		})
	}
}

func TestParseKeyRejects(t *testing.T) {
	tests := []struct {
		name string
		p    Period
		key  string
		also error  // a second sentinel the error wraps, if any
		why  string // piece of the message saying what is wrong
	}{
		{"empty", Day, "", nil, "no ':' after the period"},
		{"no colon", Day, "2026-11-25", nil, "no ':' after the period"},
		{"one colon", Day, "2026-11-25:web1", nil, "no ':' between host and metric"},
		{"hour key read as day", Day, "2026-11-25T13:web1:cpu", ErrBadPeriod, `"2026-11-25T13"`},
		{"day key read as hour", Hour, "2026-11-25:web1:cpu", ErrBadPeriod, `"2026-11-25"`},
		{"bad date", Day, "2026-02-30:web1:cpu", ErrBadPeriod, "day out of range"},
		{"before 1970", Day, "1969-12-31:web1:cpu", ErrBadPeriod, "year before 1970"},
		{"not a date", Day, "yesterday:web1:cpu", ErrBadPeriod, `"yesterday"`},
		{"empty period", Day, ":web1:cpu", ErrBadPeriod, `""`},
		{"empty host", Day, "2026-11-25::cpu", ErrBadHost, "empty host"},
		{"control in host", Day, "2026-11-25:we\tb1:cpu", ErrBadHost, `"we\tb1": control character U+0009 at byte 2`},
		{"long host", Day, "2026-11-25:" + strings.Repeat("h", 300) + ":cpu", ErrBadHost, "300 bytes"},
		{"empty metric", Day, "2026-11-25:web1:", ErrBadMetric, "empty metric"},
		{"bad UTF-8 metric", Hour, "2026-11-25T13:web1:cpu\xff", ErrBadMetric, `"cpu\xff": invalid UTF-8 at byte 3`},
		{"DEL in metric", Day, "2026-11-25:web1:a:\x7f", ErrBadMetric, "control character U+007F at byte 2"},
		{"zero-width space in host", Day, "2026-11-25:web\u200b1:cpu", ErrBadHost, `"web\u200b1": invisible format character U+200B at byte 3`},
		{"override in metric", Hour, "2026-11-25T13:web1:cpu.\u202eresu", ErrBadMetric, "invisible format character U+202E at byte 4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start, host, metric, err := ParseKey(tt.p, tt.key)
			require.ErrorIs(t, err, ErrBadKey, "ParseKey(%q): got %v, %q, %q, %v; want ErrBadKey",
				tt.key, start, host, metric, err)
			if tt.also != nil {
				assert.ErrorIs(t, err, tt.also, "ParseKey(%q) error should also wrap %v", tt.key, tt.also)
			}
			assert.True(t, start.IsZero() && host == "" && metric == "", "a failed ParseKey should return zero values")
			assert.Contains(t, err.Error(), quote(tt.key), "error should quote the key")
			assert.Contains(t, err.Error(), tt.why, "error should say what is wrong")
		})
	}
}

func TestKeyAllocs(t *testing.T) {
	start := date(2026, 11, 25, 0)
	buf := make([]byte, 0, 128)
	for _, p := range []Period{Day, Hour} {
		t.Run(p.String(), func(t *testing.T) {
			allocs := testing.AllocsPerRun(1000, func() {
				buf = AppendKey(buf[:0], p, start, "web123.sfo", "req.latency.p99")
			})
			assert.Zero(t, allocs, "AppendKey into a buffer with room: got %v allocations, want 0", allocs)

			key := string(buf)
			allocs = testing.AllocsPerRun(1000, func() {
				_, _, _, _ = ParseKey(p, key)
			})
			assert.Zero(t, allocs, "ParseKey: got %v allocations, want 0", allocs)

			allocs = testing.AllocsPerRun(1000, func() {
				_, _ = Key(p, start, "web123.sfo", "req.latency.p99")
			})
			assert.Equal(t, 1.0, allocs, "Key: got %v allocations, want 1 (the string)", allocs)
		})
	}
}

// BenchmarkAppendKey compares AppendKey with the obvious way of writing it,
// the time package's AppendFormat.
func BenchmarkAppendKey(b *testing.B) {
	start := date(2026, 11, 25, 13)
	buf := make([]byte, 0, 128)
	b.Run("AppendKey/day", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			buf = AppendKey(buf[:0], Day, start, "web123.sfo", "req.latency.p99")
		}
	})
	b.Run("AppendKey/hour", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			buf = AppendKey(buf[:0], Hour, start, "web123.sfo", "req.latency.p99")
		}
	})
	b.Run("time.AppendFormat/day", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			buf = start.UTC().AppendFormat(buf[:0], dayLayout)
			buf = append(append(append(append(buf, ':'), "web123.sfo"...), ':'), "req.latency.p99"...)
		}
	})
	b.Run("Key/day", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Key(Day, start, "web123.sfo", "req.latency.p99"); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkParseKey(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, _, _, err := ParseKey(Day, "2026-11-25:web123.sfo:req.latency.p99"); err != nil {
			b.Fatal(err)
		}
	}
}
