package redistest_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/redfed/federated/internal/redistest"
)

// orphanEnv makes the test binary act as a helper for
// TestServerDiesWithTestBinary: start a server in the named directory,
// print its PID and exit without stopping it.
const orphanEnv = "REDISTEST_ORPHAN_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(orphanEnv); dir != "" {
		s, err := redistest.Start(redistest.Options{Dir: dir})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		fmt.Println(s.PID())
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// newClient returns a go-redis client for s that gives up quickly, closed
// when the test ends.
func newClient(t *testing.T, s *redistest.Server) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{
		Addr:        s.Addr(),
		DialTimeout: time.Second,
		MaxRetries:  -1,
		// Without this go-redis ignores the context deadline on the socket
		// and a call to a paused server blocks for ReadTimeout.
		ContextTimeoutEnabled: true,
	})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func ping(c *redis.Client, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return c.Ping(ctx).Err()
}

func TestStartAnswersPing(t *testing.T) {
	t.Parallel()
	s := redistest.StartT(t)

	require.Equal(t, "127.0.0.1:"+strconv.Itoa(s.Port()), s.Addr())
	require.True(t, s.Running())
	require.Positive(t, s.PID())
	require.NoError(t, ping(newClient(t, s), time.Second))
}

func TestKillThenRestartOnSameAddress(t *testing.T) {
	t.Parallel()
	s := redistest.StartT(t)
	c := newClient(t, s)
	ctx := context.Background()
	addr, pid := s.Addr(), s.PID()
	require.NoError(t, c.Set(ctx, "k", "v", 0).Err())

	require.NoError(t, s.Kill())
	require.False(t, s.Running())
	require.Zero(t, s.PID())
	_, err := net.Dial("tcp", addr)
	require.ErrorIs(t, err, syscall.ECONNREFUSED, "dial %s after Kill", addr)
	require.Error(t, ping(c, time.Second))
	require.NoError(t, s.Kill(), "Kill of a killed server")

	require.NoError(t, s.Restart())
	require.Equal(t, addr, s.Addr())
	require.NotEqual(t, pid, s.PID())
	require.Eventually(t, func() bool { return ping(c, time.Second) == nil },
		2*time.Second, 10*time.Millisecond, "ping after Restart")
	n, err := c.DBSize(ctx).Result()
	require.NoError(t, err)
	require.Zero(t, n, "keys after Restart, want an empty server")

	// Restart of a running server kills it first.
	pid = s.PID()
	require.NoError(t, s.Restart())
	require.NotEqual(t, pid, s.PID())
	require.Equal(t, addr, s.Addr())
	require.Eventually(t, func() bool { return ping(c, time.Second) == nil },
		2*time.Second, 10*time.Millisecond, "ping after second Restart")
}

func TestRestartWhilePortTaken(t *testing.T) {
	t.Parallel()
	s := redistest.StartT(t, redistest.Options{StartTimeout: 500 * time.Millisecond})
	require.NoError(t, s.Kill())
	l, err := net.Listen("tcp", s.Addr())
	require.NoError(t, err, "listen on the killed server's port")

	err = s.Restart()
	require.ErrorContains(t, err, "Address already in use")
	t.Logf("Restart while the port is taken: %v", err)
	require.False(t, s.Running())

	require.NoError(t, l.Close())
	require.NoError(t, s.Restart())
	require.NoError(t, ping(newClient(t, s), time.Second))
}

func TestPauseThenResume(t *testing.T) {
	t.Parallel()
	s := redistest.StartT(t)
	c := newClient(t, s)
	require.NoError(t, ping(c, time.Second))

	require.NoError(t, s.Pause())
	require.True(t, s.Running(), "a paused server is running")
	err := ping(c, 200*time.Millisecond)
	require.True(t, isTimeout(err), "ping of a paused server: got %v, want a timeout", err)
	// The kernel still completes the handshake; only the answer never comes.
	conn, err := net.DialTimeout("tcp", s.Addr(), time.Second)
	require.NoError(t, err, "dial a paused server")
	require.NoError(t, conn.Close())

	require.NoError(t, s.Resume())
	require.Eventually(t, func() bool { return ping(c, time.Second) == nil },
		2*time.Second, 10*time.Millisecond, "ping after Resume")
}

// isTimeout reports whether err is a context deadline or a network timeout;
// go-redis turns the context deadline into a socket deadline.
func isTimeout(err error) bool {
	var netErr net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &netErr) && netErr.Timeout()
}

func TestStopPausedServer(t *testing.T) {
	t.Parallel()
	s, err := redistest.Start(redistest.Options{})
	require.NoError(t, err)
	require.NoError(t, s.Pause())

	start := time.Now()
	require.NoError(t, s.Stop())
	require.Less(t, time.Since(start), time.Second, "Stop of a paused server should not need SIGKILL")
	require.False(t, s.Running())
}

func TestStartNGivesDistinctPorts(t *testing.T) {
	t.Parallel()
	servers := redistest.StartN(t, 4)

	require.Len(t, servers, 4)
	ports := map[int]bool{}
	for _, s := range servers {
		ports[s.Port()] = true
		require.NoError(t, ping(newClient(t, s), time.Second), "ping %s", s.Addr())
	}
	require.Len(t, ports, 4, "distinct ports in %v", redistest.Addrs(servers))
}

func TestStopIsIdempotent(t *testing.T) {
	t.Parallel()
	s, err := redistest.Start(redistest.Options{})
	require.NoError(t, err)
	dir := s.Dir()

	require.NoError(t, s.Stop())
	require.NoError(t, s.Stop())
	require.False(t, s.Running())
	require.NoDirExists(t, dir, "temporary directory after Stop")
	_, err = net.Dial("tcp", s.Addr())
	require.ErrorIs(t, err, syscall.ECONNREFUSED)
	require.ErrorIs(t, s.Kill(), redistest.ErrStopped)
	require.ErrorIs(t, s.Restart(), redistest.ErrStopped)
	require.ErrorIs(t, s.Pause(), redistest.ErrStopped)
}

func TestPauseOfKilledServer(t *testing.T) {
	t.Parallel()
	s := redistest.StartT(t)
	require.NoError(t, s.Kill())

	require.ErrorIs(t, s.Pause(), redistest.ErrNotRunning)
	require.ErrorIs(t, s.Resume(), redistest.ErrNotRunning)
}

func TestOptionsDirIsKept(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := redistest.Start(redistest.Options{Dir: dir})
	require.NoError(t, err)
	require.NoError(t, s.Stop())

	require.FileExists(t, fmt.Sprintf("%s/redis-%d.log", dir, s.Port()))
}

func TestRequirePass(t *testing.T) {
	t.Parallel()
	s := redistest.StartT(t, redistest.Options{Args: []string{"--requirepass", "secret"}})

	c := redis.NewClient(&redis.Options{Addr: s.Addr(), Password: "secret"})
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, ping(c, time.Second))
	require.Error(t, ping(newClient(t, s), time.Second), "ping without the password")
}

func TestStartErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts redistest.Options
		want string
	}{
		{"negative timeout", redistest.Options{StartTimeout: -time.Second}, "Options.StartTimeout"},
		{"reserved arg", redistest.Options{Args: []string{"--port", "1"}}, `Options.Args: "--port"`},
		{"bad arg", redistest.Options{Args: []string{"--no-such-directive", "x"}}, "no-such-directive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			s, err := redistest.Start(tt.opts)
			require.Nil(t, s)
			require.ErrorContains(t, err, tt.want)
			require.Less(t, time.Since(start), 2*time.Second, "a failed start should not wait for the timeout")
		})
	}
}

func TestBinaryNotOnPath(t *testing.T) {
	// t.Setenv forbids t.Parallel.
	t.Setenv("PATH", t.TempDir())

	_, err := redistest.Start(redistest.Options{})
	require.ErrorIs(t, err, redistest.ErrNotInstalled)
	require.ErrorContains(t, err,
		`redis-server not found on PATH: install it with "sudo apt-get install -y redis-server" (Debian/Ubuntu)`)

	_, err = redistest.Start(redistest.Options{Binary: "no-such-redis-server"})
	require.ErrorIs(t, err, redistest.ErrNotInstalled)
	require.ErrorContains(t, err, "no-such-redis-server")
}

func TestServerDiesWithTestBinary(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("relies on PR_SET_PDEATHSIG, Linux only")
	}
	t.Parallel()
	helper := exec.Command(os.Args[0], "-test.run=^$")
	helper.Env = append(os.Environ(), orphanEnv+"="+t.TempDir())
	var stderr bytes.Buffer
	helper.Stderr = &stderr
	out, err := helper.Output()
	require.NoError(t, err, "helper: %s", stderr.String())
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	require.NoError(t, err, "helper output %q", out)

	require.Eventually(t, func() bool { return dead(pid) }, 5*time.Second, 10*time.Millisecond,
		"redis-server pid %d still alive after its parent exited", pid)
}

// dead reports whether pid is gone or a zombie; a container's init may not
// reap orphans.
func dead(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// The state follows the command name, which is in parentheses.
	i := bytes.LastIndexByte(stat, ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z' || stat[i+2] == 'X'
}

func ExampleStart() {
	s, err := redistest.Start(redistest.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer func() { _ = s.Stop() }()
	addr := s.Addr()

	if err := s.Kill(); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("running after Kill:", s.Running())
	if err := s.Restart(); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("running after Restart:", s.Running())
	fmt.Println("same address:", s.Addr() == addr)
	// Output:
	// running after Kill: false
	// running after Restart: true
	// same address: true
}

func TestParseCommandStats(t *testing.T) {
	info := "# Commandstats\r\n" +
		"cmdstat_evalsha:calls=5,usec=10,usec_per_call=2.00,rejected_calls=1,failed_calls=1\r\n" +
		"cmdstat_zrangebyscore:calls=7,usec=3,usec_per_call=0.43,rejected_calls=0,failed_calls=0\r\n"
	got := redistest.ParseCommandStats(info)
	require.Equal(t, redistest.CommandStat{Calls: 5, Failed: 1, Rejected: 1, Usec: 10}, got["evalsha"])
	require.Equal(t, int64(3), got["evalsha"].Completed())
	require.Equal(t, int64(7), got["zrangebyscore"].Calls)
	require.NotContains(t, got, "get")
}

func TestCPUTimeCountsTheServersWork(t *testing.T) {
	s, err := redistest.Start(redistest.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Stop() })
	c := newClient(t, s)
	before, err := redistest.CPUTime([]*redistest.Server{s})
	require.NoError(t, err)
	start := time.Now()
	require.NoError(t, c.Eval(context.Background(), "local i = 0 while i < 20000000 do i = i + 1 end return i", nil).Err())
	busy := time.Since(start)
	after, err := s.CPUTime()
	require.NoError(t, err)
	// The loop is the server's own CPU: much of the time it took, though
	// on two cores shared with other test packages under way (go test
	// runs them at once) it can get less than half of one.
	assert.Greater(t, after-before, busy/4, "CPU time %v for a loop of %v", after-before, busy)
	assert.LessOrEqual(t, after-before, busy+50*time.Millisecond)

	require.NoError(t, s.Stop())
	_, err = s.CPUTime()
	assert.ErrorIs(t, err, redistest.ErrNotRunning)
}
