package main

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated/internal/redistest"
)

// What a server holds or answers reaches the terminal escaped: a key
// with an escape sequence and a line break, which a plain ZADD can store,
// is quoted in check's and repair's table, and a server's error reply in
// the error line, so that neither retitles the terminal, clears it or
// fakes a line.
func TestServersTextReachesTheTerminalEscaped(t *testing.T) {
	servers := redistest.StartN(t, 2)
	cfg := writeConfig(t, fmt.Sprintf("nodes:\n  redis_1: {addresses: [%q, %q]}\n", servers[0].Addr(), servers[1].Addr()))
	rc := redis.NewClient(&redis.Options{Addr: servers[0].Addr(), DisableIdentity: true})
	t.Cleanup(func() { _ = rc.Close() })
	now := time.Now()
	key := now.UTC().Format("2006-01-02") + ":evil\x1b]0;PWNED\x07\x1b[2J:cpu\nFAKE LINE"
	ts := float64(now.Unix())
	require.NoError(t, rc.ZAdd(t.Context(), "journal", redis.Z{Score: ts, Member: key}).Err())
	require.NoError(t, rc.ZAdd(t.Context(), key, redis.Z{Score: ts, Member: fmt.Sprintf("%d:1", now.Unix())}).Err())
	for _, verb := range []string{"check", "repair"} {
		_, out, _ := runCLI(t, "", verb, "--config", cfg)
		assert.NotContains(t, out, "\x1b", verb)
		assert.NotContains(t, out, "\nFAKE LINE", verb)
		assert.Contains(t, out, `\x1b]0;PWNED\a`, verb)
	}

	// A listener that answers every command with an error of escapes.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if strings.HasPrefix(line, "*") {
						_, _ = c.Write([]byte("-ERR \x1b]0;PWNED\x07\x1b[2J\x1b[31mevil\x1b[0m\r\n"))
					}
				}
			})
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	bad := writeConfig(t, fmt.Sprintf("nodes:\n  redis_1: {address: %q}\n", ln.Addr().String()))
	_, _, errOut := runCLI(t, "", "hosts", "--config", bad)
	assert.NotContains(t, errOut, "\x1b")
	assert.Contains(t, errOut, `\x1b]0;PWNED`)
}

// check and repair refuse a node named twice, which they would read,
// count and repair twice.
func TestCheckRefusesANodeNamedTwice(t *testing.T) {
	servers := redistest.StartN(t, 2)
	cfg := writeConfig(t, fmt.Sprintf("nodes:\n  redis_1: {addresses: [%q, %q]}\n", servers[0].Addr(), servers[1].Addr()))
	for _, verb := range []string{"check", "repair"} {
		code, _, errOut := runCLI(t, "", verb, "--config", cfg, "--node", "redis_1,redis_1")
		assert.Equal(t, exitUsage, code, verb)
		assert.Contains(t, errOut, "--node redis_1: named twice", verb)
		// An empty --node (a variable that came out empty) would check
		// every group instead.
		for _, empty := range []string{"", "redis_1,", ",redis_1"} {
			code, _, errOut = runCLI(t, "", verb, "--config", cfg, "--node", empty)
			assert.Equal(t, exitUsage, code, verb)
			assert.Contains(t, errOut, "--node: empty", "%s --node %q", verb, empty)
		}
	}
}

// A shell that completion does not know is a usage error, not its help
// on stdout for a shell to source.
func TestCompletionOfAnUnknownShell(t *testing.T) {
	code, out, errOut := runCLI(t, "", "completion", "bahs")
	assert.Equal(t, exitUsage, code)
	assert.Empty(t, out)
	assert.Contains(t, errOut, `unknown command "bahs"`)
	code, out, _ = runCLI(t, "", "completion", "bash")
	assert.Equal(t, exitOK, code)
	assert.Contains(t, out, "bash completion")
}
