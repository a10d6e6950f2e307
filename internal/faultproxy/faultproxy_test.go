package faultproxy_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/redfed/federated/internal/faultproxy"
	"github.com/redfed/federated/internal/redistest"
)

const (
	// stallTimeout is how long a call waits before a test concludes that
	// the proxy is holding or discarding its traffic.
	stallTimeout = 200 * time.Millisecond

	// waitFor bounds every require.Eventually.
	waitFor = 5 * time.Second
	tick    = 5 * time.Millisecond
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// start starts a redis-server and a proxy in front of it; both stop when
// the test ends, the proxy first.
func start(t *testing.T) (*faultproxy.Proxy, *redistest.Server) {
	t.Helper()
	s := redistest.StartT(t)
	p, err := faultproxy.New(s.Addr())
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Close()) })
	return p, s
}

// newClient returns a go-redis client for addr that never retries, closed
// when the test ends.
func newClient(t *testing.T, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{
		Addr:                     addr,
		MaxRetries:               -1,
		DialerRetries:            1,
		ContextTimeoutEnabled:    true,
		DisableIdentity:          true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func ping(c *redis.Client, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return c.Ping(ctx).Err()
}

// rawConn is a plain TCP connection speaking inline commands, for tests
// that must see exactly which bytes arrive and how the connection ends.
type rawConn struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return &rawConn{t: t, conn: conn, r: bufio.NewReader(conn)}
}

func (c *rawConn) send(cmd string) {
	c.t.Helper()
	require.NoError(c.t, c.conn.SetWriteDeadline(time.Now().Add(time.Second)))
	_, err := io.WriteString(c.conn, cmd+"\r\n")
	require.NoError(c.t, err, "send %q", cmd)
}

// readLine reads one reply line, waiting at most timeout.
func (c *rawConn) readLine(timeout time.Duration) (string, error) {
	require.NoError(c.t, c.conn.SetReadDeadline(time.Now().Add(timeout)))
	line, err := c.r.ReadString('\n')
	return strings.TrimSuffix(line, "\r\n"), err
}

// expect reads one reply line and requires it to be want.
func (c *rawConn) expect(want string) {
	c.t.Helper()
	got, err := c.readLine(2 * time.Second)
	require.NoError(c.t, err)
	require.Equal(c.t, want, got)
}

// expectStall requires the next read to time out: no data, no EOF, no RST.
func (c *rawConn) expectStall() {
	c.t.Helper()
	got, err := c.readLine(stallTimeout)
	require.Truef(c.t, isTimeout(err), "read got %q, %v; want a timeout", got, err)
}

// dialAndRead connects to addr and reads a line, for a proxy that resets
// new connections. It returns the error of the dial, which fails if the RST
// comes before connect returns, or else of the read.
func dialAndRead(t *testing.T, addr string) error {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(2*time.Second)))
	_, err = bufio.NewReader(conn).ReadString('\n')
	return err
}

// isTimeout reports whether err is a context deadline or a network timeout;
// go-redis turns the context deadline into a socket deadline.
func isTimeout(err error) bool {
	var netErr net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &netErr) && netErr.Timeout()
}

// isDropped reports whether err is what a peer sees when its connection is
// reset: a reset, or EOF or a broken pipe when it raced with the RST.
func isDropped(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, syscall.EPIPE)
}

func TestNewRejectsBadTarget(t *testing.T) {
	t.Parallel()
	for _, target := range []string{"", "localhost", "127.0.0.1"} {
		t.Run(strconv.Quote(target), func(t *testing.T) {
			p, err := faultproxy.New(target)
			require.Errorf(t, err, "New(%q) got nil error, want one", target)
			require.Nil(t, p)
			require.Contains(t, err.Error(), "faultproxy: target")
		})
	}
}

func TestPingThroughProxy(t *testing.T) {
	t.Parallel()
	p, s := start(t)
	require.Equal(t, s.Addr(), p.Target())
	require.True(t, strings.HasPrefix(p.Addr(), "127.0.0.1:"), "Addr got %q, want 127.0.0.1:PORT", p.Addr())

	c := newClient(t, p.Addr())
	require.NoError(t, ping(c, time.Second))
	require.Equal(t, int64(1), p.Stats().Accepted)
}

func TestLatency(t *testing.T) {
	t.Parallel()
	p, _ := start(t)
	c := newClient(t, p.Addr())
	require.NoError(t, ping(c, time.Second)) // a pooled connection, so no dial is timed

	const delay = 50 * time.Millisecond
	p.SetLatency(delay)
	begin := time.Now()
	require.NoError(t, ping(c, time.Second))
	elapsed := time.Since(begin)
	require.GreaterOrEqualf(t, elapsed, 2*delay, "PING took %v, want at least 2*%v (both ways)", elapsed, delay)
	require.GreaterOrEqual(t, p.Stats().Delayed, int64(2), "Delayed")

	// Heal releases a chunk waiting out a long delay at once.
	p.SetLatency(time.Hour)
	r := dialRaw(t, p.Addr())
	r.send("PING")
	require.Eventually(t, func() bool { return p.Stats().Delayed >= 3 }, waitFor, tick)
	p.Heal()
	r.expect("+PONG")
}

func TestDropNew(t *testing.T) {
	t.Parallel()
	p, _ := start(t)
	pooled := newClient(t, p.Addr())
	require.NoError(t, ping(pooled, time.Second))

	p.DropNew(true)
	err := ping(newClient(t, p.Addr()), time.Second)
	require.Truef(t, isDropped(err), "PING on a new connection got %v, want a reset or EOF", err)

	err = dialAndRead(t, p.Addr())
	require.Truef(t, errors.Is(err, syscall.ECONNRESET), "got %v, want connection reset", err)

	require.NoError(t, ping(pooled, time.Second), "an open connection is not dropped")
	st := p.Stats()
	require.Equal(t, int64(2), st.Dropped, "Dropped")
	require.Equal(t, int64(3), st.Accepted, "Accepted")

	p.DropNew(false)
	require.NoError(t, ping(newClient(t, p.Addr()), time.Second))
}

func TestCutAll(t *testing.T) {
	t.Parallel()
	p, s := start(t)
	direct := newClient(t, s.Addr())
	c := newClient(t, p.Addr())
	r := dialRaw(t, p.Addr())
	r.send("PING")
	r.expect("+PONG")

	blpop := make(chan error, 1)
	go func() {
		blpop <- c.BLPop(context.Background(), 10*time.Second, "list").Err()
	}()
	require.Eventually(t, func() bool {
		info, err := direct.Info(context.Background(), "clients").Result()
		return err == nil && strings.Contains(info, "blocked_clients:1\r\n")
	}, waitFor, tick, "BLPOP never blocked on the server")

	p.CutAll()
	err := <-blpop
	require.Truef(t, isDropped(err), "in-flight BLPOP got %v, want a reset or EOF", err)
	_, err = r.readLine(time.Second)
	require.Truef(t, errors.Is(err, syscall.ECONNRESET), "read on an open connection got %v, want connection reset", err)

	require.Equal(t, int64(2), p.Stats().Reset, "Reset")
	require.Eventually(t, func() bool { return p.Stats().Active == 0 }, waitFor, tick, "connections still active")
	require.NoError(t, ping(c, time.Second), "a new connection after CutAll")
}

func TestBlackhole(t *testing.T) {
	t.Parallel()
	p, _ := start(t)
	c := newClient(t, p.Addr())
	require.NoError(t, ping(c, time.Second))
	old := dialRaw(t, p.Addr())
	old.send("PING")
	old.expect("+PONG")

	p.Blackhole(true)
	err := ping(c, stallTimeout)
	require.Truef(t, isTimeout(err), "PING got %v, want a timeout", err)
	old.send("PING")
	old.expectStall()
	fresh := dialRaw(t, p.Addr())
	fresh.send("ECHO fresh")
	fresh.expectStall()
	require.GreaterOrEqual(t, p.Stats().Held, int64(3), "Held")

	// Nothing was lost: held commands are answered, on old and new
	// connections alike.
	p.Heal()
	old.expect("+PONG")
	fresh.expect("$5")
	fresh.expect("fresh")
	require.NoError(t, ping(c, time.Second))
}

func TestCutDirection(t *testing.T) {
	t.Parallel()
	t.Run("to server", func(t *testing.T) {
		t.Parallel()
		p, _ := start(t)
		c := newClient(t, p.Addr())
		require.NoError(t, ping(c, time.Second))
		r := dialRaw(t, p.Addr())

		p.CutDirection(true, false)
		err := ping(c, stallTimeout)
		require.Truef(t, isTimeout(err), "PING got %v, want a timeout", err)
		r.send("ECHO lost")
		r.expectStall()
		require.GreaterOrEqual(t, p.Stats().Discarded, int64(2), "Discarded")

		// The connection stayed open, and the discarded command is gone.
		p.Heal()
		r.send("PING")
		r.expect("+PONG")
	})
	t.Run("to client", func(t *testing.T) {
		t.Parallel()
		p, s := start(t)
		direct := newClient(t, s.Addr())
		r := dialRaw(t, p.Addr())

		p.CutDirection(false, true)
		r.send("INCR counter")
		r.expectStall()
		// The command went through; only its reply was lost.
		require.Eventually(t, func() bool {
			n, err := direct.Get(context.Background(), "counter").Int()
			return err == nil && n == 1
		}, waitFor, tick, "INCR never reached the server")
		require.Eventually(t, func() bool { return p.Stats().Discarded == 1 }, waitFor, tick, "Discarded")

		p.CutDirection(false, false)
		r.send("INCR counter")
		r.expect(":2")
	})
}

func TestStats(t *testing.T) {
	t.Parallel()
	p, _ := start(t)
	require.Equal(t, faultproxy.Stats{}, p.Stats())

	r := dialRaw(t, p.Addr())
	r.send("PING") // "PING\r\n", 6 bytes
	r.expect("+PONG")
	// A copier counts after its write returns, which may be after the
	// client has read the reply.
	want := faultproxy.Stats{Accepted: 1, Active: 1, BytesToServer: 6, BytesToClient: 7}
	require.Eventually(t, func() bool { return p.Stats() == want }, waitFor, tick,
		"Stats never reached %+v", want)

	require.NoError(t, r.conn.Close())
	require.Eventually(t, func() bool { return p.Stats().Active == 0 }, waitFor, tick, "Active after close")

	p.DropNew(true)
	require.Error(t, dialAndRead(t, p.Addr()))
	p.Heal()
	st := p.Stats()
	require.Equal(t, int64(2), st.Accepted, "Accepted")
	require.Equal(t, int64(1), st.Dropped, "Dropped")
	require.Equal(t, int64(0), st.Active, "Active")
}

func TestTargetDown(t *testing.T) {
	t.Parallel()
	p, s := start(t)
	r := dialRaw(t, p.Addr())
	r.send("PING")
	r.expect("+PONG")

	// The server's end is forwarded: its close reaches the client as EOF.
	require.NoError(t, s.Kill())
	_, err := r.readLine(2 * time.Second)
	require.Truef(t, isDropped(err), "read after Kill got %v, want EOF or reset", err)
	require.Equal(t, int64(1), p.Stats().Active, "Active while half-closed")
	require.NoError(t, r.conn.Close())
	require.Eventually(t, func() bool { return p.Stats().Active == 0 }, waitFor, tick, "Active after both ends closed")

	// With nothing to dial, a new client is reset.
	err = dialAndRead(t, p.Addr())
	require.Truef(t, errors.Is(err, syscall.ECONNRESET), "got %v, want connection reset", err)
	require.Equal(t, int64(1), p.Stats().DialErrors, "DialErrors")

	require.NoError(t, s.Restart())
	require.NoError(t, ping(newClient(t, p.Addr()), time.Second))
}

func TestCloseUnblocksEverything(t *testing.T) {
	t.Parallel()
	_, s := start(t)
	p, err := faultproxy.New(s.Addr())
	require.NoError(t, err)

	idle := dialRaw(t, p.Addr())
	idle.send("PING")
	idle.expect("+PONG") // both copiers now block in Read
	p.SetLatency(time.Hour)
	delayed := dialRaw(t, p.Addr())
	delayed.send("PING")
	p.Blackhole(true)
	held := dialRaw(t, p.Addr())
	require.Eventually(t, func() bool { return p.Stats().Active == 3 }, waitFor, tick, "Active")

	begin := time.Now()
	require.NoError(t, p.Close())
	require.Less(t, time.Since(begin), time.Second, "Close took too long")
	require.NoError(t, p.Close(), "second Close")
	require.Equal(t, int64(0), p.Stats().Active, "Active after Close")

	for name, r := range map[string]*rawConn{"idle": idle, "delayed": delayed, "held": held} {
		_, err := r.readLine(time.Second)
		require.Truef(t, isDropped(err), "%s connection: read got %v, want EOF or reset", name, err)
	}
	_, err = net.DialTimeout("tcp", p.Addr(), time.Second)
	require.Error(t, err, "dial after Close")
}
