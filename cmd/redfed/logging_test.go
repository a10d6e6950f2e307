package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated/internal/redistest"
)

// TestLogFormatJSON checks that --log-format json makes the client's
// warnings, and the command's own error at the end, one JSON object a
// line, and that text stays the default.
func TestLogFormatJSON(t *testing.T) {
	servers := redistest.StartN(t, 1)
	cfg := writeConfig(t, fmt.Sprintf("nodes:\n  redis_1: {address: %q}\noptions: {command_timeout: 2s}\n", servers[0].Addr()))
	require.NoError(t, servers[0].Kill())

	code, _, errOut := runCLI(t, "", "hosts", "--config", cfg, "--log-format", "json")
	assert.Equal(t, 1, code, errOut)
	var down, failed map[string]any
	for line := range strings.Lines(errOut) {
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &rec), "log line %q", line)
		switch rec["msg"] {
		case "federated: server down":
			down = rec
		case "redfed hosts failed":
			failed = rec
		}
	}
	require.NotNil(t, down, "no server-down record in %s", errOut)
	require.NotNil(t, failed, "no record of the command's error in %s", errOut)
	assert.Equal(t, "ERROR", failed["level"])
	assert.Contains(t, failed["err"], servers[0].Addr())
	assert.Equal(t, "WARN", down["level"])
	assert.Equal(t, servers[0].Addr(), down["server"])

	code, _, errOut = runCLI(t, "", "hosts", "--config", cfg)
	assert.Equal(t, 1, code, errOut)
	assert.Contains(t, errOut, `level=WARN msg="federated: server down"`)
	// go-redis's own lines about the same failure (its failed dials),
	// which the client passes to its logger, are not the command's.
	assert.NotContains(t, errOut, "go-redis")

	code, _, errOut = runCLI(t, "", "hosts", "--config", cfg, "--log-format", "xml")
	assert.Equal(t, 2, code, errOut)
	assert.Contains(t, errOut, `--log-format "xml": want text or json`)
}
