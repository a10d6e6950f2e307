package replyguard

import (
	"net"
	"syscall"
)

// Conn is a net.Conn whose Read stops a reply over its limits; see the
// package doc. Everything but Read is the wrapped connection's.
type Conn struct {
	net.Conn
	scanner Scanner
	err     error // the failure every Read returns once the scanner failed
}

var _ net.Conn = (*Conn)(nil)

// sysConn is a Conn over a connection with a file descriptor. go-redis
// checks a pooled connection before reuse by peeking at the socket
// (MSG_PEEK) when the connection is a syscall.Conn, and would take a
// connection the server has since closed if the wrapper hid that. A peek
// consumes nothing, so the scanner still sees every byte.
type sysConn struct {
	*Conn
	raw syscall.Conn
}

// SyscallConn returns the wrapped connection's raw connection.
func (c sysConn) SyscallConn() (syscall.RawConn, error) { return c.raw.SyscallConn() }

// Wrap returns c with a Read that refuses a reply over l. The result is a
// syscall.Conn when c is one.
func Wrap(c net.Conn, l Limits) (net.Conn, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	g := &Conn{Conn: c}
	g.scanner.init(l)
	if raw, ok := c.(syscall.Conn); ok {
		return sysConn{Conn: g, raw: raw}, nil
	}
	return g, nil
}

// Read reads from the wrapped connection and passes on what it read, up to
// the first value that breaks the limits or the framing; then it fails with
// an error that unwraps to a *net.OpError wrapping ErrTooLarge or
// ErrMalformed, now and on every later call.
func (c *Conn) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.Conn.Read(p)
	if n > 0 {
		if ok, serr := c.scanner.Scan(p[:n]); serr != nil {
			c.err = &readError{&net.OpError{Op: "read", Net: network(c.LocalAddr()), Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: serr}}
			return ok, c.err
		}
	}
	return n, err
}

// readError is a refused read: a *net.OpError, as any failed read of a
// connection, one layer down. go-redis unwraps the error of a failed
// connection handshake (HELLO) once before returning it, and would
// otherwise hand on the bare cause, which a caller that tells connection
// failures by *net.OpError would take for an answer from the server.
type readError struct{ op *net.OpError }

func (e *readError) Error() string { return e.op.Error() }
func (e *readError) Unwrap() error { return e.op }

// NetConn returns the wrapped connection, as tls.Conn's NetConn does, so
// that go-redis can find the socket under a TLS connection to peek at it.
// Reading from it directly would bypass the limits.
func (c *Conn) NetConn() net.Conn { return c.Conn }

func network(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.Network()
}
