package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/redfed/federated/internal/redistest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// decodeJSONLines decodes every line of out, each a JSON object, strictly:
// a field the type does not know fails the test.
func decodeJSONLines[T any](t *testing.T, out string) []T {
	t.Helper()
	var got []T
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var v T
		dec := json.NewDecoder(strings.NewReader(sc.Text()))
		dec.DisallowUnknownFields()
		require.NoError(t, dec.Decode(&v), "line %q", sc.Text())
		got = append(got, v)
	}
	return got
}

func TestRouteJSON(t *testing.T) {
	cfg := writeConfig(t, perlFederation)
	want := []routeJSON{
		{Key: "2026-12-25:cache944.sfo:req.latency.p99", Node: "redis_8", Servers: []string{"127.0.0.1:7008"}},
		{Key: "2027-01-27:web781.lax:tcp.conns", Node: "redis_7", Servers: []string{"127.0.0.1:7007", "127.0.0.2:7007"}},
	}
	code, out, errOut := runCLI(t, "", "route", "--config", cfg, "--json", want[0].Key, want[1].Key)
	require.Equal(t, 0, code, errOut)
	assert.Equal(t, want, decodeJSONLines[routeJSON](t, out))

	// From standard input: a line each, as the keys come.
	code, out, errOut = runCLI(t, want[0].Key+"\n\n"+want[1].Key+"\n", "route", "--config", cfg, "--json")
	require.Equal(t, 0, code, errOut)
	assert.Equal(t, want, decodeJSONLines[routeJSON](t, out))
}

func TestVersionJSON(t *testing.T) {
	code, out, errOut := runCLI(t, "", "version", "--json")
	require.Equal(t, 0, code, errOut)
	got := decodeJSONLines[buildVersion](t, out)
	require.Len(t, got, 1, out)
	assert.Equal(t, readBuildVersion(), got[0])
	assert.NotEmpty(t, got[0].Version)
	assert.NotEmpty(t, got[0].GoVersion)
	for _, field := range []string{`"version":`, `"revision":`, `"time":`, `"modified":`, `"go":`} {
		assert.Contains(t, out, field)
	}
}

func TestRecordJSON(t *testing.T) {
	cfg, client := startFederation(t, 1)
	summary := func(t *testing.T, out string) recordSummary {
		t.Helper()
		got := decodeJSONLines[recordSummary](t, out)
		require.Len(t, got, 1, out)
		assert.Greater(t, got[0].Seconds, 0.0)
		got[0].Seconds = 0
		return got[0]
	}
	in := "# a comment\nweb1 cpu 1795600800 1\nweb1 cpu yesterday 2\n\nweb1 cpu 1795600801 3\n"
	code, out, errOut := runCLI(t, in, "record", "--config", cfg, "--json")
	assert.Equal(t, 1, code, errOut)
	assert.Equal(t, recordSummary{Lines: 5, Written: 2, Skipped: 1}, summary(t, out))
	assert.Contains(t, errOut, "2 points written, 0 failed", "the summary for a person still goes to standard error")
	assert.Len(t, rangeOf(t, client, "web1", "cpu"), 2)

	code, out, errOut = runCLI(t, in, "record", "--config", cfg, "--json", "--strict")
	assert.Equal(t, 1, code, errOut)
	assert.Equal(t, recordSummary{Lines: 5, Skipped: 1}, summary(t, out))

	code, out, errOut = runCLI(t, "", "record", "--config", cfg, "--json", "web1", "cpu", "4")
	require.Equal(t, 0, code, errOut)
	assert.Equal(t, recordSummary{Lines: 1, Written: 1}, summary(t, out))

	// Nothing tried: no summary.
	code, out, _ = runCLI(t, "", "record", "--config", cfg, "--json", "web:1", "cpu", "4")
	assert.Equal(t, 2, code)
	assert.Empty(t, out)

	// A write that fails: tried, and counted failed.
	down := redistest.StartN(t, 1)[0]
	downCfg := writeConfig(t, fmt.Sprintf("nodes:\n  redis_1: {address: %q}\noptions: {command_timeout: 2s}\n", down.Addr()))
	require.NoError(t, down.Kill())
	code, out, errOut = runCLI(t, "", "record", "--config", downCfg, "--json", "web1", "cpu", "4")
	assert.Equal(t, 1, code, errOut)
	assert.Equal(t, recordSummary{Lines: 1, Failed: 1}, summary(t, out))
}
