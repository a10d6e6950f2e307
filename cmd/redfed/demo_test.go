package main

import (
	"bytes"
	"context"
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
)

func TestDemoCommand(t *testing.T) {
	for _, mode := range []struct {
		name string
		args []string
		want string
	}{
		{"redis-server", nil, "redis-server processes"},
		{"in-process", []string{"--in-process"}, "in-process Redis-compatible servers"},
	} {
		t.Run(mode.name, func(t *testing.T) {
			args := append([]string{"demo", "--duration", "1s", "--hosts", "10", "--listen", "127.0.0.1:0"}, mode.args...)
			code, out, errOut := runCLI(t, "", args...)
			require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
			assert.Contains(t, out, mode.want)
			assert.Contains(t, out, "(0 failed)")
			assert.Contains(t, out, "(0 lost)")
			assert.Contains(t, out, "every replica agrees")
			assert.Regexp(t, regexp.MustCompile(`failover +127\.0\.0\.1:\d+ → 127\.0\.0\.1:\d+`), out)
			assert.NotContains(t, out, "dashboard: http", "--duration is over before the story ends: nothing left to serve")
		})
	}
}

// An interrupt during the demo's story is said as one, not as the
// "context canceled" of what the story was doing.
func TestDemoInterruptedDuringItsStory(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	var out, errOut bytes.Buffer
	time.AfterFunc(time.Second, cancel)
	code := run(ctx, []string{"demo", "--in-process", "--hosts", "2", "--listen", "127.0.0.1:0"}, strings.NewReader(""), &out, &errOut)
	assert.Equal(t, 1, code, "stdout:\n%s", out.String())
	assert.Regexp(t, `^redfed demo: interrupted (while it started its servers|before the end of its story); everything it started is stopped\n$`, errOut.String())
}

func TestDemoRefusesOpenAddress(t *testing.T) {
	code, _, errOut := runCLI(t, "", "demo", "--listen", "0.0.0.0:0")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "not a loopback address")
}

// serve returns its own errors at once: its check loop does not keep it.
func TestServeReturnsOnAnAddressInUse(t *testing.T) {
	cfgPath, _ := startFederation(t, 1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	done := make(chan int, 1)
	var out, errOut bytes.Buffer
	go func() {
		done <- run(context.Background(), []string{"serve", "--config", cfgPath, "--listen", ln.Addr().String()},
			strings.NewReader(""), &out, &errOut)
	}()
	select {
	case code := <-done:
		assert.NotZero(t, code)
		assert.Contains(t, errOut.String(), "address already in use")
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not return on an address in use")
	}
}

func TestServeRefusesOpenAddressWithoutToken(t *testing.T) {
	cfg := writeConfig(t, "nodes:\n  a: {address: \"127.0.0.1:7000\"}\n")
	code, _, errOut := runCLI(t, "", "serve", "--config", cfg, "--listen", "0.0.0.0:0")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "--token")
	assert.Contains(t, errOut, "not a loopback address")
}

func TestServeDashboard(t *testing.T) {
	cfgPath, client := startFederation(t, 2)
	require.NoError(t, client.Record(context.Background(), "web1.sfo", "cpu.user", time.Now(), 42))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var code int
	var out, errOut bytes.Buffer
	wg.Add(1)
	go func() {
		defer wg.Done()
		code = run(ctx, []string{"serve", "--config", cfgPath, "--listen", addr, "--check-every", "1h"}, strings.NewReader(""), &out, &errOut)
	}()
	var body string
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + addr + "/api/hosts")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		return resp.StatusCode == http.StatusOK
	}, 5*time.Second, 20*time.Millisecond)
	assert.Contains(t, body, "web1.sfo")
	cancel()
	wg.Wait()
	assert.Equal(t, 0, code, errOut.String())
}

// A negative interval or count is a usage error, not a quiet "off" or
// default.
func TestDemoAndServeRefuseNegativeFlags(t *testing.T) {
	cfg := writeConfig(t, "nodes:\n  a: {address: \"127.0.0.1:7000\"}\n")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"demo", "--duration", "-1s"}, "--duration -1s: want 0 or more (0, the default, serves until Ctrl-C)"},
		{[]string{"demo", "--hosts", "-5"}, "--hosts -5: want 1 or more"},
		{[]string{"serve", "--config", cfg, "--check-every", "-1m"}, "--check-every -1m0s: want 0 (off) or 1s or more"},
		// Intervals that would spin, sending commands back to back.
		{[]string{"serve", "--config", cfg, "--check-every", "1ns"}, "--check-every 1ns: want 0 (off) or 1s or more"},
		{[]string{"sync", "--config", cfg, "--local", "127.0.0.1:7000", "--poll", "1ns"}, "--poll 1ns: want 1ms or more"},
		{[]string{"sync", "--config", cfg, "--local", "127.0.0.1:7000", "--status-every", "1ns"}, "--status-every 1ns: want 1s or more"},
		{[]string{"sync", "--config", cfg, "--local", "127.0.0.1:7000", "--anti-entropy", "1us"}, "--anti-entropy 1µs: want 100ms or more"},
		{[]string{"sync", "--config", cfg, "--local", "127.0.0.1:7000", "--anti-entropy-full", "50ms"}, "--anti-entropy-full 50ms: want 100ms or more"},
		{[]string{"sync", "--config", cfg, "--local", "127.0.0.1:7000", "--anti-entropy", "1m", "--no-anti-entropy"}, "--anti-entropy with --no-anti-entropy"},
	} {
		code, _, errOut := runCLI(t, "", tc.args...)
		assert.Equal(t, 2, code, "%v: %s", tc.args, errOut)
		assert.Contains(t, errOut, tc.want, tc.args)
	}
}
