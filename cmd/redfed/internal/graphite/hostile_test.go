package graphite

import (
	"fmt"
	"io"
	"math"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated/metrics"
)

// Senders that send a byte at a time and never end their line hold a
// connection for IdleTimeout, not forever, however steadily they trickle.
func TestSlowSendersAreClosed(t *testing.T) {
	const idle = 400 * time.Millisecond
	f := startServer(t, Options{IdleTimeout: idle}, nil)
	const senders = 4
	var wg sync.WaitGroup
	start := time.Now()
	for range senders {
		c := f.dial(t)
		wg.Go(func() {
			for i := 0; ; i++ {
				if _, err := c.Write([]byte{"collectd.web1.slow 1 "[i%21]}); err != nil {
					return
				}
				time.Sleep(20 * time.Millisecond)
				if time.Since(start) > 10*time.Second {
					t.Error("a trickling sender is still connected after 10s")
					return
				}
			}
		})
		wg.Go(func() {
			_, _ = io.Copy(io.Discard, c) // returns when the Server closes it
			_ = c.Close()
		})
	}
	wg.Wait()
	assert.GreaterOrEqual(t, time.Since(start), idle)
	st := f.waitStats(t, func(st Stats) bool { return st.Conns == 0 })
	assert.Equal(t, int64(senders), st.Bad.Cut, "each one's unfinished line is counted")
}

// Lines with odd but valid numbers are stored as sent; odd invalid ones
// are counted, and never fail the batch of the good lines around them.
func TestOddLinesThroughTheStore(t *testing.T) {
	f := startServer(t, Options{LogInterval: time.Hour}, nil)
	c := f.dial(t)
	lines := []string{
		fmt.Sprintf("collectd.odd.v 1e308 %d\r\n", at(0)),
		fmt.Sprintf("collectd.odd.v -0 %d\n", at(1)),
		fmt.Sprintf("collectd.odd.v 1e-320 %d\n", at(2)),
		fmt.Sprintf("collectd.odd.v 5e-324 %d.25\n", at(3)),
		fmt.Sprintf("collectd.odd.v -1.7976931348623157e308 %d.999999\n", at(4)),
		fmt.Sprintf("collectd.odd.v 7 %d\n", at(5)),
		fmt.Sprintf("collectd.odd.v 7 %d\n", at(5)), // the same point again
		fmt.Sprintf("collectd.odd.v\t8\t%d\t\n", at(6)),
		fmt.Sprintf("collectd.ünï.çödé 9 %d\n", at(7)),
		fmt.Sprintf("collectd.odd.%s 10 %d\n", strings.Repeat("m", 512), at(8)), // a metric name of 512 bytes
		fmt.Sprintf("collectd.odd.%s 10 %d\n", strings.Repeat("m", 513), at(8)), // one over
		fmt.Sprintf("collectd.odd\x00.v 1 %d\n", at(9)),
		fmt.Sprintf("collectd.odd.v nan %d\n", at(9)),
		fmt.Sprintf("collectd.odd.v 1e309 %d\n", at(9)),
		fmt.Sprintf("collectd.odd.v 1e-400 %d\n", at(9)),
		"collectd.odd.v 1 -2\n",
		"collectd.odd.v 1 253402300800\n",
		"collectd.odd.v 1 1e400\n",
		"collectd.odd.v 1 nan\n", // a timestamp that is not finite
		"\x00\x00\x00\n",
		"\r\n",
	}
	_, err := io.WriteString(c, strings.Join(lines, ""))
	require.NoError(t, err)
	sec := func(s int, frac float64) time.Time {
		return time.Unix(at(s), int64(frac*1e9)).UTC()
	}
	assert.Equal(t, []metrics.Point{
		{Time: sec(0, 0), Value: 1e308},
		{Time: sec(1, 0), Value: math.Copysign(0, -1)},
		{Time: sec(2, 0), Value: 1e-320},
		{Time: sec(3, 0.25), Value: 5e-324},
		{Time: sec(4, 0.999999), Value: -math.MaxFloat64},
		{Time: sec(5, 0), Value: 7},
		{Time: sec(6, 0), Value: 8},
	}, f.waitPoints(t, "odd", "v", 7))
	assert.Len(t, f.waitPoints(t, "ünï", "çödé", 1), 1)
	assert.Len(t, f.waitPoints(t, "odd", strings.Repeat("m", 512), 1), 1)
	st := f.waitStats(t, func(st Stats) bool { return st.Bad.Total() == 10 && st.Written == 10 })
	assert.Equal(t, Stats{Lines: 20, Written: 10, Conns: 1,
		Bad: BadLines{Unmapped: 2, NotFinite: 1, Malformed: 4, Timestamp: 3}}, st)
}

// A Writer that fails (Redis down) for longer than RetryFor costs the
// batch, which is counted and logged with its sender; the connection goes
// on, and its later lines are written once Redis is back.
func TestFailedWriteKeepsTheConnection(t *testing.T) {
	f := startServer(t, Options{LogInterval: time.Hour, RetryFor: 300 * time.Millisecond}, nil)
	c := f.dial(t)
	for _, s := range f.servers {
		require.NoError(t, s.Kill())
	}
	_, err := fmt.Fprintf(c, "collectd.down.v 1 %d\n", at(0))
	require.NoError(t, err)
	st := f.waitStats(t, func(st Stats) bool { return st.Failed == 1 })
	assert.Equal(t, int64(0), st.Written)
	assert.Equal(t, []any{c.LocalAddr().String()}, f.logs.Values("graphite: write failed", "peer"))
	for _, s := range f.servers {
		require.NoError(t, s.Restart())
	}
	for i := 1; f.srv.Stats().Written == 0; i++ {
		_, err := fmt.Fprintf(c, "collectd.down.v %d %d\n", i, at(i))
		require.NoError(t, err, "the connection is still served")
		require.Less(t, i, 200, "no write succeeded after the restart")
		time.Sleep(50 * time.Millisecond)
	}
	assert.NotEmpty(t, f.points(t, "down", "v"))
}

// A batch whose write fails while Redis is down is written again until
// Redis is back, reading nothing more from its connection meanwhile: its
// points are not lost, and the lines sent after it wait in the
// connection.
func TestFailedWriteIsWrittenAgain(t *testing.T) {
	f := startServer(t, Options{LogInterval: time.Hour}, nil)
	c := f.dial(t)
	for _, s := range f.servers {
		require.NoError(t, s.Kill())
	}
	_, err := fmt.Fprintf(c, "collectd.again.v 1 %d\n", at(0))
	require.NoError(t, err)
	f.waitStats(t, func(st Stats) bool { return st.Retried >= 2 })
	_, err = fmt.Fprintf(c, "collectd.again.v 2 %d\n", at(1))
	require.NoError(t, err)
	assert.Never(t, func() bool { return f.srv.Stats().Lines > 1 }, 300*time.Millisecond, 20*time.Millisecond,
		"nothing more is read while the batch waits")
	for _, s := range f.servers {
		require.NoError(t, s.Restart())
	}
	st := f.waitStats(t, func(st Stats) bool { return st.Written == 2 })
	assert.Zero(t, st.Failed)
	assert.Len(t, f.points(t, "again", "v"), 2)
	assert.Empty(t, f.logs.Values("graphite: write failed", "peer"))
}

// Close while the Redis servers are stopped (SIGSTOP) and a batch is being
// written returns once the write times out, not never.
func TestCloseWithRedisStopped(t *testing.T) {
	f := startServer(t, Options{}, nil)
	c := f.dial(t)
	for _, s := range f.servers {
		require.NoError(t, s.Pause())
	}
	t.Cleanup(func() {
		for _, s := range f.servers {
			_ = s.Resume()
		}
	})
	_, err := fmt.Fprintf(c, "collectd.stopped.v 1 %d\ncollectd.stopped.w 1 %d\n", at(0), at(0))
	require.NoError(t, err)
	f.waitStats(t, func(st Stats) bool { return st.Lines == 2 })
	start := time.Now()
	closed := make(chan error, 1)
	go func() { closed <- f.srv.Close() }()
	select {
	case err := <-closed:
		require.NoError(t, err)
	case <-time.After(15 * time.Second):
		t.Fatal("Close has not returned 15s after it was called, with the command timeout at 2s")
	}
	assert.GreaterOrEqual(t, time.Since(start), time.Second, "Close waited for the write")
	assert.Equal(t, int64(2), f.srv.Stats().Failed, "the batch failed, and says so")
}

// A datagram of 64 KiB, many lines and a last one without its end of line,
// is read whole.
func TestLargeDatagram(t *testing.T) {
	f := startServer(t, Options{}, nil)
	u, err := net.Dial("udp", f.srv.UDPAddr().String())
	require.NoError(t, err)
	defer u.Close()
	var b strings.Builder
	n := 0
	for {
		line := fmt.Sprintf("collectd.big.v %d %d\n", n, at(n))
		if b.Len()+len(line) > 65507 {
			break
		}
		b.WriteString(line)
		n++
	}
	datagram := strings.TrimSuffix(b.String(), "\n")
	_, err = io.WriteString(u, datagram)
	require.NoError(t, err)
	points := f.waitPoints(t, "big", "v", n)
	assert.Equal(t, float64(n-1), points[n-1].Value, "the last line, without its end of line")
	st := f.waitStats(t, func(st Stats) bool { return st.Written == int64(n) })
	assert.Equal(t, BadLines{}, st.Bad)
}
