package main

import (
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

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
		{[]string{"--graphite-listen", freeAddr(t), "--graphite-max-conns", "0"}, "--graphite-max-conns 0: at least 1"},
		{[]string{"--allow-host", ""}, "--allow-host: empty"},
		{[]string{"--remote-host-label", ""}, "--remote-host-label: empty"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			args := append([]string{"serve", "--config", cfgPath, "--listen", freeAddr(t), "--check-every", "0"}, tc.args...)
			code, _, errOut := runCLI(t, "", args...)
			assert.Equal(t, 2, code, errOut)
			assert.Contains(t, errOut, tc.want)
		})
	}
}

// --graphite-max-conns bounds the connections served at once: one beyond
// is closed as soon as it is accepted, and counted.
func TestServeGraphiteMaxConns(t *testing.T) {
	cfgPath, _ := startFederation(t, 1)
	addr := freeAddr(t)
	d := startServe(t, "--config", cfgPath, "--graphite-listen", addr, "--graphite-max-conns", "1")
	first, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer first.Close()
	_, err = fmt.Fprintf(first, "collectd.web1.load 1 %d\n", time.Now().Unix())
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, body := httpGet(t, d.addr, "/metrics")
		return strings.Contains(body, "\nredfed_graphite_connections 1\n")
	}, 10*time.Second, 50*time.Millisecond)
	second, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer second.Close()
	require.NoError(t, second.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, err = second.Read(make([]byte, 1))
	require.ErrorIs(t, err, io.EOF, "the connection beyond the most is closed")
	require.Eventually(t, func() bool {
		_, body := httpGet(t, d.addr, "/metrics")
		return strings.Contains(body, "\nredfed_graphite_connections_refused_total 1\n")
	}, 10*time.Second, 50*time.Millisecond)
}

// A fleet of hundreds of collectd hosts, each holding a connection, is
// served with the defaults: the 256 connections of before refused the
// last of 300 hosts at every try.
func TestServeGraphiteTakesAFleetOfHostsByDefault(t *testing.T) {
	cfgPath, _ := startFederation(t, 1)
	addr := freeAddr(t)
	d := startServe(t, "--config", cfgPath, "--graphite-listen", addr)
	const hosts = 300
	for i := range hosts {
		conn, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		defer conn.Close()
		_, err = fmt.Fprintf(conn, "collectd.web%d.load 1 %d\n", i, time.Now().Unix())
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool {
		_, body := httpGet(t, d.addr, "/metrics")
		return strings.Contains(body, fmt.Sprintf("\nredfed_graphite_connections %d\n", hosts))
	}, 10*time.Second, 50*time.Millisecond, "connections served")
	_, body := httpGet(t, d.addr, "/metrics")
	assert.Contains(t, body, "\nredfed_graphite_connections_refused_total 0\n")
}
