package main

import (
	"net"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A bad template or address is a usage error that names the flag, before
// anything listens.
func TestServeGraphiteFlagErrors(t *testing.T) {
	cfgPath, _ := startFederation(t, 1)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--graphite-listen", freeAddr(t), "--graphite-template", "collectd.metric*"},
			`--graphite-template: graphite: bad template "collectd.metric*": no host word`},
		{[]string{"--graphite-template", "host.metric*.x"}, "metric* is word 2; it must be the last"},
		{[]string{"--graphite-listen", "2003"}, `--graphite-listen "2003": address 2003: missing port in address`},
		{[]string{"--graphite-listen", busy.Addr().String()}, "--graphite-listen " + busy.Addr().String() + ": listen tcp"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			args := append([]string{"serve", "--config", cfgPath, "--listen", freeAddr(t), "--check-every", "0"}, tc.args...)
			code, _, errOut := runCLI(t, "", args...)
			assert.Equal(t, 2, code, errOut)
			assert.Contains(t, errOut, tc.want)
		})
	}
}
