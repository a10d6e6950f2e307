package main

import (
	"bufio"
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

// shortenServeTimeouts sets serve's read and write limits for the test.
func shortenServeTimeouts(t *testing.T, read, write time.Duration) {
	t.Helper()
	saved := serveTimeouts
	serveTimeouts.read, serveTimeouts.write = read, write
	t.Cleanup(func() { serveTimeouts = saved })
}

// exchange sends request on a new connection to addr and returns what
// came back until the server closed the connection, and how long that
// took; it fails the test if the connection is still open after 5 s.
func exchange(t *testing.T, addr, request string) (*http.Response, time.Duration) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(5*time.Second)))
	start := time.Now()
	_, err = io.WriteString(conn, request)
	require.NoError(t, err)
	reply, err := io.ReadAll(conn)
	require.NoError(t, err, "no reply, or the connection stayed open; got %q", reply)
	took := time.Since(start)
	res, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(reply)), nil)
	require.NoError(t, err, "reply %q", reply)
	_ = res.Body.Close()
	return res, took
}

// A client that promises a body and never sends it is cut off: the
// dashboard refuses the body at once, and the server's read limit ends the
// wait of the handlers that do not read it. Without either, such a request
// held its connection for ever, with no token needed: 200 of them were all
// open 40 s later, and the goroutines went from 3 to 203.
func TestServeCutsOffUnsentBody(t *testing.T) {
	shortenServeTimeouts(t, time.Second, time.Minute)
	cfgPath, _ := startFederation(t, 1)
	t.Setenv(tokenEnv, "")
	os.Unsetenv(tokenEnv)
	d := startServe(t, "--config", cfgPath)

	res, took := exchange(t, d.addr, "GET /api/hosts HTTP/1.1\r\nHost: evil.com\r\nContent-Length: 1\r\n\r\n")
	assert.Equal(t, http.StatusBadRequest, res.StatusCode, "a dashboard route")
	assert.Less(t, took, 500*time.Millisecond, "the dashboard refuses the body at once")

	res, took = exchange(t, d.addr, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1\r\n\r\n")
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Less(t, took, 3*time.Second, "the read limit of 1 s ends the wait")
}

// A client that never reads its reply is cut off once the write limit is
// over, so that it does not pin the reply's buffers for ever.
func TestServeCutsOffClientThatDoesNotRead(t *testing.T) {
	shortenServeTimeouts(t, time.Minute, time.Second)
	wrote := make(chan error, 1)
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		for range 1 << 14 { // 1 GiB: more than any socket buffers
			if _, err := w.Write(chunk); err != nil {
				wrote <- err
				return
			}
		}
		wrote <- nil
	})
	ctx, cancel := context.WithCancel(t.Context())
	addrc := make(chan string, 1)
	served := make(chan error, 1)
	go func() { served <- serve(ctx, h, "127.0.0.1:0", false, func(addr string) { addrc <- addr }) }()
	conn, err := net.Dial("tcp", <-addrc)
	require.NoError(t, err)
	defer func() {
		_ = conn.Close()
		cancel()
		require.NoError(t, <-served)
	}()
	_, err = io.WriteString(conn, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
	require.NoError(t, err)
	select {
	case err := <-wrote:
		assert.ErrorIs(t, err, os.ErrDeadlineExceeded, "the reply's writes fail once the limit is over")
	case <-time.After(5 * time.Second):
		_ = conn.Close() // ends the handler, so that serve returns
		t.Fatal("the reply still waits for its client 5 s later; the write limit is 1 s")
	}
}
