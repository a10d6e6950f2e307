package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/fedtest"
	"github.com/redfed/federated/internal/redistest"
)

// freeAddr returns a loopback address with a port free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// httpGet requests http://addr/path and returns the status and body.
func httpGet(t *testing.T, addr, path string) (int, string) {
	t.Helper()
	res, err := http.Get("http://" + addr + path)
	require.NoError(t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res.StatusCode, string(body)
}

// waitStatus polls path until it answers want, and returns the body.
func waitStatus(t *testing.T, addr, path string, want int) string {
	t.Helper()
	var code int
	var body string
	require.Eventually(t, func() bool {
		res, err := http.Get("http://" + addr + path)
		if err != nil {
			return false
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		code, body = res.StatusCode, string(b)
		return code == want
	}, 15*time.Second, 50*time.Millisecond, "GET %s: got %d %q, want %d", path, code, body, want)
	return body
}

// startSync runs redfed sync of the local servers with its metrics
// listener on a free port until the test ends, and returns the listener's
// address.
func startSync(t *testing.T, cfg, local string) string {
	t.Helper()
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		run(ctx, []string{"sync", "--config", cfg, "--local", local, "--metrics-listen", addr},
			strings.NewReader(""), io.Discard, io.Discard)
	}()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	return addr
}

// TestSyncHealthEndpoints checks the probes on sync's metrics listener:
// ready while every node of its --local servers has a server up, whatever
// the other nodes, 503 naming the node once its servers are killed, and
// 404 for a path it does not serve.
func TestSyncHealthEndpoints(t *testing.T) {
	servers := redistest.StartN(t, 3)
	cfg := writeConfig(t, fmt.Sprintf(`nodes:
  redis_1: {addresses: ["%s", "%s"]}
  redis_2: {address: "%s"}
options: {command_timeout: 1s, health_check_interval: 100ms}
`, servers[0].Addr(), servers[1].Addr(), servers[2].Addr()))
	addr := startSync(t, cfg, servers[1].Addr())
	assert.Equal(t, "ok\n", waitStatus(t, addr, "/healthz", http.StatusOK))
	assert.Equal(t, "ok\n", waitStatus(t, addr, "/readyz", http.StatusOK))
	code, body := httpGet(t, addr, "/metrics")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, "redfed_syncer_")
	for _, path := range []string{"/", "/metricz", "/healthz/x"} {
		code, body := httpGet(t, addr, path)
		assert.Equal(t, http.StatusNotFound, code, "GET %s", path)
		assert.NotContains(t, body, "redfed_syncer_", "GET %s", path)
	}

	// A node it does not replicate, down: its daemon is still ready (every
	// daemon of a fleet answered 503 for any node down anywhere).
	require.NoError(t, servers[2].Kill())
	time.Sleep(time.Second) // the client's checks find it down within 0.2 s
	code, body = httpGet(t, addr, "/readyz")
	assert.Equal(t, http.StatusOK, code, "a node of no --local server is down: %s", body)

	require.NoError(t, servers[0].Kill())
	require.NoError(t, servers[1].Kill())
	body = waitStatus(t, addr, "/readyz", http.StatusServiceUnavailable)
	assert.Contains(t, body, "node redis_1: no server up (")
	assert.NotContains(t, body, "redis_2")
	code, _ = httpGet(t, addr, "/healthz")
	assert.Equal(t, http.StatusOK, code, "alive while a node is down")
}

// TestServeHealthEndpoints checks the probes on serve: they answer without
// the token the dashboard requires, and /readyz turns 503 when a node has
// no server up.
func TestServeHealthEndpoints(t *testing.T) {
	servers := redistest.StartN(t, 2)
	cfg := writeConfig(t, fmt.Sprintf(`nodes:
  redis_1: {address: "%s"}
  redis_2: {address: "%s"}
options: {command_timeout: 1s, health_check_interval: 100ms}
`, servers[0].Addr(), servers[1].Addr()))
	t.Setenv(tokenEnv, "0123456789abcdef0123456789abcdef")
	d := startServe(t, "--config", cfg)

	code, _ := d.get(t, "/api/hosts", "", "")
	assert.Equal(t, http.StatusUnauthorized, code, "the dashboard still wants its token")
	code, body := d.get(t, "/healthz", "", "")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "ok\n", body)
	assert.Equal(t, "ok\n", waitStatus(t, d.addr, "/readyz", http.StatusOK))

	require.NoError(t, servers[0].Kill())
	body = waitStatus(t, d.addr, "/readyz", http.StatusServiceUnavailable)
	assert.Regexp(t, `^node redis_1: no server up \(`+regexp.QuoteMeta(servers[0].Addr())+` down since \d{4}-\d\d-\d\dT[\d:]+Z\)\n$`, body)
}

func TestNodesDown(t *testing.T) {
	since := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	status := []federated.ServerStatus{
		{Node: "b", Address: "h:2", Down: true, DownSince: since},
		{Node: "a", Address: "h:1", Down: true, DownSince: since},
		{Node: "a", Address: "h:3"},
		{Node: "c", Address: "h:4", Down: true},
		{Node: "c", Address: "h:5", Down: true, DownSince: since},
	}
	assert.Equal(t, []string{
		"node b: no server up (h:2 down since 2026-11-25T10:00:00Z)",
		"node c: no server up (h:4 down, h:5 down since 2026-11-25T10:00:00Z)",
	}, nodesDown(status))
	assert.Empty(t, nodesDown(status[1:3]))
}

// A sync daemon's client holds the nodes of its --local servers only: it
// neither connects to nor checks the servers it does not replicate. A
// client of every node held a connection to each server of the fleet and
// sent each a PING a second, from every daemon.
func TestSyncReadsOnlyTheNodesItReplicates(t *testing.T) {
	servers := redistest.StartN(t, 3)
	cfg := writeConfig(t, fmt.Sprintf(`nodes:
  redis_1: {addresses: ["%s", "%s"]}
  redis_2: {address: "%s"}
options: {command_timeout: 1s, health_check_interval: 100ms}
`, servers[0].Addr(), servers[1].Addr(), servers[2].Addr()))
	pingsOf := func(addr string) int64 {
		info, err := fedtest.DirectClient(t, addr).Info(context.Background(), "commandstats").Result()
		require.NoError(t, err)
		return redistest.ParseCommandStats(info)["ping"].Completed()
	}
	before := make([]int64, len(servers))
	for i, s := range servers {
		before[i] = pingsOf(s.Addr())
	}
	addr := startSync(t, cfg, servers[1].Addr())
	assert.Equal(t, "ok\n", waitStatus(t, addr, "/readyz", http.StatusOK))
	time.Sleep(500 * time.Millisecond) // five rounds of checks
	for i, s := range servers {
		pings := pingsOf(s.Addr()) - before[i]
		if i < 2 {
			assert.Positive(t, pings, "%s, of the group it replicates, is checked", s.Addr())
		} else {
			assert.Zero(t, pings, "%s, of a node it does not replicate, is not", s.Addr())
		}
	}
}
