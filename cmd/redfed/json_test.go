package main

import (
	"bufio"
	"encoding/json"
	"strings"
	"testing"

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
