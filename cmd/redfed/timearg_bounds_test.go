package main

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Unix seconds are read to the nanosecond, as written. They went through a
// float64 and metric.Time, which rounded them to the microsecond:
// 1795600800.4999999 was 1795600800.5.
func TestUnixSecondsArgumentsAreReadToTheNanosecond(t *testing.T) {
	const sec = 1795600800
	now := time.Unix(sec+7200, 0)
	for _, tt := range []struct {
		arg  string
		want time.Time
	}{
		{"1795600800.4999999", time.Unix(sec, 499_999_900)},
		{"1795600800.000000001", time.Unix(sec, 1)},
		{"1795600800.999999999", time.Unix(sec, 999_999_999)},
		{"1795600800.5000000000", time.Unix(sec, 500_000_000)}, // zeros past the nanosecond
		{"+1795600800.25", time.Unix(sec, 250_000_000)},
		{"1.7956008004999999e9", time.Unix(sec, 499_999_900)},
		{"17956008004999999E-7", time.Unix(sec, 499_999_900)},
		{"179560080000e-2", time.Unix(sec, 0)},
		{".5", time.Unix(0, 500_000_000)},
		{"5.", time.Unix(5, 0)},
		{"0.000000001", time.Unix(0, 1)},
		{"1e-9", time.Unix(0, 1)},
		{"-0", time.Unix(0, 0)},
		{"00001795600800.5", time.Unix(sec, 500_000_000)},
	} {
		got, err := parseTimeArg(tt.arg, now)
		if assert.NoError(t, err, tt.arg) {
			assert.True(t, tt.want.Equal(got), "%s: got %v, want %v", tt.arg, got, tt.want)
		}
	}
	// Digits past the nanosecond are dropped.
	for arg, want := range map[string]time.Time{
		"1795600800.4999999999":       time.Unix(sec, 499_999_999),
		"1795600800.123456954956":     time.Unix(sec, 123_456_954),
		"1e-10":                       time.Unix(0, 0),
		"1.79560080049999999999e9":    time.Unix(sec, 499_999_999),
		"1795600800.0000000001":       time.Unix(sec, 0),
		"179560080012345695495.6e-11": time.Unix(sec, 123_456_954),
	} {
		got, err := parseTimeArg(arg, now)
		if assert.NoError(t, err, arg) {
			assert.True(t, want.Equal(got), "%s: got %v, want %v", arg, got, want)
		}
	}
}

// A point whose time a tool writes with every digit of its float64 is
// recorded at the microsecond it means: record refused such lines.
func TestRecordTakesTimestampsFinerThanTheNanosecond(t *testing.T) {
	cfg, _ := startFederation(t, 1)
	code, _, errOut := runCLI(t, "web1.sfo cpu.user 1795600800.123456954956 1\n", "record", "--config", cfg)
	require.Equal(t, 0, code, errOut)
	code, out, errOut := runCLI(t, "", "query", "--config", cfg, "web1.sfo", "cpu.user",
		"--from", "1795600800", "--to", "1795600801")
	require.Equal(t, 0, code, errOut)
	assert.Equal(t, "TIME                         VALUE\n2026-11-25T10:00:00.123457Z  1\n", out)
}

// A query up to 100 ns before a point leaves it out, and says so in its
// range: the point at 10:00:00.5 was printed, and the range echoed as
// ending at 10:00:00.5.
func TestQueryToJustBeforeAPointLeavesItOut(t *testing.T) {
	cfg, client := startFederation(t, 1)
	at := time.Unix(1795600800, 500_000_000).UTC() // 2026-11-25T10:00:00.5Z
	require.NoError(t, client.Record(t.Context(), "web1.sfo", "cpu.user", at, 1))

	code, out, errOut := runCLI(t, "", "query", "--config", cfg, "web1.sfo", "cpu.user",
		"--from", "1795600800", "--to", "1795600800.4999999", "--json")
	require.Equal(t, 0, code, errOut)
	var got queryJSON
	require.NoError(t, json.Unmarshal([]byte(out), &got), out)
	assert.Equal(t, time.Unix(1795600800, 499_999_900).UTC(), got.To.UTC(), "the range's end as given")
	assert.Empty(t, got.Points, "the point 100 ns after the range's end")

	code, out, errOut = runCLI(t, "", "query", "--config", cfg, "web1.sfo", "cpu.user",
		"--from", "1795600800", "--to", "1795600800.5")
	require.Equal(t, 0, code, errOut)
	assert.Equal(t, "TIME                    VALUE\n2026-11-25T10:00:00.5Z  1\n", out)
}
