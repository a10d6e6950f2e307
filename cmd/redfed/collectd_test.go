package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// collectdConfig is the collectd configuration of TestCollectdIntoServe:
// the README's write_graphite snippet, sending every second. %[1]s is the
// test's directory, %[2]s and %[3]s the listener's host and port.
const collectdConfig = `Hostname "collectd-test.example"
FQDNLookup false
BaseDir "%[1]s"
PIDFile "%[1]s/collectd.pid"
Interval 1

LoadPlugin cpu
LoadPlugin memory
LoadPlugin load
LoadPlugin write_graphite

<Plugin write_graphite>
  <Node "redfed">
    Host "%[2]s"
    Port "%[3]s"
    Protocol "tcp"
    Prefix "collectd."
    EscapeCharacter "_"
    SeparateInstances false
    AlwaysAppendDS false
    StoreRates true
  </Node>
</Plugin>
`

// startCollectd runs the real collectd in the foreground, sending to the
// Graphite listener at addr, and stops it when the test ends. A missing
// collectd fails the test.
func startCollectd(t *testing.T, addr string) *syncBuffer {
	t.Helper()
	bin, err := exec.LookPath("collectd")
	if err != nil {
		bin, err = exec.LookPath("/usr/sbin/collectd")
	}
	if err != nil {
		t.Fatalf("collectd is not installed (%v): it comes in Debian's collectd-core, which scripts/test installs", err)
	}
	host, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	dir := t.TempDir()
	path := filepath.Join(dir, "collectd.conf")
	require.NoError(t, os.WriteFile(path, []byte(fmt.Sprintf(collectdConfig, dir, host, port)), 0o600))
	out := &syncBuffer{}
	cmd := exec.Command(bin, "-f", "-C", path)
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Errorf("collectd did not stop on SIGTERM within 10s; killed. Its output:\n%s", out)
		}
	})
	return out
}

// collectd's write_graphite sends its cpu, memory and load values to
// serve's Graphite listener, and they are in the store within seconds,
// as query and metrics show them.
func TestCollectdIntoServe(t *testing.T) {
	cfgPath, _ := startFederation(t, 2)
	addr := freeAddr(t)
	startServe(t, "--config", cfgPath, "--graphite-listen", addr)
	out := startCollectd(t, addr)

	// collectd escapes the dots of its host name with EscapeCharacter.
	const collectdHost = "collectd-test_example"
	// The first interval of a CPU counter is NaN, a line that is skipped;
	// the second has values.
	want := []string{"cpu-0.cpu-idle", "cpu-0.cpu-user", "load.load.shortterm", "memory.memory-used"}
	var listed string
	ok := assert.Eventually(t, func() bool {
		code, stdout, _ := runCLI(t, "", "metrics", "--config", cfgPath, collectdHost)
		listed = stdout
		if code != 0 {
			return false
		}
		for _, m := range want {
			if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(m) + `$`).MatchString(stdout) {
				return false
			}
		}
		return true
	}, 20*time.Second, 250*time.Millisecond, "metrics of %s: %q, want %q among them", collectdHost, listed, want)
	if !ok {
		t.Fatalf("collectd's output:\n%s", out)
	}
	// The points are waited for too: a query's range ends at its now,
	// and write_graphite rounds collectd's time to the nearest second, up
	// to half a second ahead of it (a query just after the point came
	// found nothing, on a loaded machine).
	point := regexp.MustCompile(`(?m)^\d{4}-\d\d-\d\dT[0-9:.]+Z +[-+0-9.e]+$`)
	for _, m := range want {
		var stdout, errOut string
		assert.Eventually(t, func() bool {
			var code int
			code, stdout, errOut = runCLI(t, "", "query", "--config", cfgPath, collectdHost, m, "--from", "-1m")
			return code == 0 && point.MatchString(stdout)
		}, 20*time.Second, 250*time.Millisecond, "%s has points: %q %q", m, stdout, errOut)
	}
}
