package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated/internal/redistest"
)

// serve goes on when the reader of its output goes away, as a "| tee"
// that exits does: a log line written after is lost, and the process is
// not. It was ended by SIGPIPE at its next log line, without writing the
// Graphite lines it had received.
func TestServeSurvivesABrokenPipe(t *testing.T) {
	binary := buildRedfed(t)
	s := redistest.StartT(t)
	one := fmt.Sprintf("nodes:\n  redis_1: {address: %q}\n", s.Addr()) + reloadOptions
	cfg := writeConfig(t, one)
	stderrR, stderrW, err := os.Pipe()
	require.NoError(t, err)
	stdoutR, stdoutW, err := os.Pipe()
	require.NoError(t, err)
	cmd := exec.Command(binary, "serve", "--config", cfg, "--listen", "127.0.0.1:0", "--check-every", "0")
	cmd.Stdout, cmd.Stderr = stdoutW, stderrW
	require.NoError(t, cmd.Start())
	var waitErr error
	exited := make(chan struct{})
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	stdoutW.Close()
	stderrW.Close()
	line, err := bufio.NewReader(stdoutR).ReadString('\n')
	require.NoError(t, err)
	m := regexp.MustCompile(`dashboard: http://(\S+)/`).FindStringSubmatch(line)
	require.NotNil(t, m, line)
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + m[1] + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}

	// The readers go away; a reload that adds a node logs lines.
	stdoutR.Close()
	stderrR.Close()
	two := fmt.Sprintf("nodes:\n  redis_1: {address: %q}\n  redis_2: {address: \"127.0.0.1:1\"}\n", s.Addr()) + reloadOptions
	require.NoError(t, os.WriteFile(cfg, []byte(two), 0o600))
	require.NoError(t, cmd.Process.Signal(syscall.SIGHUP))
	require.Eventually(t, func() bool {
		code, body := get("/readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "redis_2")
	}, 10*time.Second, 20*time.Millisecond, "the reload is done")
	code, _ := get("/healthz")
	assert.Equal(t, http.StatusOK, code, "serve runs on")

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-exited:
		assert.NoError(t, waitErr, "serve stops as it does with a reader")
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop on SIGTERM")
	}
}
