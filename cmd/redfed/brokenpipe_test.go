package main

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"regexp"
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
	cfg := writeConfig(t, fmt.Sprintf("nodes:\n  redis_1: {address: %q}\n", s.Addr()))
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
	healthz := "http://" + m[1] + "/healthz"

	// The readers go away; a reload logs a line.
	stdoutR.Close()
	stderrR.Close()
	require.NoError(t, cmd.Process.Signal(syscall.SIGHUP))
	time.Sleep(500 * time.Millisecond)
	select {
	case <-exited:
		t.Fatalf("serve ended: %v", waitErr)
	default:
	}
	resp, err := http.Get(healthz)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-exited:
		assert.NoError(t, waitErr, "serve stops as it does with a reader")
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop on SIGTERM")
	}
}
