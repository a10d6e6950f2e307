package graphite

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/ratelog"
	"github.com/redfed/federated/metrics"
)

// Defaults of Options.
const (
	DefaultMaxLineLen  = 4096
	DefaultMaxBatch    = 1000
	DefaultMaxConns    = 1024
	DefaultIdleTimeout = 5 * time.Minute
	DefaultLogInterval = 10 * time.Second
	DefaultRetryFor    = time.Minute
)

// Close reads on what each TCP connection's sender has sent already, and
// writes it: until the connection sends nothing for drainQuiet, and for
// drainFor at the most. Lines still unread then (a sender that never
// stops, or one held back by a server down) are lost; the lines read are
// written or counted as failed.
const (
	drainQuiet = 100 * time.Millisecond
	drainFor   = 2 * time.Second
)

// Pauses between the writes of a TCP connection's batch whose failure may
// pass: the first, and the most, doubling in between.
const (
	firstRetryPause = 100 * time.Millisecond
	maxRetryPause   = 5 * time.Second
)

// Writer takes the points of a batch and returns once they are written;
// a *metrics.Recorder is one. An error that is a *metrics.WriteError
// counts the points that failed, and the others as written; any other
// error, all of the batch as failed.
type Writer interface {
	Write(ctx context.Context, samples ...metrics.Sample) error
}

var _ Writer = (*metrics.Recorder)(nil)

// Options configure a Server. The zero value of every field but Writer
// means its default.
type Options struct {
	// Writer receives the points, a batch at a time. Required.
	Writer Writer
	// Template maps paths to hosts and metric names. Default: the
	// template DefaultTemplate.
	Template *Template
	// Logger receives the rate-limited warnings about bad lines, failed
	// writes and refused connections. Default: none.
	Logger *slog.Logger
	// MaxLineLen is the longest line taken, in bytes, without its end of
	// line. A longer line is skipped and counted. Default 4096, well above
	// the longest valid line: a host of 256 bytes and a metric name of 512
	// with the words around them and two numbers.
	MaxLineLen int
	// MaxBatch is the most points a connection (or the UDP socket) holds
	// before it writes them and waits for the write. Default 1000.
	MaxBatch int
	// MaxConns is the most TCP connections served at once; one beyond is
	// closed as soon as it is accepted. Default 1024: collectd holds one
	// connection a host, and a fleet of hundreds of hosts (the 300 of a
	// fleet of 2,400 servers) ran past the 256 of before, its last hosts
	// refused at every try. A connection holds under 1 MiB.
	MaxConns int
	// IdleTimeout closes a TCP connection that sends no complete line for
	// this long. Default 5 minutes.
	IdleTimeout time.Duration
	// RetryFor is how long a TCP connection's batch is written again, with
	// pauses that grow from 100 ms to 5 s, while its failure may pass (a
	// server down, refusing writes for now, too slow to answer): nothing
	// more is read from the connection meanwhile, so that TCP makes the
	// sender wait and keep its lines rather than lose the batch. A point
	// written twice is stored once. Close ends the waiting. UDP's batches
	// are written once. Default 1 minute.
	RetryFor time.Duration
	// LogInterval is the least time between two warnings of one kind; the
	// warnings in between are counted and the next one says how many were
	// not logged. Default 10 seconds.
	LogInterval time.Duration
}

// BadLines counts refused lines by reason.
type BadLines struct {
	Malformed int64 // not PATH VALUE TIMESTAMP with two decimal numbers (ErrMalformed)
	NotFinite int64 // a value of NaN or infinity (ErrNotFinite)
	Timestamp int64 // a timestamp before 1970 or after 9999 (ErrBadTimestamp)
	Unmapped  int64 // a path the template does not map (ErrUnmapped)
	TooLong   int64 // longer than Options.MaxLineLen
	Cut       int64 // a last line without its end of line, cut by the end of its connection
}

// Total returns the number of refused lines.
func (b BadLines) Total() int64 {
	return b.Malformed + b.NotFinite + b.Timestamp + b.Unmapped + b.TooLong + b.Cut
}

// Stats counts what a Server received and did.
type Stats struct {
	Lines   int64    // lines received, good and bad; blank lines are not counted
	Bad     BadLines // lines refused
	Written int64    // points that the Writer wrote
	Failed  int64    // points whose write failed (a write that timed out may have run all the same)
	Retried int64    // writes of a batch again after a failure that may pass
	Conns   int64    // TCP connections open now
	Refused int64    // TCP connections closed at once because MaxConns were open
}

// Server receives the plaintext protocol on a TCP listener, a UDP socket,
// or both.
type Server struct {
	opts    Options
	ln      net.Listener   // nil when not listening on TCP
	pc      net.PacketConn // nil when not listening on UDP
	closed  atomic.Bool
	drainBy atomic.Pointer[time.Time] // when Close stops reading; set before closed
	done    chan struct{}             // closed by Close
	wg      sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]struct{} // open TCP connections, guarded by mu

	closeOnce sync.Once
	closeErr  error

	lines, written, failed, refused, retried atomic.Int64
	bad                                      [badReasons]atomic.Int64

	badLog, writeLog, connLog *ratelog.Log
}

// badReason indexes Server.bad.
type badReason int

const (
	badMalformed badReason = iota
	badNotFinite
	badTimestamp
	badUnmapped
	badTooLong
	badCut
	badReasons
)

// Listen listens on addr with TCP and UDP both, on the same port (with
// port 0, the port TCP got), and starts a Server on them.
func Listen(addr string, opts Options) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	pc, err := net.ListenPacket("udp", ln.Addr().String())
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	s, err := Start(opts, ln, pc)
	if err != nil {
		_ = ln.Close()
		_ = pc.Close()
	}
	return s, err
}

// Start serves ln and pc, either of which may be nil, until Close, which
// closes them. Options that are out of range are an error that names the
// field; ln and pc are then left to the caller.
func Start(opts Options, ln net.Listener, pc net.PacketConn) (*Server, error) {
	switch {
	case opts.Writer == nil:
		return nil, errors.New("graphite: Options.Writer is nil")
	case ln == nil && pc == nil:
		return nil, errors.New("graphite: no listener and no packet conn to serve")
	case opts.MaxLineLen < 0:
		return nil, fmt.Errorf("graphite: Options.MaxLineLen %d is negative", opts.MaxLineLen)
	case opts.MaxBatch < 0:
		return nil, fmt.Errorf("graphite: Options.MaxBatch %d is negative", opts.MaxBatch)
	case opts.MaxConns < 0:
		return nil, fmt.Errorf("graphite: Options.MaxConns %d is negative", opts.MaxConns)
	case opts.IdleTimeout < 0:
		return nil, fmt.Errorf("graphite: Options.IdleTimeout %v is negative", opts.IdleTimeout)
	case opts.LogInterval < 0:
		return nil, fmt.Errorf("graphite: Options.LogInterval %v is negative", opts.LogInterval)
	case opts.RetryFor < 0:
		return nil, fmt.Errorf("graphite: Options.RetryFor %v is negative", opts.RetryFor)
	}
	if opts.Template == nil {
		t, err := Parse(DefaultTemplate)
		if err != nil {
			panic(err) // a constant
		}
		opts.Template = t
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	opts.MaxLineLen = orDefault(opts.MaxLineLen, DefaultMaxLineLen)
	opts.MaxBatch = orDefault(opts.MaxBatch, DefaultMaxBatch)
	opts.MaxConns = orDefault(opts.MaxConns, DefaultMaxConns)
	opts.IdleTimeout = orDefault(opts.IdleTimeout, DefaultIdleTimeout)
	opts.RetryFor = orDefault(opts.RetryFor, DefaultRetryFor)
	opts.LogInterval = orDefault(opts.LogInterval, DefaultLogInterval)
	s := &Server{
		opts:     opts,
		ln:       ln,
		pc:       pc,
		done:     make(chan struct{}),
		conns:    make(map[net.Conn]struct{}),
		badLog:   ratelog.New(opts.Logger, opts.LogInterval),
		writeLog: ratelog.New(opts.Logger, opts.LogInterval),
		connLog:  ratelog.New(opts.Logger, opts.LogInterval),
	}
	if ln != nil {
		s.wg.Go(s.acceptLoop)
	}
	if pc != nil {
		s.wg.Go(s.serveUDP)
	}
	return s, nil
}

// orDefault returns v, or def when v is zero.
func orDefault[T int | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// TCPAddr returns the TCP listener's address, or nil.
func (s *Server) TCPAddr() net.Addr {
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// UDPAddr returns the UDP socket's address, or nil.
func (s *Server) UDPAddr() net.Addr {
	if s.pc == nil {
		return nil
	}
	return s.pc.LocalAddr()
}

// Close stops listening, reads on what each connection's sender has sent
// already (until it sends nothing for 100 ms, 2 s at the most), waits
// until the points read are written or failed and every goroutine has
// ended, and returns the errors of closing the listener and the socket.
// Lines still unread then are lost: those of a sender that never stops,
// or that a server down held back in its buffers. A batch that fails
// while the Server closes is not written again. Close may be called more
// than once; later calls return the first's result.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		now := time.Now()
		by := now.Add(drainFor)
		s.drainBy.Store(&by)
		s.closed.Store(true)
		close(s.done)
		var errs []error
		if s.ln != nil {
			errs = append(errs, s.ln.Close())
		}
		if s.pc != nil {
			errs = append(errs, s.pc.Close())
		}
		s.mu.Lock()
		for c := range s.conns {
			// Wakes a reader that waits for its sender; one that has more
			// to read goes on (see serveConn).
			_ = c.SetReadDeadline(now.Add(drainQuiet))
		}
		s.mu.Unlock()
		s.wg.Wait()
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// Stats returns the Server's counts.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	conns := int64(len(s.conns))
	s.mu.Unlock()
	return Stats{
		Lines: s.lines.Load(),
		Bad: BadLines{
			Malformed: s.bad[badMalformed].Load(),
			NotFinite: s.bad[badNotFinite].Load(),
			Timestamp: s.bad[badTimestamp].Load(),
			Unmapped:  s.bad[badUnmapped].Load(),
			TooLong:   s.bad[badTooLong].Load(),
			Cut:       s.bad[badCut].Load(),
		},
		Written: s.written.Load(),
		Failed:  s.failed.Load(),
		Retried: s.retried.Load(),
		Conns:   conns,
		Refused: s.refused.Load(),
	}
}

// pause waits d, or less if the Server closes, and reports whether it is
// still open.
func (s *Server) pause(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-s.done:
		return false
	case <-t.C:
		return true
	}
}

// line takes one line received from peer, without its end of line, and
// returns batch with its point added when the line holds a valid one.
func (s *Server) line(peer string, line []byte, batch []metrics.Sample) []metrics.Sample {
	if isBlank(line) {
		return batch
	}
	s.lines.Add(1)
	path, value, t, err := ParseLine(string(line), time.Now())
	var host, metricName string
	if err == nil {
		host, metricName, err = s.opts.Template.Map(path)
	}
	if err != nil {
		s.badLine(peer, reasonOf(err), line, err)
		return batch
	}
	return append(batch, metrics.Sample{Host: host, Metric: metricName, Time: t, Value: value})
}

// isBlank reports whether line holds nothing but spaces and tabs.
func isBlank(line []byte) bool {
	for _, c := range line {
		if c != ' ' && c != '\t' {
			return false
		}
	}
	return true
}

// reasonOf returns the reason of an error of ParseLine or Template.Map.
func reasonOf(err error) badReason {
	switch {
	case errors.Is(err, ErrNotFinite):
		return badNotFinite
	case errors.Is(err, ErrBadTimestamp):
		return badTimestamp
	case errors.Is(err, ErrUnmapped):
		return badUnmapped
	default:
		return badMalformed
	}
}

// badLine counts a refused line and logs it, rate-limited, with the line
// when there is one (cut short if long; the log handler quotes it).
func (s *Server) badLine(peer string, reason badReason, line []byte, err error) {
	s.bad[reason].Add(1)
	args := []any{"peer", peer, "error", err}
	if line != nil {
		args = append(args, "line", cut(string(line)))
	}
	s.badLog.Warn("graphite: bad line skipped", args...)
}

// write writes a batch from peer, waiting for the Writer, and counts it.
func (s *Server) write(peer string, batch []metrics.Sample, retry bool) {
	if len(batch) == 0 {
		return
	}
	// Not cancelled by Close: Close waits for the batches read to be
	// written. The Writer's own timeouts bound each write.
	err := s.opts.Writer.Write(context.Background(), batch...)
	if retry && err != nil && mayPass(err) {
		deadline := time.Now().Add(s.opts.RetryFor)
		for pause := firstRetryPause; err != nil && mayPass(err) && time.Now().Add(pause).Before(deadline); pause = min(2*pause, maxRetryPause) {
			if !s.pause(pause) {
				break // Close: what is left fails
			}
			s.retried.Add(1)
			err = s.opts.Writer.Write(context.Background(), batch...)
		}
	}
	if err == nil {
		s.written.Add(int64(len(batch)))
		return
	}
	// A Recorder says how many of the points failed; the rest were
	// written. Another error covers them all.
	failed := len(batch)
	var we *metrics.WriteError
	if errors.As(err, &we) {
		failed = we.Failed
	}
	s.written.Add(int64(len(batch) - failed))
	s.failed.Add(int64(failed))
	s.writeLog.Warn("graphite: write failed", "peer", peer, "points", failed, "of", len(batch), "error", err)
}

// mayPass reports a failed write of which some may pass if written again:
// a server down, refusing for now, or too slow to answer.
func mayPass(err error) bool {
	var ne net.Error
	return errors.Is(err, federated.ErrServerDown) || errors.Is(err, federated.ErrTemporary) ||
		errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}
