package main

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated/metrics"
)

func TestNumberArgs(t *testing.T) {
	for _, tc := range []struct {
		args, want string
	}{
		{"record web1 temp -3.5", "record -- web1 temp -3.5"},
		{"record --config f.yaml web1 temp -3.5 --time 1795600800", "record --config f.yaml --time 1795600800 -- web1 temp -3.5"},
		{"--config f.yaml record web1 temp -.5", "record --config f.yaml -- web1 temp -.5"},
		{"record --config=f.yaml --strict=false web1 temp -1e3", "record --config=f.yaml --strict=false -- web1 temp -1e3"},
		// Left alone: no negative number, one that is a flag's value, or a
		// "--" already there.
		{"record web1 temp 3.5", "record web1 temp 3.5"},
		{"query web1 temp --from -3.5 --to -1h", "query web1 temp --from -3.5 --to -1h"},
		{"query web1 temp --from=-3.5", "query web1 temp --from=-3.5"},
		{"record -- web1 temp -3.5", "record -- web1 temp -3.5"},
		{"record --time -5 web1 temp -3", "record --time -5 -- web1 temp -3"},
		{"config init --hosts a --ports -1", "config init --hosts a --ports -1"},
	} {
		t.Run(tc.args, func(t *testing.T) {
			got := numberArgs(newRootCmd(), strings.Fields(tc.args))
			assert.Equal(t, tc.want, strings.Join(got, " "))
		})
	}
}

// TestNegativeNumberArguments checks that a negative value works as an
// argument and as a flag's value, with and without "=".
func TestNegativeNumberArguments(t *testing.T) {
	cfg, client := startFederation(t, 1)
	code, _, errOut := runCLI(t, "", "record", "--config", cfg, "web1.sfo", "temp.delta", "-3.5", "--time", "1795604400")
	require.Equal(t, 0, code, errOut)
	assert.Equal(t, []metrics.Point{{Time: day.Add(11 * time.Hour), Value: -3.5}}, rangeOf(t, client, "web1.sfo", "temp.delta"))

	// -3.5 as --from is Unix seconds before 1970: the time is refused, not
	// read as a flag.
	for _, from := range [][]string{{"--from", "-3.5"}, {"--from=-3.5"}} {
		code, _, errOut := runCLI(t, "", append([]string{"query", "--config", cfg, "web1.sfo", "temp.delta"}, from...)...)
		assert.Equal(t, 2, code, errOut)
		assert.Contains(t, errOut, "--from federated: bad timestamp -3.5")
		assert.NotContains(t, errOut, "shorthand")
	}
	code, out, errOut := runCLI(t, "", "query", "--config", cfg, "web1.sfo", "temp.delta", "--from", "1795604000", "--to", "-1h")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "-3.5")

	// -inf and -NaN are values, refused by name, not unknown flags.
	for _, v := range []string{"-inf", "-Infinity", "-NaN"} {
		code, _, errOut := runCLI(t, "", "record", "--config", cfg, "web1.sfo", "temp.delta", v)
		assert.Equal(t, 2, code, errOut)
		assert.Contains(t, errOut, "value", v)
		assert.NotContains(t, errOut, "shorthand", v)
	}
	// A time so long ago it is before 1970 is named as written.
	code, _, errOut = runCLI(t, "", "query", "--config", cfg, "web1.sfo", "temp.delta", "--from", "65535d")
	assert.Equal(t, 2, code, errOut)
	assert.Contains(t, errOut, `"65535d" ago: federated: bad timestamp`)
	for _, ago := range []string{"70000d", "-99999999h", "3000000h"} {
		code, _, errOut = runCLI(t, "", "query", "--config", cfg, "web1.sfo", "temp.delta", "--from", ago)
		assert.Equal(t, 2, code, errOut)
		assert.Contains(t, errOut, strconv.Quote(ago)+" ago: federated: bad timestamp")
	}
	code, _, errOut = runCLI(t, "", "query", "--config", cfg, "web1.sfo", "temp.delta", "--from", "2 hours")
	assert.Equal(t, 2, code, errOut)
	assert.Contains(t, errOut, `"2 hours": want "now"`, "not a time at all")
	// A range wider than a read may take is a usage error, answered
	// before any server is asked.
	code, out, errOut = runCLI(t, "", "query", "--config", cfg, "web1.sfo", "temp.delta", "--from", "0", "--to", "9999-12-31T00:00:00Z", "--json")
	assert.Equal(t, 2, code, errOut)
	assert.Empty(t, out)
	assert.Contains(t, errOut, "touches 2932897 day periods, at most 99999 may be read at once")
}
