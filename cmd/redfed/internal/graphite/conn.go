package graphite

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/redfed/federated/metrics"
)

// The wait after a failed accept or read before the next try starts at
// minPause and doubles up to maxPause: the failure (too many open files,
// say) may last.
const (
	minPause = 5 * time.Millisecond
	maxPause = time.Second
)

// backOff logs the failure of an accept or a read on addr, waits *pause
// and doubles it, and reports whether the Server is still open.
func (s *Server) backOff(msg string, addr net.Addr, err error, pause *time.Duration) bool {
	if s.closed.Load() {
		return false
	}
	s.connLog.Warn(msg, "addr", addr.String(), "error", err)
	if !s.pause(*pause) {
		return false
	}
	*pause = min(2**pause, maxPause)
	return true
}

// acceptLoop accepts TCP connections until Close and serves each in a
// goroutine of its own.
func (s *Server) acceptLoop() {
	pause := minPause
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if !s.backOff("graphite: accept failed", s.ln.Addr(), err, &pause) {
				return
			}
			continue
		}
		pause = minPause
		if !s.addConn(c) {
			continue
		}
		s.wg.Go(func() { s.serveConn(c) })
	}
}

// addConn registers a new connection, or closes it and returns false when
// the Server is closing or serves MaxConns already.
func (s *Server) addConn(c net.Conn) bool {
	s.mu.Lock()
	open := len(s.conns)
	ok := !s.closed.Load() && open < s.opts.MaxConns
	if ok {
		s.conns[c] = struct{}{}
	}
	s.mu.Unlock()
	if !ok {
		if !s.closed.Load() {
			s.refused.Add(1)
			s.connLog.Warn("graphite: connection refused: too many open", "peer", c.RemoteAddr().String(), "open", open)
		}
		_ = c.Close()
	}
	return ok
}

func (s *Server) dropConn(c net.Conn) {
	_ = c.Close()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// serveConn reads one connection's lines into batches and writes each
// batch before it reads on.
func (s *Server) serveConn(c net.Conn) {
	defer s.dropConn(c)
	peer := c.RemoteAddr().String()
	// Room for the longest line and "\r\n": a longer line fills the
	// buffer and is skipped.
	r := bufio.NewReaderSize(c, s.opts.MaxLineLen+2)
	batch := make([]metrics.Sample, 0, min(s.opts.MaxBatch, 64))
	for {
		switch {
		case !lineWaiting(r):
			// The next read may wait for the sender: write what was
			// read first, so that no point waits for more to come.
			s.write(peer, batch, true)
			batch = batch[:0]
			_ = c.SetReadDeadline(time.Now().Add(s.opts.IdleTimeout))
			// After the deadline is set, so that Close's deadline, which
			// follows its closed flag, is never overwritten unseen.
			if s.closed.Load() {
				// Closing: read on what the sender has sent already, until
				// it sends nothing for drainQuiet, up to Close's bound.
				now, by := time.Now(), *s.drainBy.Load()
				if !now.Before(by) {
					return
				}
				deadline := now.Add(drainQuiet)
				if by.Before(deadline) {
					deadline = by
				}
				_ = c.SetReadDeadline(deadline)
			}
		case len(batch) >= s.opts.MaxBatch:
			s.write(peer, batch, true)
			batch = batch[:0]
		}
		line, err := readLine(r, s.opts.MaxLineLen)
		switch {
		case errors.Is(err, errLineTooLong):
			s.lines.Add(1)
			s.badLine(peer, badTooLong, nil, fmt.Errorf("%w: more than %d bytes", errLineTooLong, s.opts.MaxLineLen))
			if err != errLineTooLong { // also the end of the input
				break
			}
			continue
		case errors.Is(err, errLineCut):
			s.lines.Add(1)
			s.badLine(peer, badCut, nil, err)
		case err == nil:
			batch = s.line(peer, line, batch)
			continue
		}
		s.write(peer, batch, true) // the end of the connection, or Close
		return
	}
}

// lineWaiting reports whether r holds a whole line, which it can return
// without reading.
func lineWaiting(r *bufio.Reader) bool {
	buf, _ := r.Peek(r.Buffered())
	return bytes.IndexByte(buf, '\n') >= 0
}

var (
	errLineTooLong = errors.New("line too long")
	errLineCut     = errors.New("last line cut: no end of line before the connection ended")
)

// readLine returns the next line of r, without its "\n" or "\r\n", valid
// until the next read. A line longer than maxLen is read to its end and
// dropped: errLineTooLong, joined with the error that ended the input if
// one did. A last line with no "\n" is errLineCut, since the end of the
// connection, or a timeout, may have cut it anywhere. Another error ends
// the input.
func readLine(r *bufio.Reader, maxLen int) ([]byte, error) {
	line, err := r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		for errors.Is(err, bufio.ErrBufferFull) {
			_, err = r.ReadSlice('\n')
		}
		if err == nil {
			return nil, errLineTooLong
		}
		return nil, errors.Join(errLineTooLong, err)
	}
	if err != nil {
		if len(line) > 0 {
			return nil, errLineCut
		}
		return nil, err
	}
	line = bytes.TrimSuffix(line[:len(line)-1], []byte{'\r'})
	if len(line) > maxLen {
		return nil, errLineTooLong
	}
	return line, nil
}

// maxDatagram is the largest UDP payload.
const maxDatagram = 65535

// serveUDP reads datagrams until Close and writes the points of each
// before it reads the next.
func (s *Server) serveUDP() {
	buf := make([]byte, maxDatagram)
	batch := make([]metrics.Sample, 0, min(s.opts.MaxBatch, 64))
	pause := minPause
	for {
		n, addr, err := s.pc.ReadFrom(buf)
		if err != nil {
			if !s.backOff("graphite: UDP read failed", s.pc.LocalAddr(), err, &pause) {
				return
			}
			continue
		}
		pause = minPause
		peer := addr.String()
		// A datagram comes whole, so its last line needs no "\n".
		for rest := buf[:n]; len(rest) > 0; {
			var line []byte
			line, rest, _ = bytes.Cut(rest, []byte{'\n'})
			line = bytes.TrimSuffix(line, []byte{'\r'})
			if len(line) > s.opts.MaxLineLen {
				s.lines.Add(1)
				s.badLine(peer, badTooLong, nil, fmt.Errorf("%w: more than %d bytes", errLineTooLong, s.opts.MaxLineLen))
				continue
			}
			batch = s.line(peer, line, batch)
			if len(batch) >= s.opts.MaxBatch {
				s.write(peer, batch, false)
				batch = batch[:0]
			}
		}
		s.write(peer, batch, false)
		batch = batch[:0]
	}
}
