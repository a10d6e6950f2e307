package graphite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/fedtest"
	"github.com/redfed/federated/internal/redistest"
	"github.com/redfed/federated/metrics"
)

// day is the UTC day the tests' points are in.
var day = time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)

// fixture is a Server writing through a Recorder to two real redis-servers.
type fixture struct {
	servers []*redistest.Server
	store   *metrics.Store
	srv     *Server
	logs    *fedtest.Logs
}

// startServer starts two redis-servers and a Server on loopback with opts,
// whose Writer, when wrap is not nil, is wrap of the Recorder. Everything
// stops when the test ends, the Server first.
func startServer(t *testing.T, opts Options, wrap func(Writer) Writer) *fixture {
	t.Helper()
	servers := redistest.StartN(t, 2)
	client := fedtest.NewClient(t, federated.Config{Nodes: fedtest.SingleNodes(servers), Options: fedtest.Options()})
	rec := fedtest.NewRecorder(t, client, metrics.RecorderOptions{})
	f := &fixture{servers: servers, store: fedtest.NewStore(t, client), logs: &fedtest.Logs{}}
	opts.Writer = rec
	if wrap != nil {
		opts.Writer = wrap(rec)
	}
	opts.Logger = slog.New(f.logs)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	f.srv, err = Start(opts, smallBufferListener{ln}, pc)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, f.srv.Close()) })
	return f
}

// smallBufferListener gives every connection a receive buffer of 64 KiB,
// not the megabytes that Linux grows it to, so that a sender feels the
// Server's back-pressure after a few thousand lines.
type smallBufferListener struct{ net.Listener }

func (l smallBufferListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(64 << 10)
	}
	return c, err
}

func (f *fixture) dial(t *testing.T) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", f.srv.TCPAddr().String())
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// points returns the points of a series on day.
func (f *fixture) points(t *testing.T, host, metricName string) []metrics.Point {
	t.Helper()
	points, err := fedtest.RangeOf(t.Context(), f.store, host, metricName, day, day.Add(24*time.Hour))
	require.NoError(t, err)
	return points
}

// waitPoints waits until a series holds n points on day, and returns them.
func (f *fixture) waitPoints(t *testing.T, host, metricName string, n int) []metrics.Point {
	t.Helper()
	var points []metrics.Point
	require.Eventually(t, func() bool {
		points = f.points(t, host, metricName)
		return len(points) >= n
	}, 10*time.Second, 20*time.Millisecond, "series %s %s: %d points, want %d", host, metricName, len(points), n)
	require.Len(t, points, n)
	return points
}

// waitStats waits until ok holds for the Server's stats, and returns them.
func (f *fixture) waitStats(t *testing.T, ok func(Stats) bool) Stats {
	t.Helper()
	var st Stats
	require.Eventually(t, func() bool {
		st = f.srv.Stats()
		return ok(st)
	}, 10*time.Second, 10*time.Millisecond, "stats %+v", st)
	return st
}

// at returns the Unix time of second sec of day, as a line writes it.
func at(sec int) int64 { return day.Unix() + int64(sec) }

func TestTCPAndUDPLinesAreStored(t *testing.T) {
	f := startServer(t, Options{}, nil)

	c := f.dial(t)
	_, err := fmt.Fprintf(c, "collectd.web1_sfo.cpu-0.cpu-user 12.5 %d\ncollectd.web1_sfo.cpu-0.cpu-user 13 %d\r\n"+
		"collectd.web1_sfo.load.load.shortterm 0.25 %d.5\n", at(10), at(20), at(10))
	require.NoError(t, err)
	assert.Equal(t, []metrics.Point{
		{Time: time.Unix(at(10), 0).UTC(), Value: 12.5},
		{Time: time.Unix(at(20), 0).UTC(), Value: 13},
	}, f.waitPoints(t, "web1_sfo", "cpu-0.cpu-user", 2))
	assert.Equal(t, []metrics.Point{{Time: time.Unix(at(10), 5e8).UTC(), Value: 0.25}},
		f.waitPoints(t, "web1_sfo", "load.load.shortterm", 1))

	u, err := net.Dial("udp", f.srv.UDPAddr().String())
	require.NoError(t, err)
	defer u.Close()
	// A datagram's last line needs no end of line.
	_, err = fmt.Fprintf(u, "collectd.web2.memory.memory-used 1024 %d\ncollectd.web2.memory.memory-used 2048 %d", at(30), at(40))
	require.NoError(t, err)
	assert.Equal(t, []metrics.Point{
		{Time: time.Unix(at(30), 0).UTC(), Value: 1024},
		{Time: time.Unix(at(40), 0).UTC(), Value: 2048},
	}, f.waitPoints(t, "web2", "memory.memory-used", 2))

	st := f.waitStats(t, func(st Stats) bool { return st.Written == 5 })
	assert.Equal(t, Stats{Lines: 5, Written: 5, Conns: 1}, st)
}

// Bad lines among good ones are counted by reason, logged with the
// sender's address at most once per LogInterval, and skipped; the good
// ones are written.
func TestBadLinesAreCountedAndSkipped(t *testing.T) {
	f := startServer(t, Options{LogInterval: time.Hour}, nil)
	c := f.dial(t)
	var lines []string
	good := 0
	for i := range 10 {
		lines = append(lines,
			fmt.Sprintf("collectd.web1.df.used %d %d", i, at(i)), // good
			"collectd.web1.df.used 1",                            // malformed
			fmt.Sprintf("collectd.web1.df.used nan %d", at(i)),   // not finite
			"collectd.web1.df.used 1 -5",                         // timestamp
			fmt.Sprintf("other.web1.df.used 1 %d", at(i)),        // unmapped
			fmt.Sprintf("collectd.web:1.df.used 1 %d", at(i)),    // unmapped: ':' in the host
			// A blank line is no line at all: not counted.
			"",
		)
		good++
	}
	_, err := io.WriteString(c, strings.Join(lines, "\n")+"\n")
	require.NoError(t, err)

	points := f.waitPoints(t, "web1", "df.used", good)
	for i, p := range points {
		assert.Equal(t, metrics.Point{Time: time.Unix(at(i), 0).UTC(), Value: float64(i)}, p)
	}
	st := f.waitStats(t, func(st Stats) bool { return st.Lines == 60 && st.Written == 10 })
	assert.Equal(t, BadLines{Malformed: 10, NotFinite: 10, Timestamp: 10, Unmapped: 20}, st.Bad)
	assert.Equal(t, int64(10), st.Written)
	assert.Equal(t, int64(50), st.Bad.Total())

	peers := f.logs.Values("graphite: bad line skipped", "peer")
	require.Len(t, peers, 1, "50 bad lines in one LogInterval log once")
	assert.Equal(t, c.LocalAddr().String(), peers[0])
	assert.Equal(t, []any{"collectd.web1.df.used 1"}, f.logs.Values("graphite: bad line skipped", "line"))
}

// A line beyond MaxLineLen is skipped as it streams in, never buffered:
// 32 MiB of it leave the process's allocations almost where they were,
// and the line after it is written.
func TestLongLineIsRefusedWithoutMemoryGrowth(t *testing.T) {
	f := startServer(t, Options{}, nil)
	c := f.dial(t)
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	const sent = 32 << 20

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := io.WriteString(c, "collectd.web1.")
	require.NoError(t, err)
	for range sent / len(chunk) {
		_, err := c.Write(chunk)
		require.NoError(t, err)
	}
	_, err = fmt.Fprintf(c, " 1 %d\ncollectd.web1.after 7 %d\n", at(0), at(1))
	require.NoError(t, err)
	assert.Equal(t, []metrics.Point{{Time: time.Unix(at(1), 0).UTC(), Value: 7}}, f.waitPoints(t, "web1", "after", 1))
	runtime.ReadMemStats(&after)

	st := f.srv.Stats()
	assert.Equal(t, BadLines{TooLong: 1}, st.Bad)
	assert.Equal(t, int64(2), st.Lines)
	grown := after.TotalAlloc - before.TotalAlloc
	assert.Less(t, grown, uint64(sent/4), "allocated %d bytes while a line of %d bytes came in", grown, sent)
	assert.Equal(t, []string{"line too long: more than 4096 bytes"},
		errorTexts(f.logs.Values("graphite: bad line skipped", "error")))
}

func errorTexts(values []any) []string {
	var out []string
	for _, v := range values {
		out = append(out, fmt.Sprint(v))
	}
	return out
}

// gatedWriter holds every Write until open is closed.
type gatedWriter struct {
	w     Writer
	open  chan struct{}
	calls atomic.Int64
}

func (g *gatedWriter) Write(ctx context.Context, samples ...metrics.Sample) error {
	g.calls.Add(1)
	select {
	case <-g.open:
	case <-ctx.Done():
		return ctx.Err()
	}
	return g.w.Write(ctx, samples...)
}

// While a batch is being written nothing more is read from its
// connection, so the sender blocks; once the write is done, reading goes
// on and every line sent is written.
func TestBackPressureStopsTheSender(t *testing.T) {
	gate := &gatedWriter{open: make(chan struct{})}
	const maxBatch = 100
	f := startServer(t, Options{MaxBatch: maxBatch}, func(w Writer) Writer { gate.w = w; return gate })
	c := f.dial(t)
	require.NoError(t, c.(*net.TCPConn).SetWriteBuffer(16<<10))

	// Lines of 64 bytes until a write has waited a second: the sender is
	// held up. 64 MiB would not fit in any buffer.
	var buf bytes.Buffer
	sent := 0
	blocked := false
	for !blocked && sent < 1<<20 {
		buf.Reset()
		for range 1000 {
			fmt.Fprintf(&buf, "collectd.web1.bp %-20d %d\n", sent, at(sent%86400))
			sent++
		}
		require.NoError(t, c.SetWriteDeadline(time.Now().Add(time.Second)))
		n, err := c.Write(buf.Bytes())
		if errors.Is(err, os.ErrDeadlineExceeded) {
			blocked = true
			buf.Next(n)
			break
		}
		require.NoError(t, err)
	}
	require.True(t, blocked, "%d lines sent and none waited", sent)
	st := f.srv.Stats()
	assert.LessOrEqual(t, st.Lines, int64(maxBatch), "lines read while the first batch waits")
	assert.Equal(t, int64(1), gate.calls.Load(), "writes while the first waits")

	close(gate.open)
	require.NoError(t, c.SetWriteDeadline(time.Time{}))
	_, err := c.Write(buf.Bytes())
	require.NoError(t, err)
	require.NoError(t, c.Close())
	st = f.waitStats(t, func(st Stats) bool { return st.Written == int64(sent) })
	assert.Equal(t, BadLines{}, st.Bad)
	assert.Len(t, f.points(t, "web1", "bp"), sent, "every line sent is stored")
}

// A connection that ends in the middle of a batch, and of a line, loses
// none of the complete lines it sent: they are written, and the cut line
// is counted.
func TestConnectionClosedMidBatchLosesNothingRead(t *testing.T) {
	f := startServer(t, Options{MaxBatch: 1000}, nil)
	c := f.dial(t)
	var buf bytes.Buffer
	const n = 2500
	for i := range n {
		fmt.Fprintf(&buf, "collectd.web1.mid %d %d\n", i, at(i))
	}
	buf.WriteString("collectd.web1.mid 99")
	_, err := c.Write(buf.Bytes())
	require.NoError(t, err)
	require.NoError(t, c.Close())

	points := f.waitPoints(t, "web1", "mid", n)
	for i, p := range points {
		require.Equal(t, metrics.Point{Time: time.Unix(at(i), 0).UTC(), Value: float64(i)}, p)
	}
	st := f.waitStats(t, func(st Stats) bool { return st.Bad.Cut == 1 })
	assert.Equal(t, Stats{Lines: n + 1, Written: n, Bad: BadLines{Cut: 1}}, st)
}

// Close during a stream of lines writes every line read before it returns.
func TestCloseWritesWhatWasRead(t *testing.T) {
	f := startServer(t, Options{MaxBatch: 50}, nil)
	c := f.dial(t)
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			if _, err := fmt.Fprintf(c, "collectd.web1.close %d %d\n", i, at(i%86400)); err != nil {
				return // closed by the Server
			}
		}
	})
	f.waitStats(t, func(st Stats) bool { return st.Written > 1000 })
	require.NoError(t, f.srv.Close())
	wg.Wait()
	st := f.srv.Stats()
	assert.Equal(t, st.Lines-st.Bad.Total(), st.Written, "every good line read is written: %+v", st)
	assert.Equal(t, int64(0), st.Failed)
	assert.Equal(t, int64(0), st.Conns)
	assert.Len(t, f.points(t, "web1", "close"), int(st.Written), "every line written is stored")
}

// Close reads and writes the lines that senders sent before it, though
// the Server had not read them yet: a collectd that wrote them takes them
// for delivered. Here they wait in the connection's buffers behind a
// batch whose write is held until Close has begun.
func TestCloseReadsWhatWasSent(t *testing.T) {
	gate := &gatedWriter{open: make(chan struct{})}
	f := startServer(t, Options{MaxBatch: 10}, func(w Writer) Writer { gate.w = w; return gate })
	c := f.dial(t)
	const n = 500 // about 20 KiB: within the buffers
	var buf bytes.Buffer
	for i := range n {
		fmt.Fprintf(&buf, "collectd.web1.sent %d %d\n", i, at(i))
	}
	_, err := c.Write(buf.Bytes())
	require.NoError(t, err)
	require.Eventually(t, func() bool { return gate.calls.Load() == 1 }, 5*time.Second, time.Millisecond,
		"the first batch waits")

	closed := make(chan error)
	go func() { closed <- f.srv.Close() }()
	time.Sleep(50 * time.Millisecond) // Close has begun
	close(gate.open)
	require.NoError(t, <-closed)
	st := f.srv.Stats()
	assert.Equal(t, Stats{Lines: n, Written: n}, st)
	assert.Len(t, f.points(t, "web1", "sent"), n, "every line sent is stored")
}

// Connections beyond MaxConns are closed at once; a connection idle for
// IdleTimeout is closed.
func TestMaxConnsAndIdleTimeout(t *testing.T) {
	f := startServer(t, Options{MaxConns: 2, IdleTimeout: 500 * time.Millisecond}, nil)
	first, second := f.dial(t), f.dial(t)
	f.waitStats(t, func(st Stats) bool { return st.Conns == 2 })
	third := f.dial(t)
	require.NoError(t, third.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, err := third.Read(make([]byte, 1))
	require.ErrorIs(t, err, io.EOF, "the third connection is closed at once")
	assert.Equal(t, int64(1), f.srv.Stats().Refused)
	assert.Len(t, f.logs.Values("graphite: connection refused: too many open", "peer"), 1)

	start := time.Now()
	for _, c := range []net.Conn{first, second} {
		require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
		_, err := c.Read(make([]byte, 1))
		require.ErrorIs(t, err, io.EOF, "an idle connection is closed")
	}
	assert.GreaterOrEqual(t, time.Since(start), 300*time.Millisecond)
	f.waitStats(t, func(st Stats) bool { return st.Conns == 0 })
}

func TestStartRefusesBadOptions(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	w := &gatedWriter{}
	for _, tc := range []struct {
		opts Options
		want string
	}{
		{Options{}, "Options.Writer is nil"},
		{Options{Writer: w, MaxLineLen: -1}, "Options.MaxLineLen -1 is negative"},
		{Options{Writer: w, MaxBatch: -1}, "Options.MaxBatch -1"},
		{Options{Writer: w, MaxConns: -1}, "Options.MaxConns -1"},
		{Options{Writer: w, IdleTimeout: -1}, "Options.IdleTimeout -1ns"},
		{Options{Writer: w, LogInterval: -1}, "Options.LogInterval -1ns"},
	} {
		_, err := Start(tc.opts, ln, nil)
		require.Error(t, err)
		assert.Contains(t, err.Error(), tc.want)
	}
	_, err = Start(Options{Writer: w}, nil, nil)
	assert.ErrorContains(t, err, "no listener")
}

// In a datagram, too long and bad lines are counted and skipped, and the
// good ones written; the sender's address is logged.
func TestUDPBadLines(t *testing.T) {
	f := startServer(t, Options{LogInterval: time.Hour}, nil)
	u, err := net.Dial("udp", f.srv.UDPAddr().String())
	require.NoError(t, err)
	defer u.Close()
	_, err = fmt.Fprintf(u, "collectd.web3.%s 1 %d\ncollectd.web3.udp nan %d\r\ncollectd.web3.udp 5 %d\n",
		strings.Repeat("m", DefaultMaxLineLen), at(0), at(1), at(2))
	require.NoError(t, err)
	assert.Equal(t, []metrics.Point{{Time: time.Unix(at(2), 0).UTC(), Value: 5}}, f.waitPoints(t, "web3", "udp", 1))
	st := f.waitStats(t, func(st Stats) bool { return st.Written == 1 })
	assert.Equal(t, Stats{Lines: 3, Written: 1, Bad: BadLines{TooLong: 1, NotFinite: 1}}, st)
	assert.Equal(t, []any{u.LocalAddr().String()}, f.logs.Values("graphite: bad line skipped", "peer"))
}
