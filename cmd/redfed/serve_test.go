package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated/internal/redistest"
)

// servedDashboard is a running redfed serve.
type servedDashboard struct {
	addr   string
	cancel context.CancelFunc
	wg     sync.WaitGroup
	code   int
	errOut bytes.Buffer
}

// startServe runs redfed serve with args on a free loopback port until the
// test ends, and waits until it answers.
func startServe(t *testing.T, args ...string) *servedDashboard {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	d := &servedDashboard{addr: ln.Addr().String()}
	require.NoError(t, ln.Close())
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	args = append([]string{"serve", "--listen", d.addr, "--check-every", "0"}, args...)
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		var out bytes.Buffer
		d.code = run(ctx, args, strings.NewReader(""), &out, &d.errOut)
	}()
	t.Cleanup(func() {
		d.cancel()
		d.wg.Wait()
	})
	require.Eventually(t, func() bool {
		c, err := net.DialTimeout("tcp", d.addr, time.Second)
		if err == nil {
			_ = c.Close()
		}
		return err == nil
	}, 10*time.Second, 20*time.Millisecond, "serve %v did not listen", args)
	return d
}

// get requests path with the Host header host (the address when empty)
// and the token, when not empty, and returns the status and body.
func (d *servedDashboard) get(t *testing.T, path, host, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+d.addr+path, nil)
	require.NoError(t, err)
	if host != "" {
		req.Host = host
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res.StatusCode, string(body)
}

// The token can come from a file or the environment, where ps does not
// show it, and a short one is refused, saying where it came from.
func TestServeTokenSources(t *testing.T) {
	cfgPath, _ := startFederation(t, 1)
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
		return path
	}
	const good = "0123456789abcdef0123456789abcdef"
	goodFile := write("good", good+"\n")
	t.Setenv(tokenEnv, "")
	os.Unsetenv(tokenEnv)

	for _, tc := range []struct {
		name string
		env  string // $REDFED_TOKEN, when not empty
		args []string
		want []string
	}{
		{"short flag", "", []string{"--token", "short-secret"}, []string{"--token: token: 12 characters is too short", "at least 16"}},
		{"short file", "", []string{"--token-file", write("short", "short-secret\n")}, []string{"--token-file " + filepath.Join(dir, "short") + ": token: 12 characters"}},
		{"short environment", "short-secret", nil, []string{"$REDFED_TOKEN: token: 12 characters"}},
		{"empty file", "", []string{"--token-file", write("empty", "\n")}, []string{"--token-file " + filepath.Join(dir, "empty") + ": the token is empty"}},
		{"two lines", "", []string{"--token-file", write("two", good+"\nmore\n")}, []string{"more than one line"}},
		{"missing file", "", []string{"--token-file", filepath.Join(dir, "nope")}, []string{"--token-file: open " + filepath.Join(dir, "nope")}},
		{"both flags", "", []string{"--token", good, "--token-file", goodFile}, []string{"--token and --token-file"}},
		{"bad character", "", []string{"--token", good + ";"}, []string{"--token: token: character ';' at byte 32"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv(tokenEnv, tc.env)
			}
			code, _, errOut := runCLI(t, "", append([]string{"serve", "--config", cfgPath}, tc.args...)...)
			assert.Equal(t, 2, code, errOut)
			for _, w := range tc.want {
				assert.Contains(t, errOut, w)
			}
			assert.NotContains(t, errOut, "short-secret", "the error never shows the token")
		})
	}

	// A token from the file, then one from the environment, is required.
	d := startServe(t, "--config", cfgPath, "--token-file", goodFile)
	code, _ := d.get(t, "/api/hosts", "", "")
	assert.Equal(t, http.StatusUnauthorized, code, "without the token of --token-file")
	code, body := d.get(t, "/api/hosts", "", good)
	assert.Equal(t, http.StatusOK, code, body)

	t.Setenv(tokenEnv, good+"-env")
	d = startServe(t, "--config", cfgPath)
	code, _ = d.get(t, "/api/hosts", "", good)
	assert.Equal(t, http.StatusUnauthorized, code, "without the token of $REDFED_TOKEN")
	code, body = d.get(t, "/api/hosts", "", good+"-env")
	assert.Equal(t, http.StatusOK, code, body)
}

// Without a token, serve answers only the names of loopback and those of
// --allow-host.
func TestServeAllowHost(t *testing.T) {
	cfgPath, _ := startFederation(t, 1)
	t.Setenv(tokenEnv, "")
	os.Unsetenv(tokenEnv)
	code, _, errOut := runCLI(t, "", "serve", "--config", cfgPath, "--allow-host", "http://dash.internal/")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, `--allow-host "http://dash.internal/": want a host name`)

	d := startServe(t, "--config", cfgPath, "--allow-host", "dash.internal")
	for host, want := range map[string]int{
		"":                      http.StatusOK, // 127.0.0.1:port
		"localhost:8080":        http.StatusOK,
		"dash.internal":         http.StatusOK,
		"dash.internal:8080":    http.StatusOK,
		"attacker.example:8080": http.StatusMisdirectedRequest,
	} {
		code, body := d.get(t, "/api/hosts", host, "")
		assert.Equal(t, want, code, "Host %q: %s", host, body)
	}
}

// Stopping serve while requests wait for a paused server stops it all the
// same, cleanly, once the grace of 5 s is over (one read at a time, six
// requests of 3 s each): it exited 1 with "context deadline exceeded",
// which systemd takes for a failure.
func TestServeStopsWithRequestsUnderWay(t *testing.T) {
	servers := redistest.StartN(t, 1)
	cfg := writeConfig(t, fmt.Sprintf("nodes:\n  redis_1: {address: %q}\noptions: {command_timeout: 3s}\n", servers[0].Addr()))
	code, _, stderr := runCLI(t, "", "record", "--config", cfg, "web1.sfo", "cpu.user", "1")
	require.Zero(t, code, stderr)
	d := startServe(t, "--config", cfg, "--series-reads", "1")
	require.NoError(t, servers[0].Pause())
	t.Cleanup(func() { _ = servers[0].Resume() })
	for range 6 {
		go func() {
			res, err := http.Get("http://" + d.addr + "/api/series?host=web1.sfo&metric=cpu.user")
			if err == nil {
				_ = res.Body.Close()
			}
		}()
	}
	time.Sleep(500 * time.Millisecond) // the requests reach serve
	start := time.Now()
	d.cancel()
	d.wg.Wait()
	assert.Zero(t, d.code, d.errOut.String())
	assert.Greater(t, time.Since(start), 4*time.Second, "the requests were under way: serve gave them their grace")
	assert.Less(t, time.Since(start), 10*time.Second, "the grace, then a command timeout at most")
}
