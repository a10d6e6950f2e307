package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/fedtest"
	"github.com/redfed/federated/internal/journal"
	"github.com/redfed/federated/internal/redistest"
)

// reloadOptions make a down server noticed within a fraction of a second.
const reloadOptions = "options: {health_check_interval: 50ms, base_retry_interval: 50ms, command_timeout: 1s}\n"

// startDaemon runs a command of redfed in-process until the test ends and
// waits for a line of its standard error or output. It returns both.
func startDaemon(t *testing.T, ready string, args ...string) (stdout, stderr *syncBuffer) {
	t.Helper()
	// SIGHUP ends a process that does not ask for it: this keeps the test
	// binary alive should a signal come while no command listens.
	guard := make(chan os.Signal, 1)
	signal.Notify(guard, syscall.SIGHUP)
	t.Cleanup(func() { signal.Stop(guard) })
	stdout, stderr = &syncBuffer{}, &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- run(ctx, args, strings.NewReader(""), stdout, stderr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			assert.Equal(t, 0, code, stderr.String())
		case <-time.After(10 * time.Second):
			t.Errorf("%s did not stop: %s", args[0], stderr.String())
		}
	})
	require.Eventually(t, func() bool {
		return strings.Contains(stdout.String()+stderr.String(), ready)
	}, 10*time.Second, 10*time.Millisecond, "%s did not start: %s", args[0], stderr)
	return stdout, stderr
}

// reload rewrites the federation file and sends SIGHUP to this process,
// then waits for one more log line that holds want: the reload done or
// refused.
func reload(t *testing.T, stderr *syncBuffer, path, doc, want string) {
	t.Helper()
	before := strings.Count(stderr.String(), want)
	require.NoError(t, os.WriteFile(path, []byte(doc), 0o600))
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGHUP))
	require.Eventually(t, func() bool { return strings.Count(stderr.String(), want) > before },
		10*time.Second, 10*time.Millisecond, "no %q after SIGHUP: %s", want, stderr)
}

// serve and the nodes of a reloaded file: a node added, a file refused,
// a node removed; /readyz shows which nodes the client has.
func TestServeReloadsOnSIGHUP(t *testing.T) {
	servers := redistest.StartN(t, 2)
	require.NoError(t, servers[1].Kill()) // a node whose server is down
	one := fmt.Sprintf("nodes:\n  redis_1: {address: %q}\n", servers[0].Addr()) + reloadOptions
	cfg := writeConfig(t, one)
	stdout, stderr := startDaemon(t, "dashboard: http://", "serve", "--config", cfg, "--listen", "127.0.0.1:0", "--check-every", "0")
	addr := regexp.MustCompile(`dashboard: http://(\S+)/`).FindStringSubmatch(stdout.String())[1]
	readyz := func() (int, string) {
		resp, err := http.Get("http://" + addr + "/readyz")
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(body)
	}
	code, _ := readyz()
	require.Equal(t, http.StatusOK, code)

	two := fmt.Sprintf("nodes:\n  redis_1: {address: %q}\n  redis_2: {address: %q}\n", servers[0].Addr(), servers[1].Addr()) + reloadOptions
	reload(t, stderr, cfg, two, "federation file reloaded")
	assert.Contains(t, stderr.String(), "added=[redis_2]")
	assert.Contains(t, stderr.String(), "what was written to a key before stays on the servers that held it", "a node added moves keys, not their data")
	require.Eventually(t, func() bool {
		code, body := readyz()
		return code == http.StatusServiceUnavailable && strings.Contains(body, "node redis_2: no server up")
	}, 10*time.Second, 20*time.Millisecond, "the added node is in the client")

	// A file that does not load is logged with its line, and the running
	// configuration kept.
	reload(t, stderr, cfg, "nodes:\n\tredis_1: {address: \"h:1\"}\n", "reload refused")
	assert.Contains(t, stderr.String(), "a tab indents this line; YAML indents with spaces (line 2)")
	code, _ = readyz()
	assert.Equal(t, http.StatusServiceUnavailable, code, "redis_2 is still there")

	// Options wait for a restart, and say so.
	reload(t, stderr, cfg, strings.Replace(two, "command_timeout: 1s", "command_timeout: 2s", 1), "reload: no node changed")
	assert.Contains(t, stderr.String(), "reload: the options in the federation file changed; they take effect at a restart")

	reload(t, stderr, cfg, one, "federation file reloaded")
	assert.Contains(t, stderr.String(), "removed=[redis_2]")
	code, body := readyz()
	assert.Equal(t, http.StatusOK, code, body)
}

// sync and a reloaded file: a node that gains a server is replicated
// without a restart, from the cursors the servers kept; a refused file
// leaves the syncer running as it was.
func TestSyncReloadsOnSIGHUP(t *testing.T) {
	servers := redistest.StartN(t, 4)
	addrs := make([]string, len(servers))
	for i, s := range servers {
		addrs[i] = s.Addr()
	}
	before := fmt.Sprintf("nodes:\n  redis_1: {addresses: [%q, %q]}\n  redis_2: {address: %q}\n", addrs[0], addrs[1], addrs[2]) + reloadOptions
	cfg := writeConfig(t, before)
	_, stderr := startDaemon(t, "syncer running", "sync", "--config", cfg, "--local", addrs[0]+","+addrs[2],
		"--poll", "20ms", "--no-anti-entropy")
	require.Contains(t, stderr.String(), "links=1")

	c := fedtest.NewClient(t, federated.Config{Nodes: map[string]federated.Node{
		"redis_1": {Addresses: addrs[:2]}, "redis_2": {Addresses: addrs[2:]}}, Options: fedtest.Options()})
	ctx := context.Background()
	now := time.Now()
	point := func(addr, host string) string {
		key := fedtest.MustKey(t, c, now, host, "cpu")
		_, err := merge(ctx, c, addr, []journal.KeyMembers{{Key: key, Members: []string{fmt.Sprintf("%d:1", now.Unix())}}})
		require.NoError(t, err)
		return key
	}
	copied := func(addr, key, msg string) {
		t.Helper()
		rc := fedtest.DirectClient(t, addr)
		require.Eventually(t, func() bool { return rc.Exists(ctx, key).Val() == 1 }, 10*time.Second, 20*time.Millisecond,
			"%s: %s", msg, stderr)
	}
	copied(addrs[0], point(addrs[1], "web1"), "redis_1 replicates before the reload")
	cursors := fedtest.DirectClient(t, addrs[0])
	cursor, err := cursors.HGet(ctx, journal.CursorKey, addrs[1]).Float64()
	require.NoError(t, err)

	after := fmt.Sprintf("nodes:\n  redis_1: {addresses: [%q, %q]}\n  redis_2: {addresses: [%q, %q]}\n", addrs[0], addrs[1], addrs[2], addrs[3]) + reloadOptions
	reload(t, stderr, cfg, after, "federation file reloaded")
	assert.Contains(t, stderr.String(), "changed=[redis_2]")
	assert.NotContains(t, stderr.String(), "options in the federation file changed", "the options are the same")
	require.Eventually(t, func() bool {
		return strings.Contains(stderr.String(), "link started") && strings.Contains(stderr.String(), "peer="+addrs[3])
	}, 5*time.Second, 10*time.Millisecond, "%s", stderr)
	assert.NotContains(t, stderr.String(), "link stopped", "the links that stay run on")
	copied(addrs[2], point(addrs[3], "web2"), "redis_2's new server is pulled from")
	copied(addrs[0], point(addrs[1], "web3"), "redis_1 still replicates")
	resumed, err := cursors.HGet(ctx, journal.CursorKey, addrs[1]).Float64()
	require.NoError(t, err)
	assert.GreaterOrEqual(t, resumed, cursor, "the cursor of redis_1's link is kept across the reload")

	reload(t, stderr, cfg, "nodes: {redis_1: {address: \""+addrs[1]+"\"}}\n", "reload refused")
	assert.Contains(t, stderr.String(), "no --local server is in the federation file")
	copied(addrs[2], point(addrs[3], "web4"), "the running configuration is kept")
}

// A reload brings a client to a file's nodes whatever changes: every
// node replaced by others, a node given other servers, nodes removed,
// the only node renamed, every node merged into one group, two nodes
// that swap servers. Each of the last three failed when the nodes were
// changed one at a time, and the log said the reload was partly applied
// where nothing was.
func TestApplyNodes(t *testing.T) {
	servers := redistest.StartN(t, 4)
	addrs := make([]string, len(servers))
	for i, s := range servers {
		addrs[i] = s.Addr()
	}
	c := fedtest.NewClient(t, federated.Config{Nodes: map[string]federated.Node{"a": {Address: addrs[0]}}, Options: fedtest.Options()})
	nodesOf := func() map[string][]string {
		out := make(map[string][]string)
		for _, name := range c.Nodes() {
			out[name], _ = c.AllServers(name)
		}
		return out
	}
	for _, step := range []map[string]federated.Node{
		{"b": {Address: addrs[0]}, "c": {Address: addrs[1]}}, // the only node goes; its server moves
		{"b": {Addresses: []string{addrs[0], addrs[2]}}, "c": {Address: addrs[1]}},
		{"c": {Address: addrs[3]}},
		{"c": {Address: addrs[3]}, "d": {Address: addrs[1]}},
		// A server moves from d to c, which sorts before it.
		{"c": {Addresses: []string{addrs[3], addrs[1]}}, "d": {Address: addrs[2]}},
		{"e": {Addresses: []string{addrs[3], addrs[1], addrs[2]}}},                 // merged into one group
		{"f": {Addresses: []string{addrs[3], addrs[1], addrs[2]}}},                 // the only node renamed
		{"x": {Address: addrs[0]}, "y": {Addresses: []string{addrs[1], addrs[2]}}}, // split
		{"x": {Addresses: []string{addrs[1], addrs[2]}}, "y": {Address: addrs[0]}}, // swapped
	} {
		cfg := federated.Config{Nodes: step}
		ch := diffNodes(c, cfg)
		require.False(t, ch.none())
		require.NoError(t, c.SetNodes(cfg.Nodes), "%v", step)
		want := make(map[string][]string)
		for name, n := range step {
			want[name] = n.Servers()
		}
		assert.Equal(t, want, nodesOf())
		assert.True(t, diffNodes(c, cfg).none())
		for name, n := range step {
			for _, addr := range n.Servers() {
				require.NoError(t, c.Group(name).Set(context.Background(), "k", addr, 0).Err())
			}
		}
	}
	// A file the client refuses changes nothing.
	err := c.SetNodes(map[string]federated.Node{"z": {Address: addrs[0]}, "w": {Address: addrs[0]}})
	require.ErrorContains(t, err, "is already in node")
	assert.Equal(t, map[string][]string{"x": {addrs[1], addrs[2]}, "y": {addrs[0]}}, nodesOf())
}

// A sync with no peer, allowed to run, waits for a reload that gives it
// one, even with nothing else to do (no anti-entropy).
func TestSyncWaitsForPeersOnSIGHUP(t *testing.T) {
	servers := redistest.StartN(t, 2)
	a, b := servers[0].Addr(), servers[1].Addr()
	cfg := writeConfig(t, fmt.Sprintf("nodes:\n  redis_1: {address: %q}\n", a)+reloadOptions)
	_, stderr := startDaemon(t, "syncer running", "sync", "--config", cfg, "--local", a,
		"--allow-no-peers", "--no-anti-entropy", "--poll", "20ms")
	require.Contains(t, stderr.String(), "links=0")

	reload(t, stderr, cfg, fmt.Sprintf("nodes:\n  redis_1: {addresses: [%q, %q]}\n", a, b)+reloadOptions, "federation file reloaded")
	require.Eventually(t, func() bool { return strings.Contains(stderr.String(), "link started") }, 5*time.Second, 10*time.Millisecond)
	pulls(t, a, b, "the peer the reload gave is pulled from: %s", stderr)
}

// A SIGHUP that comes while sync starts (reading its federation file, a
// FIFO here that the test writes when the command opens it) is a reload
// once the syncer runs: its default, before the command asked for it,
// ended the process, which systemd does not restart after a signal.
func TestSIGHUPWhileStartingIsAReload(t *testing.T) {
	servers := redistest.StartN(t, 2)
	addrs := redistest.Addrs(servers)
	doc := fmt.Sprintf("nodes:\n  redis_1: {addresses: [%q, %q]}\n", addrs[0], addrs[1])
	dir := t.TempDir()
	fifo, plain := filepath.Join(dir, "fed.yaml"), filepath.Join(dir, "plain.yaml")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	require.NoError(t, os.WriteFile(plain, []byte(doc), 0o600))
	// The file is written once the command opens it to read, once the
	// signal is handed out, to the command's channel too if it asked for
	// it by then; then a regular file takes its place, for the reload.
	fed := make(chan struct{})
	go func() {
		defer close(fed)
		w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
		if err != nil {
			return
		}
		seen := make(chan os.Signal, 1)
		signal.Notify(seen, syscall.SIGHUP)
		defer signal.Stop(seen)
		_ = syscall.Kill(os.Getpid(), syscall.SIGHUP)
		<-seen
		_, _ = io.WriteString(w, doc)
		_ = w.Close()
		_ = os.Rename(plain, fifo)
	}()
	_, stderr := startDaemon(t, "syncer running", "sync", "--config", fifo, "--local", addrs[1])
	<-fed
	require.Eventually(t, func() bool { return strings.Contains(stderr.String(), "reload: no node changed") },
		10*time.Second, 10*time.Millisecond, "the SIGHUP that came while sync started was a reload: %s", stderr)
}

// sync takes a --local server spelt another way than the file spells it,
// as the file's checks compare servers (REDFED_SYNC_LOCAL=db1:6379 for a
// file that says DB1:6379): it refused it as not a server of the file.
func TestSyncLocalSpeltAnotherWay(t *testing.T) {
	servers := redistest.StartN(t, 2)
	a, b := servers[0].Addr(), servers[1].Addr()
	cfg := writeConfig(t, fmt.Sprintf("nodes:\n  redis_1: {addresses: [%q, %q]}\n", "LOCALHOST"+strings.TrimPrefix(a, "127.0.0.1"), b))
	_, stderr := startDaemon(t, "syncer running", "sync", "--config", cfg, "--local", "localhost"+strings.TrimPrefix(a, "127.0.0.1"),
		"--poll", "20ms", "--no-anti-entropy")
	require.Contains(t, stderr.String(), "links=1")
	pulls(t, a, b, "%s", stderr)
}

// pulls writes a point to b, of a group of a and b, and waits until a
// holds it: a's syncer pulls b. msgAndArgs say what failed.
func pulls(t *testing.T, a, b string, msgAndArgs ...any) {
	t.Helper()
	c := fedtest.NewClient(t, federated.Config{Nodes: map[string]federated.Node{"redis_1": {Addresses: []string{a, b}}},
		Options: fedtest.Options()})
	ctx := context.Background()
	key := fedtest.MustKey(t, c, time.Now(), "web1", "cpu")
	_, err := merge(ctx, c, b, []journal.KeyMembers{{Key: key, Members: []string{fmt.Sprintf("%d:1", time.Now().Unix())}}})
	require.NoError(t, err)
	rc := fedtest.DirectClient(t, a)
	require.Eventually(t, func() bool { return rc.Exists(ctx, key).Val() == 1 }, 10*time.Second, 20*time.Millisecond, msgAndArgs...)
}
